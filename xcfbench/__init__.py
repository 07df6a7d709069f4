"""xcfbench: exact page accounting for compressed-page allocators.

The package is layered; each folder is one layer and imports run only downward
(tests/test_layers.py walks the import graph and fails on a cycle or an upward import):

    cli/        the click group and one module per command family; nothing else
    output/     what people and spreadsheets see: rich tables, CSV/Markdown, progress, plots
    results/    the versioned JSON document, metric registry, comparison and gate, sweeps
    sim/        the simulation: config, engine, memcg, workloads, traces, frozen records
      frontends/    zcache 3.1 (and today's zram, zswap): the path a pushed-out page takes
      allocators/   one module per allocator, behind the zpool-like interface in base.py;
                    twins.py picks the C twin (native/) or the Python reference
      native/       C: the allocators' twins, the replay loop, zcache's write phase
      compressors/  the kernel's compressors, each exact for the call it models
    io.py, errors.py    reading inputs and writing outputs safely; the one error type

sim/ and results/ never import click, rich or a plotting library.
"""

__version__ = "0.1.0"

"""Every C twin against its Python reference, in lockstep.

After every operation of every reference trace, and of random call sequences, the twin
must report the same pool_pages, pages_held and metadata_bytes as the Python allocator it
was made from, refuse the same allocations, and in the end give the same stats() and free
the same pages in compaction.  The kernel's own numbers are checked on both paths by
test_reference.py; this file makes sure nothing between those numbers differs either.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import load_trace
from xcfbench.sim.allocators import REGISTRY, twins
from xcfbench.sim.arch import ARCHES, PAGE_SIZE

pytestmark = pytest.mark.skipif(twins.native_problem() is not None, reason="_native not built")

TWINNED = sorted(name for name, cls in REGISTRY.items() if twins.has_twin(cls))
TRACES = ("seed-zero.trace", "seed-text-like.trace", "uniform.trace", "churn.trace")
# Options worth a lockstep run of their own, per allocator (besides the defaults).
VARIANTS: dict[str, list[dict]] = {
    "xcfmalloc": [
        {"debug": False},
        {"reserve_pages": 1, "max_pages": 900},
        {"reserve_pages": 2, "max_compact_passes": 1},
    ],
    "xcfmalloc-v1": [{"reserve_pages": 1, "max_pages": 900}],
    "zsmalloc": [{"chain_size": 4}, {"chain_size": 16}],
    "z3fold": [{"deferred": "never"}],
    "zblock": [{"edge_bug": False}, {"arch_header": True}],
}
STATS_EVERY = 997  # stats() is compared this often, and at the end


def cases():
    out = []
    for name in TWINNED:
        for options in [{}, *VARIANTS.get(name, [])]:
            if set(options) <= set(REGISTRY[name].options):
                out.append(pytest.param(name, options, id=f"{name}-{options}" if options else name))
    return out


def pair(name, arch, options):
    cls = REGISTRY[name]
    pure = cls(arch=ARCHES[arch], **options)
    return pure, twins.twin_of(cls(arch=ARCHES[arch], **options))


def lockstep(name, arch, options, ops, compact_every=0):
    pure, twin = pair(name, arch, options)
    assert twin.max_alloc_size == pure.max_alloc_size
    hp, ht = {}, {}
    for n, (oid, size) in enumerate(ops, 1):
        if size >= 0:
            a, b = pure.malloc(size), twin.malloc(size)
            assert (a is None) == (b is None), f"op {n}: malloc({size}) {a} vs {b}"
            if a is not None:
                hp[oid], ht[oid] = a, b
        elif oid in hp:
            pure.free(hp.pop(oid))
            twin.free(ht.pop(oid))
        want = (pure.pool_pages(), pure.pages_held(), pure.metadata_bytes())
        got = (twin.pool_pages(), twin.pages_held(), twin.metadata_bytes())
        assert got == want, f"op {n} ({oid}, {size}): pool, held, metadata"
        if n % STATS_EVERY == 0:
            assert twin.stats() == pure.stats(), f"stats after op {n}"
        if compact_every and n % compact_every == 0:
            assert twin.compact() == pure.compact(), f"compaction after op {n}"
    assert twin.stats() == pure.stats()
    if REGISTRY[name].supports_compaction:
        assert twin.compact() == pure.compact()
        assert (twin.pool_pages(), twin.pages_held(), twin.stats()) == (
            pure.pool_pages(),
            pure.pages_held(),
            pure.stats(),
        )
    twin.check()
    # Everything freed: both empty out the same way.
    for oid in list(hp):
        pure.free(hp.pop(oid))
        twin.free(ht.pop(oid))
    assert (twin.pool_pages(), twin.pages_held(), twin.stats()) == (
        pure.pool_pages(),
        pure.pages_held(),
        pure.stats(),
    )


@pytest.mark.parametrize("arch", ["i386", "x86_64"])
@pytest.mark.parametrize("trace", TRACES)
@pytest.mark.parametrize("name,options", cases())
def test_reference_traces_in_lockstep(name, options, trace, arch):
    compact_every = 5000 if REGISTRY[name].supports_compaction else 0
    lockstep(name, arch, options, load_trace(trace).ops, compact_every)


@st.composite
def call_sequences(draw, max_size):
    """Allocations of any size up to past the maximum, frees of random live objects."""
    ops, live, next_id = [], [], 0
    for _ in range(draw(st.integers(1, 400))):
        if live and draw(st.integers(0, 2)) == 0:
            oid = live.pop(draw(st.integers(0, len(live) - 1)))
            ops.append((oid, -1))
        else:
            size = draw(st.one_of(st.integers(0, max_size + 64), st.integers(0, 200)))
            ops.append((next_id, size))
            live.append(next_id)
            next_id += 1
    return ops


@pytest.mark.parametrize("name,options", cases())
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_sequences_in_lockstep(name, options, data):
    arch = data.draw(st.sampled_from(["i386", "x86_64"]))
    ops = data.draw(call_sequences(PAGE_SIZE))
    every = data.draw(st.sampled_from([0, 7, 50])) if REGISTRY[name].supports_compaction else 0
    lockstep(name, arch, options, ops, every)


def test_twins_are_handed_out_unless_pure(monkeypatch):
    from xcfbench.sim.allocators import create

    for name in TWINNED:
        assert getattr(create(name), "native", False), name
        assert not getattr(create(name, store=True), "native", False), name
    monkeypatch.setenv("XCFBENCH_PURE", "1")
    for name in TWINNED:
        assert not getattr(create(name), "native", False), name


# -- the C replay loop against the reference's -------------------------------------------

TOKENS = [
    "a ",
    "f ",
    "a\t",
    " ",
    "\t",
    "\r",
    "\n",
    "\n",
    "\n",
    "0",
    "1",
    "7",
    "42",
    "5000",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999",
    "0001",
    "# note\n",
    "\xef\xbb\xbf",
    "x",
    "\x0b",
    "é",
    "\r\n",
    "a 1 100\n",
    "f 1\n",
    "a 2 3\n",
]


def _outcome(path, monkeypatch, pure, chunk=None):
    from xcfbench.errors import InputError
    from xcfbench.sim import trace as tr
    from xcfbench.sim.arch import I386

    monkeypatch.setenv("XCFBENCH_PURE", "1" if pure else "")
    if chunk:
        monkeypatch.setattr(tr, "CHUNK_BYTES", chunk)
    try:
        with tr.open_trace(path) as stream:
            result = tr.replay(stream, "ideal", I386, compact="end").to_dict()
            return result, stream.comments
    except InputError as e:
        return str(e), None


@settings(max_examples=300, deadline=None)
@given(
    tokens=st.lists(st.sampled_from(TOKENS), max_size=60),
    chunk=st.sampled_from([None, 1, 3, 8]),
)
def test_native_replay_reads_lines_as_the_reference_does(tmp_path_factory, tokens, chunk):
    """Any text, cut into chunks anywhere: the same result and comments, or the same
    error message, as the Python reader."""
    path = tmp_path_factory.mktemp("t") / "t.trace"
    path.write_bytes("".join(tokens).encode("utf-8", "surrogateescape"))
    with pytest.MonkeyPatch.context() as mp:
        want = _outcome(path, mp, pure=True)
    with pytest.MonkeyPatch.context() as mp:
        got = _outcome(path, mp, pure=False, chunk=chunk)
    assert got == want


@pytest.mark.parametrize("length", [4095, 4096, 4097, 4098])
@pytest.mark.parametrize("end", [b"\n", b"\r\n"])
@pytest.mark.parametrize("where", ["first", "later"])
def test_the_line_length_bound_is_the_references(tmp_path, monkeypatch, length, end, where):
    """A line of up to 4096 bytes without its line end is read; one byte more is refused
    on both paths."""
    line = b"a" + b" " * (length - 6) + b"1 100"
    assert len(line) == length
    head = b"a 7 10\na 8 10\na 9 10\n" if where == "later" else b""
    path = tmp_path / "t.trace"
    path.write_bytes(head + line + end + b"f 1\n")
    with pytest.MonkeyPatch.context() as mp:
        want = _outcome(path, mp, pure=True)
    with pytest.MonkeyPatch.context() as mp:
        got = _outcome(path, mp, pure=False)
    assert got == want
    assert isinstance(want[0], str) == (length > 4096)


@pytest.mark.parametrize("trace", TRACES)
def test_native_replay_equals_pure_replay_on_reference_traces(trace, monkeypatch):
    from tests.helpers import TRACES as TRACE_DIR

    for name in TWINNED:  # both arches are the lockstep tests' (the allocators alone)
        with pytest.MonkeyPatch.context() as mp:
            want = _replay_file(TRACE_DIR / trace, name, "i386", mp, pure=True)
        with pytest.MonkeyPatch.context() as mp:
            got = _replay_file(TRACE_DIR / trace, name, "i386", mp, pure=False)
        assert got == want, name


def _replay_file(path, name, arch, mp, pure):
    from xcfbench.sim import trace as tr

    mp.setenv("XCFBENCH_PURE", "1" if pure else "")
    compact = "every:7919" if REGISTRY[name].supports_compaction else None
    with tr.open_trace(path) as stream:
        return tr.replay(stream, name, ARCHES[arch], compact=compact).to_dict()


# -- zcache's write phase in C against the engine's Python loop ---------------------------


def _run_json(monkeypatch, pure, **kw):
    import json

    from xcfbench.sim.config import RunConfig
    from xcfbench.sim.engine import run

    monkeypatch.setenv("XCFBENCH_PURE", "1" if pure else "")
    seen = []
    result = run(RunConfig(**kw), progress=lambda done, total: seen.append((done, total)))
    return json.dumps(result.to_dict(), sort_keys=True), seen


SMALL_RUN = {"size_bytes": 24 << 20, "limit_bytes": 8 << 20, "samples": 37}


@pytest.mark.parametrize(
    "kw",
    [
        {"fill": "text"},
        {"fill": "zero"},
        {"fill": "text", "seed": 5, "reclaim_batch": 7, "overhead_pages": 100},
        {"fill": "text", "zv_max_mean_zsize": 2000},  # mean_compress_poor
        {"fill": "text", "zv_max_zsize": 1500},  # compress_poor
        {"fill": "text", "totalram_bytes": 8 << 20, "zv_page_count_policy_percent": 50},
        {"fill": "text", "compact": "every:500"},
        {"fill": "text", "compact": "end", "arch": "x86_64", "zv_hdr_sentinel": False},
        {"fill": "zero", "size_bytes": 8 << 20, "limit_bytes": 8 << 20},  # nothing evicted
        # fewer pages pushed out than the corpus has: only those are compressed
        {"fill": "text", "size_bytes": 5 << 20, "limit_bytes": 4 << 20, "overhead_pages": 0},
        {"fill": "text", "size_bytes": 4 << 20, "limit_bytes": 4 << 20, "overhead_pages": 0},
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()),
)
@pytest.mark.parametrize("alloc", TWINNED)
def test_batched_write_phase_equals_the_python_loop(monkeypatch, alloc, kw):
    """Same JSON and the same progress calls, byte for byte, for every twin."""
    kw = {**SMALL_RUN, "alloc": alloc, **kw}
    if "compact" in kw and not REGISTRY[alloc].supports_compaction:
        kw.pop("compact")
    want = _run_json(monkeypatch, True, **kw)
    got = _run_json(monkeypatch, False, **kw)
    assert got == want


def test_batched_write_phase_is_taken_for_the_seed(monkeypatch):
    calls = []
    real = twins.zcache_write
    monkeypatch.setattr(twins, "zcache_write", lambda *a: calls.append(1) or real(*a))
    _run_json(monkeypatch, False, alloc=TWINNED[0], **SMALL_RUN)
    assert calls == [1]


def test_without_the_extension_the_pure_path_runs_and_says_so_once(monkeypatch, runner):
    import json

    from xcfbench.cli import cli

    args = ["run", "--alloc", "zbud", "--size", "8M", "--limit", "4M", "--json"]
    built = runner.invoke(cli, args)
    monkeypatch.setattr(twins, "_native", None)
    monkeypatch.setattr(twins, "_IMPORT_ERROR", "No module named 'xcfbench.sim._native'")
    unbuilt = runner.invoke(cli, args)
    assert built.exit_code == unbuilt.exit_code == 0
    assert json.loads(unbuilt.stdout) == json.loads(built.stdout)
    assert built.stderr == ""
    assert unbuilt.stderr.count("\n") == 1 and "compiled allocators are not built" in unbuilt.stderr


@pytest.mark.parametrize("name", TWINNED)
def test_sizes_no_allocator_takes_are_refused_alike(name):
    pure, twin = pair(name, "i386", {})
    for size in (-1, pure.max_alloc_size + 1, 1 << 63, 1 << 70):
        assert pure.malloc(size) is None and twin.malloc(size) is None, size
    assert (pure.malloc(0) is None) == (twin.malloc(0) is None)
    assert twin.pool_pages() == pure.pool_pages()


def test_out_of_memory_is_one_line_and_status_2(monkeypatch, capsys, tmp_path):
    """A live set past the machine's memory (or a twin's 32-bit tables) ends in one line,
    not a traceback, whichever path raised it."""
    from xcfbench.cli import main

    def boom(*args, **kwargs):
        raise MemoryError("zsmalloc: more than 2**31 live handles")

    monkeypatch.setattr("xcfbench.sim.trace.replay", boom)
    trace = tmp_path / "t.trace"
    trace.write_text("a 1 100\n")
    with pytest.raises(SystemExit) as exit_:
        main(["replay", str(trace), "--alloc", "zs"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err == (
        "xcfbench: error: out of memory (zsmalloc: more than 2**31 live handles):"
        " the run holds more than fits\n"
    )


@pytest.mark.parametrize("kind", ["gz", "xz", "zst"])
@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_compressed_trace_fails_alike_on_both_paths(tmp_path, kind, damage):
    """The C path reads a decompressing stream line by line, as the reference does, so
    the first error (a garbled line, or the stream's own) is the same."""
    import gzip
    import lzma

    import zstandard

    from tests.helpers import TRACES as TRACE_DIR

    text = (TRACE_DIR / "churn.trace").read_bytes()
    packed = {
        "gz": gzip.compress,
        "xz": lzma.compress,
        "zst": zstandard.ZstdCompressor(write_checksum=True).compress,
    }[kind](text)
    blob = bytearray(packed)
    if damage == "flip":
        blob[len(blob) // 2] ^= 0xFF
    else:
        del blob[len(blob) * 2 // 3 :]
    path = tmp_path / f"t.trace.{kind}"
    path.write_bytes(bytes(blob))
    with pytest.MonkeyPatch.context() as mp:
        want = _outcome(path, mp, pure=True)
    with pytest.MonkeyPatch.context() as mp:
        got = _outcome(path, mp, pure=False)
    assert isinstance(want[0], str)
    assert got == want

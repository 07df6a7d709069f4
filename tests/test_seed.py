"""The letter's experiment end to end, with the defaults (i386, python-lzo)."""

from __future__ import annotations

import json

import pytest

from xcfbench.results.document import document, dumps
from xcfbench.results.published import SEED_ROWS
from xcfbench.sim.config import RunConfig
from xcfbench.sim.engine import run

# How close a faithful re-run must come to each printed figure (issue #2).
TOLERANCE_POINTS = {
    ("xvmalloc", "zero"): 0.2,
    ("xcfmalloc", "zero"): 0.1,
    ("xvmalloc", "text"): 0.1,
    ("xcfmalloc", "text"): 1.0,
}


@pytest.fixture(scope="module", params=["compiled", "pure"])
def seed_results(request):
    """The four runs on each path: the C twins with zcache's C write phase, and the
    Python allocators with the engine's Python loop."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XCFBENCH_PURE", "1" if request.param == "pure" else "")
        return {
            (row.alloc, row.fill): run(RunConfig(alloc=row.alloc, fill=row.fill))
            for row in SEED_ROWS
        }


@pytest.mark.parametrize("row", SEED_ROWS, ids=lambda r: f"{r.alloc}-{r.fill}")
def test_seed_case_within_tolerance(seed_results, row):
    r = seed_results[(row.alloc, row.fill)]
    assert abs(r.curr_pages - row.curr_pages) <= 0.005 * row.curr_pages
    tol = TOLERANCE_POINTS[(row.alloc, row.fill)]
    assert abs(r.effective_compression_pct - row.effective_compression_pct) <= tol
    assert r.failed_puts == 0  # "all swapped pages were captured by frontswap"


def test_seed_exact_counts(seed_results):
    """The defaults are deterministic: these are the figures the README records."""
    got = {k: (r.curr_pages, r.zv_page_count, r.zv_desc_count) for k, r in seed_results.items()}
    assert got == {
        ("xvmalloc", "zero"): (65888, 1373, None),
        ("xvmalloc", "text"): (65888, 65888, None),
        ("xcfmalloc", "zero"): (65888, 2059, 65888),
        ("xcfmalloc", "text"): (65888, 50875, 115340),
    }


def test_effective_compression_is_the_letters_formula(seed_results):
    r = seed_results[("xcfmalloc", "text")]
    expected = 100 * (r.zv_page_count + r.zv_desc_count * 24 / 4096) / r.curr_pages
    assert r.effective_compression_pct == pytest.approx(expected, abs=1e-6)
    assert r.stored_per_pool == pytest.approx(100 / expected, abs=1e-6)


def test_kernel_lzo_zero_page_gives_the_specs_vectors():
    # Linux 3.1's lzo: 28 + 36 = 64-byte objects; spec zcache-2011 §5.5 for 65888 of them.
    xv = run(RunConfig(alloc="xvmalloc", fill="zero", compressor="lzo1x-1-linux31"))
    xcf = run(RunConfig(alloc="xcfmalloc", fill="zero", compressor="lzo1x-1-linux31"))
    assert xv.compr_data_size == 28 * xv.curr_pages
    assert xv.zv_page_count == -(-65888 // 60)  # 60 objects a page
    assert (xcf.zv_page_count, xcf.zv_desc_count) == (2059, 65888)


def test_same_config_gives_identical_json():
    cfg = RunConfig(alloc="xcfmalloc", fill="text", size_bytes=64 << 20, limit_bytes=32 << 20)
    docs = [dumps(document("run", cfg.to_dict(), run(cfg).to_dict())) for _ in range(2)]
    assert docs[0] == docs[1]
    assert json.loads(docs[0])["results"]["curr_pages"] == 8192 + 352


@pytest.mark.parametrize("alloc", ["xvmalloc", "xcfmalloc", "zsmalloc", "z3fold"])
@pytest.mark.parametrize("fill", ["text", "zero-tagged"])
def test_verify_reads_back_and_decompresses_every_page(alloc, fill):
    cfg = RunConfig(alloc=alloc, fill=fill, size_bytes=24 << 20, limit_bytes=12 << 20, verify=True)
    r = run(cfg)
    plain = run(RunConfig(alloc=alloc, fill=fill, size_bytes=24 << 20, limit_bytes=12 << 20))
    assert r.verify_errors == 0 and r.curr_pages == 3072 + 352
    assert (r.zv_page_count, r.pages_held) == (plain.zv_page_count, plain.pages_held)


def test_random_pages_are_all_rejected_as_compress_poor():
    r = run(RunConfig(alloc="xvmalloc", fill="random", size_bytes=8 << 20, limit_bytes=4 << 20))
    assert r.curr_pages == 0 and r.zv_page_count == 0
    assert r.rejects["compress_poor"] == r.failed_puts == r.pages_evicted == 2048 - 672

"""`make bench`'s JSON document and the gate on it: synthetic figures, no timing here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from xcfbench.cli import cli
from xcfbench.cli.bench import Figure, bench_config, bench_document, summary, write_json
from xcfbench.errors import InputError
from xcfbench.results.compare import default_thresholds, load_source, thresholds_for
from xcfbench.results.metrics import METRICS, NOISY_TOLERANCE_PCT

BENCH_METRICS = (
    "seconds",
    "time_ratio",
    "overhead_s",
    "ops_per_s",
    "speed_ratio",
    "pages_per_s",
    "peak_rss_bytes",
)


def figures(slower: float = 1.0) -> list[Figure]:
    """A bench run's figures; slower scales every time up and every rate down."""
    return [
        Figure("startup", {"seconds": 0.14 * slower, "overhead_s": 0.04 * slower}, "<= 0.06", True),
        Figure("seed run", {"seconds": 0.25 * slower, "time_ratio": 1.8 * slower}, "<= 0.3", True),
        Figure(
            "replay zsmalloc 1M ops",
            {"ops_per_s": round(1_200_000 / slower), "speed_ratio": 0.6 / slower},
            ">= 1000000 ops/s",
            True,
        ),
        Figure("compressor lzo zram", {"pages_per_s": round(150_000 / slower)}),
        Figure("run 64G", {"seconds": 50 * slower, "peak_rss_bytes": round((900 << 20) * slower)}),
    ]


def write(tmp_path: Path, name: str, figs: list[Figure]) -> str:
    path = str(tmp_path / "out" / name)
    write_json(figs, path, bench_config(quick=False))
    return path


def check(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["check", *args])
    return res.exit_code, res.output


def test_timing_metrics_are_registered_noisy_with_a_tolerance():
    for name in BENCH_METRICS:
        m = METRICS[name]
        assert m.noisy and m.tolerance_pct == NOISY_TOLERANCE_PCT and not m.exact
    assert not any(m.noisy for m in METRICS.values() if m.exact)
    defaults = {t.metric: t for t in default_thresholds()}
    assert defaults["seconds"].text == "seconds:+25%" and defaults["seconds"].relative
    assert defaults["ops_per_s"].text == "ops_per_s:-25%"  # higher is better: a fall
    assert "tolerance" in defaults["seconds"].describe()
    assert "any increase" in defaults["zv_page_count"].describe()


def test_bench_document_is_a_versioned_result_that_check_reads(tmp_path: Path):
    path = write(tmp_path, "bench.json", figures())
    doc = json.loads(Path(path).read_text())
    assert doc["kind"] == "bench" and doc["schema_version"] == 1
    assert doc["config"]["cpus"] and "python" in doc["config"]
    assert [r["case"] for r in doc["results"]][:2] == ["startup", "seed run"]
    source = load_source(path)
    assert source.family == "bench" and len(source.entries) == 5
    assert source.entries[1].result["time_ratio"] == pytest.approx(1.8)


def test_check_passes_within_the_tolerance(tmp_path: Path):
    base = write(tmp_path, "base.json", figures())
    # 20 % slower everywhere: noise, not a regression.
    code, out = check("-b", base, write(tmp_path, "cur.json", figures(slower=1.2)))
    assert code == 0, out
    assert "checks passed" in out
    # Faster is never a failure.
    code, out = check("-b", base, write(tmp_path, "fast.json", figures(slower=0.5)))
    assert code == 0, out


def test_check_fails_beyond_the_tolerance_both_ways(tmp_path: Path):
    base = write(tmp_path, "base.json", figures())
    code, out = check("-b", base, write(tmp_path, "cur.json", figures(slower=1.4)))
    assert code == 1
    assert "seed run: seconds" in out and "exceeds seconds:+25%" in out
    assert "replay zsmalloc 1M ops: ops_per_s" in out and "exceeds ops_per_s:-25%" in out
    assert "run 64G: peak_rss_bytes" in out


def test_fail_on_replaces_the_default_tolerance_of_its_direction(tmp_path: Path):
    base = write(tmp_path, "base.json", figures())
    cur = write(tmp_path, "cur.json", figures(slower=1.4))
    loose = ["--fail-on", "seconds:+50%", "--fail-on", "time_ratio:+50%"]
    loose += ["--fail-on", "overhead_s:+50%", "--fail-on", "peak_rss_bytes:+50%"]
    loose += ["--fail-on", "ops_per_s:-50%", "--fail-on", "speed_ratio:-50%"]
    loose += ["--fail-on", "pages_per_s:-50%"]
    code, out = check("-b", base, cur, *loose)
    assert code == 0, out
    ts = thresholds_for(["seconds:+50%"])
    assert [t.text for t in ts if t.metric == "seconds"] == ["seconds:+50%"]
    code, _ = check("-b", base, cur, "--no-default-thresholds")
    assert code == 0


def test_a_missing_figure_fails_the_gate(tmp_path: Path):
    base = write(tmp_path, "base.json", figures())
    code, out = check("-b", base, write(tmp_path, "cur.json", figures()[:-1]))
    assert code == 1 and "run 64G: in the baseline but not in the current results" in out


def test_bench_figures_are_not_compared_with_run_results(tmp_path: Path):
    base = write(tmp_path, "base.json", figures())
    run = tmp_path / "run.json"
    res = CliRunner().invoke(
        cli,
        [
            "run",
            "--alloc",
            "xv",
            "--fill",
            "zero",
            "--size",
            "8M",
            "--limit",
            "4M",
            "--quiet",
            "--output",
            str(run),
        ],
    )
    assert res.exit_code == 0, res.output
    code, out = check("-b", base, str(run))
    assert code != 0 and "cannot compare bench figures" in out and "with run results" in out


def test_two_figures_of_one_case_are_refused_and_the_summary_counts_targets():
    with pytest.raises(ValueError, match="share a case"):
        bench_document([Figure("x", {"seconds": 1.0}), Figure("x", {"seconds": 2.0})], {})
    figs = figures() + [Figure("slow", {"seconds": 9.0}, "<= 1 s", False)]
    assert summary(figs) == "6 figures, 3 of 4 targets met; missed: slow"


def test_a_bench_figure_without_a_case_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "bad.json"
    doc = bench_document(figures(), {})
    doc["results"][0].pop("case")
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="figure is not an object with a case"):
        load_source(str(path))

"""diff and check: pairing, differences, verdicts, config warnings, thresholds, exit codes.

The documents are the golden run of test_formats (xvmalloc, zero pages, 8M into 4M) and
copies of it with one field changed, so every expected number is known exactly.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import GOLDEN, assert_golden
from xcfbench.cli import cli
from xcfbench.errors import InputError
from xcfbench.results.compare import (
    check,
    compare,
    default_thresholds,
    difference,
    load_source,
    parse_threshold,
    source_of,
    thresholds_for,
)
from xcfbench.results.metrics import METRICS

RUN_DOC = GOLDEN / "run-xvmalloc-zero.json"
COMPARE_DOC = GOLDEN / "compare-zero.json"


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def write(tmp_path: Path, name: str, doc: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return str(path)


@pytest.fixture
def current(tmp_path) -> str:
    return write(tmp_path, "current.json", load(RUN_DOC))


@pytest.fixture
def lower_baseline(tmp_path) -> str:
    """The same run, but a baseline whose zv_page_count is one lower than the current's."""
    doc = load(RUN_DOC)
    doc["results"]["zv_page_count"] -= 1
    return write(tmp_path, "base.json", doc)


@pytest.fixture
def corrupt(tmp_path) -> str:
    path = tmp_path / "corrupt.json"
    path.write_text(RUN_DOC.read_text()[:200])  # a file cut off half-way
    return str(path)


@pytest.fixture
def future(tmp_path) -> str:
    doc = load(RUN_DOC)
    doc["schema_version"] = 99
    return write(tmp_path, "future.json", doc)


# -- thresholds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,sign,amount,relative",
    [
        ("zv_page_count:+1%", 1, 1.0, True),
        ("zv_page_count:+0", 1, 0.0, False),
        ("metadata_bytes:+4096", 1, 4096.0, False),
        (" stored_per_pool : -2.5 % ", -1, 2.5, True),
        ("comp_ratio:-.5", -1, 0.5, False),
    ],
)
def test_parse_threshold(text, sign, amount, relative):
    t = parse_threshold(text)
    assert (t.sign, t.amount, t.relative) == (sign, amount, relative)


@pytest.mark.parametrize(
    "text,message",
    [
        ("zv_page_count", "bad threshold"),
        ("zv_page_count:1%", "bad threshold"),  # the sign says which way is bad
        ("zv_page_count:+x%", "bad threshold"),
        ("zv_page_count:+1%%", "bad threshold"),
        ("pages:+1", "unknown metric 'pages'"),
    ],
)
def test_malformed_thresholds(text, message):
    with pytest.raises(InputError, match=message):
        parse_threshold(text)


def test_threshold_limits_are_exclusive():
    rise_1pct = parse_threshold("zv_page_count:+1%")
    assert not rise_1pct.exceeded(100, 101)  # exactly 1 %: passes
    assert rise_1pct.exceeded(100, 102)
    assert not rise_1pct.exceeded(100, 50)  # a fall is not guarded
    any_rise = parse_threshold("zv_page_count:+0")
    assert any_rise.exceeded(29, 30) and not any_rise.exceeded(29, 29)
    fall = parse_threshold("stored_per_pool:-5%")
    assert fall.exceeded(40.0, 37.9) and not fall.exceeded(40.0, 38.0)
    assert not fall.exceeded(40.0, 80.0)
    assert parse_threshold("zv_page_count:+10%").exceeded(0, 1)  # any rise from zero


def test_default_thresholds_are_any_increase_of_exact_page_counts():
    names = {t.metric for t in default_thresholds()}
    assert {"zv_page_count", "pages_held", "peak_pool_pages", "pool_pages"} <= names
    assert "curr_pages" not in names  # no better side
    assert "effective_compression_pct" not in names  # a ratio, not an exact count
    for t in default_thresholds():
        m = METRICS[t.metric]
        if m.noisy:  # timings: a tolerance the wrong way, never "any increase"
            assert not m.exact and t.relative and t.amount == m.tolerance_pct > 0
            assert t.sign == (1 if m.better == "lower" else -1)
            continue
        # a page count, or a pool of whole pages a front end reports in bytes
        assert m.exact and (m.unit == "pages" or m.pool) and m.better == "lower"
        assert (t.sign, t.amount, t.relative) == (1, 0.0, False)


def test_explicit_threshold_replaces_the_default_for_its_metric():
    ts = thresholds_for(["zv_page_count:+5%"])
    zv = [t for t in ts if t.metric == "zv_page_count"]
    assert len(zv) == 1 and not zv[0].default
    assert thresholds_for([], defaults=False) == []


# -- differences ------------------------------------------------------------------------------


def test_verdicts_follow_the_registry():
    m = METRICS
    assert difference(m["zv_page_count"], 29, 33).verdict == "worse"
    assert difference(m["zv_page_count"], 29, 28).verdict == "better"
    assert difference(m["stored_per_pool"], 40.0, 47.5).verdict == "better"
    assert difference(m["curr_pages"], 1376, 1377).verdict == "changed"
    assert difference(m["curr_pages"], 1376, 1376).verdict == "same"
    d = difference(m["zv_page_count"], 29, 33)
    assert (d.absolute, d.relative_pct) == (4, 13.793103)
    d = difference(m["metadata_bytes"], 0, 5504)
    assert (d.absolute, d.relative_pct, d.verdict) == (5504, None, "worse")
    assert difference(m["zv_desc_count"], None, 5).verdict == "n/a"
    assert difference(m["effective_compression_pct"], 2.107558, 2.495912).absolute == 0.388354


def test_single_results_of_different_cases_pair_only_when_asked():
    doc = load(COMPARE_DOC)
    xv, ideal = (source_of({**doc, "kind": "run", "results": r}) for r in doc["results"])
    with pytest.raises(InputError, match="different cases; pass --pair-any"):
        compare([xv, ideal])
    cmp = compare([xv, ideal], pair_any=True)
    assert len(cmp.cases) == 1 and cmp.cases[0].labels == ("xvmalloc zero", "ideal zero")
    zv = next(r for r in cmp.cases[0].rows if r.metric == "zv_page_count")
    assert zv.values == (23, 22) and zv.deltas[1].verdict == "better"


def test_results_pair_by_case_and_missing_cases_fail_the_gate():
    run, both = load_source(str(RUN_DOC)), load_source(str(COMPARE_DOC))
    cmp = compare([both, run])
    assert [c.label for c in cmp.cases] == ["xvmalloc zero", "ideal zero"]
    assert cmp.cases[1].missing == (1,)
    report = check(both, run, thresholds_for([]))
    failed = [o.describe() for o in report.failures]
    assert failed == ["ideal zero: in the baseline but not in the current results"]
    # A case new in the current results is shown but holds nothing to account.
    assert not check(run, both, thresholds_for([])).failures


def test_config_differences_are_warned_about_by_field(tmp_path, current):
    doc = load(RUN_DOC)
    doc["config"]["arch"] = "x86_64"
    doc["config"]["compressor_version"] = "python-lzo 1.15, liblzo2 2.10"
    doc["config"]["corpus_sha256"] = "ab" * 32
    other = write(tmp_path, "other.json", doc)
    res = CliRunner().invoke(cli, ["diff", current, other])
    assert res.exit_code == 0
    lines = [line for line in res.stderr.splitlines() if "warning" in line]
    assert len(lines) == 3
    assert "config differs in arch: 'i386' in " in lines[0] and "'x86_64' in" in lines[0]
    assert "config differs in compressor_version" in lines[1]
    assert "config differs in corpus_sha256: absent in" in lines[2]
    assert "warning" not in res.stdout  # one artifact on stdout


def test_a_corpus_that_changed_is_warned_about_not_left_unpaired():
    """In a sweep over zero and text fills the corpus digest varies with the fill; a new
    corpus must still pair text with text, and say that the digest differs."""

    def sweep_doc(digest: str) -> dict:
        zero = load(RUN_DOC)
        text = copy.deepcopy(zero)
        text["results"]["fill"] = text["config"]["fill"] = "text"
        text["config"]["corpus_sha256"] = digest
        return {**zero, "kind": "sweep", "config": {"axes": {}}, "results": [zero, text]}

    cmp = compare([source_of(sweep_doc("aa"), "old.json"), source_of(sweep_doc("bb"), "new.json")])
    assert [c.labels for c in cmp.cases] == [("xvmalloc zero",) * 2, ("xvmalloc text",) * 2]
    assert cmp.warnings == ("config differs in corpus_sha256: 'aa' in old.json, 'bb' in new.json",)


# -- diff -------------------------------------------------------------------------------------


def test_diff_refuses_an_unknown_schema_version(current, future):
    res = CliRunner().invoke(cli, ["diff", current, future])
    assert res.exit_code == 2
    assert (
        f"result file '{future}' has schema_version 99; this xcfbench reads version 1" in res.stderr
    )


def test_diff_needs_two_files(current):
    res = CliRunner().invoke(cli, ["diff", current])
    assert res.exit_code == 2 and "at least two result files" in res.stderr


def test_diff_refuses_to_mix_runs_and_replays(current):
    res = CliRunner().invoke(cli, ["diff", current, str(GOLDEN / "replay-seed-zero.json")])
    assert res.exit_code == 2 and "cannot compare run results" in res.stderr


def test_diff_golden(monkeypatch):
    monkeypatch.chdir(GOLDEN)
    res = CliRunner().invoke(
        cli, ["diff", "--format", "markdown", "compare-zero.json", "run-xvmalloc-zero.json"]
    )
    assert res.exit_code == 0
    assert_golden("diff-compare-vs-run.md", res.stdout)


def test_diff_table_colours_by_verdict(lower_baseline, current):
    from rich.console import Console

    from xcfbench.output.tables import comparison_table

    cmp = compare([load_source(lower_baseline), load_source(current)])
    console = Console(record=True, width=200, force_terminal=True, color_system="standard")
    console.print(comparison_table(cmp))
    text = console.export_text(styles=True)
    worse = next(line for line in text.splitlines() if "zv_page_count" in line)
    assert re.search(r"\x1b\[1;31m *\+1\x1b", worse)  # bold red: worse
    same = next(line for line in text.splitlines() if "curr_pages" in line)
    assert re.search(r"\x1b\[2m *\+0\x1b", same)  # dim: same


# -- check ------------------------------------------------------------------------------------


def test_check_exits_1_when_the_current_run_has_more_pages(lower_baseline, current):
    res = CliRunner().invoke(cli, ["check", "--baseline", lower_baseline, current])
    assert res.exit_code == 1, res.output
    out = res.stdout
    # The whole comparison first, then every failed threshold.
    assert out.index("curr_pages") < out.index("checks failed")
    assert (
        "zv_page_count 22 -> 23 (+1, +4.55%) exceeds zv_page_count:+0 (default: any"
        " increase)" in out
    )


def test_check_exits_0_on_an_identical_run(current, tmp_path):
    again = CliRunner().invoke(
        cli,
        [
            "run",
            "--alloc",
            "xvmalloc",
            "--fill",
            "zero",
            "--size",
            "8M",
            "--limit",
            "4M",
            "--compressor",
            "lzo1x-1-linux31",
            "--quiet",
            "--output",
            str(tmp_path / "again.json"),
        ],
    )
    assert again.exit_code == 0
    res = CliRunner().invoke(cli, ["check", "--baseline", current, str(tmp_path / "again.json")])
    assert res.exit_code == 0, res.output
    assert "checks passed" in res.stdout


def test_explicit_threshold_lets_a_small_rise_pass(lower_baseline, current):
    res = CliRunner().invoke(
        cli,
        [
            "check",
            "-b",
            lower_baseline,
            current,
            "--fail-on",
            "zv_page_count:+5%",
            "--fail-on",
            "pages_held:+1",
            "--fail-on",
            "peak_pool_pages:+1",
        ],
    )
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(
        cli, ["check", "-b", lower_baseline, current, "--fail-on", "zv_page_count:+4%"]
    )
    assert res.exit_code == 1


@pytest.mark.parametrize(
    "case", ["corrupt", "future", "missing", "unknown metric", "malformed threshold", "no baseline"]
)
def test_check_exits_2_on_bad_input(case, current, corrupt, future, tmp_path):
    args = {
        "corrupt": ["-b", corrupt, current],
        "future": ["-b", future, current],
        "missing": ["-b", str(tmp_path / "nope.json"), current],
        "unknown metric": ["-b", current, current, "--fail-on", "zv_pages:+1"],
        "malformed threshold": ["-b", current, current, "--fail-on", "zv_page_count+1"],
        "no baseline": [current],
    }[case]
    res = CliRunner().invoke(cli, ["check", *args])
    assert res.exit_code == 2, res.output
    assert res.stdout == ""


def test_check_json_and_csv(lower_baseline, current):
    res = CliRunner().invoke(cli, ["check", "-b", lower_baseline, current, "--format", "json"])
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["passed"] is False and len(doc["failed"]) == 1
    res = CliRunner().invoke(cli, ["check", "-b", lower_baseline, current, "--format", "csv"])
    row = next(line for line in res.stdout.splitlines() if ",zv_page_count," in line)
    assert row.endswith(",22,23,1,4.545455,worse,zv_page_count:+0 (default: any increase),true")


def test_check_golden(tmp_path, monkeypatch):
    doc = load(RUN_DOC)
    doc["results"]["zv_page_count"] -= 1
    (tmp_path / "base.json").write_text(json.dumps(doc))
    (tmp_path / "current.json").write_text(RUN_DOC.read_text())
    monkeypatch.chdir(tmp_path)  # the file names are part of the output
    for fmt, ext in (("markdown", "md"), ("csv", "csv")):
        res = CliRunner().invoke(
            cli,
            [
                "check",
                "-b",
                "base.json",
                "current.json",
                "--fail-on",
                "stored_per_pool:-1%",
                "--format",
                fmt,
            ],
        )
        assert res.exit_code == 1
        assert_golden(f"check-regression.{ext}", res.stdout)


def test_same_inputs_give_the_same_bytes(lower_baseline, current):
    args = ["check", "-b", lower_baseline, current, "--format", "markdown"]
    assert CliRunner().invoke(cli, args).stdout == CliRunner().invoke(cli, args).stdout


@pytest.mark.parametrize(
    "which,code", [("identical", 0), ("lower", 1), ("corrupt", 2), ("future", 2)]
)
def test_check_as_a_real_process(which, code, current, lower_baseline, corrupt, future):
    baseline = {
        "identical": current,
        "lower": lower_baseline,
        "corrupt": corrupt,
        "future": future,
    }[which]
    p = subprocess.run(
        [sys.executable, "-m", "xcfbench", "check", "--baseline", baseline, current],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == code, p.stderr
    if code == 2:
        assert p.stdout == "" and p.stderr.count("\n") == 1
        assert p.stderr.startswith("xcfbench: error: result file")
    else:
        assert "zv_page_count" in p.stdout


def test_the_report_layer_imports_no_ui_library():
    code = (
        "import sys, xcfbench.results.compare, xcfbench.output.formats, "
        "xcfbench.results.sweep, xcfbench.output.plot; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('click', 'rich', 'matplotlib', 'plotext')); print(','.join(bad))"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.strip() == ""


def test_reading_a_document_leaves_it_unchanged():
    """source_of reads a document without changing it (commands reuse their own)."""
    doc = load(COMPARE_DOC)
    before = copy.deepcopy(doc)
    compare([source_of(doc), source_of(doc)])
    assert doc == before

"""Golden files for the JSON, CSV and Markdown of fixed runs, and the --format/--output
plumbing of run, compare and replay.

The runs are small and exact: zero pages through the pure-Python Linux 3.1 compressor
(lzo1x-1-linux31, whose version string names no library build), xvmalloc and ideal.  A
change in any byte of the output fails here.  After an intended change, regenerate with

    XCFBENCH_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_formats.py tests/test_report.py

and review the diff of tests/golden/ like code.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from tests.helpers import GOLDEN, TRACES, assert_golden
from xcfbench.cli import cli
from xcfbench.output.formats import render_document
from xcfbench.output.values import cell, human, signed

SMALL = ["--size", "8M", "--limit", "4M", "--compressor", "lzo1x-1-linux31", "--quiet"]
RUN = ["run", "--alloc", "xvmalloc", "--fill", "zero", *SMALL]
COMPARE = ["compare", "--alloc", "xvmalloc,ideal", "--fill", "zero", *SMALL]
REPLAY = ["replay", "--alloc", "xvmalloc", "--quiet", str(TRACES / "seed-zero.trace")]


def invoke(args: list[str]) -> str:
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, (res.output, res.exception)
    return res.stdout


@pytest.mark.parametrize(
    "command,stem",
    [(RUN, "run-xvmalloc-zero"), (COMPARE, "compare-zero"), (REPLAY, "replay-seed-zero")],
    ids=["run", "compare", "replay"],
)
@pytest.mark.parametrize("fmt,ext", [("json", "json"), ("csv", "csv"), ("markdown", "md")])
def test_golden(command, stem, fmt, ext):
    assert_golden(f"{stem}.{ext}", invoke([*command, "--format", fmt]))


def test_json_flag_is_format_json():
    assert invoke([*RUN, "--json"]) == (GOLDEN / "run-xvmalloc-zero.json").read_text()


def test_csv_round_trips_the_numbers():
    doc = json.loads((GOLDEN / "compare-zero.json").read_text())
    rows = list(csv.DictReader(io.StringIO(render_document(doc, "csv"))))
    assert [r["allocator"] for r in rows] == ["xvmalloc", "ideal"]
    for row, result in zip(rows, doc["results"], strict=False):
        assert int(row["zv_page_count"]) == result["zv_page_count"]
        assert float(row["effective_compression_pct"]) == result["effective_compression_pct"]
        assert row["zv_desc_count"] == ""  # absent, not "None"
        assert row["rejects.compress_poor"] == "0"
        assert row["verified"] == "false"


def test_markdown_run_table_has_the_letters_figures():
    md = (GOLDEN / "run-xvmalloc-zero.md").read_text()
    assert md.startswith("### xvmalloc · zero · i386 · lzo1x-1-linux31\n")
    assert "| zv_page_count | 23 | pages |" in md
    assert "size 8M · limit 4M · seed 0" in md


def test_table_is_still_the_default():
    out = invoke(RUN)
    assert "curr_pages" in out and not out.startswith(("{", "|", "allocator,"))


@pytest.mark.parametrize("fmt", ["csv", "markdown"])
def test_output_file_gets_json_whatever_stdout_gets(tmp_path, fmt):
    out = tmp_path / "r.json"
    stdout = invoke([*RUN, "--format", fmt, "--output", str(out)])
    assert out.read_text() == (GOLDEN / "run-xvmalloc-zero.json").read_text()
    assert (
        stdout == (GOLDEN / f"run-xvmalloc-zero.{'md' if fmt == 'markdown' else fmt}").read_text()
    )


def test_reproduce_has_the_format_option():
    res = CliRunner().invoke(cli, ["reproduce", "--help"])
    assert "--format" in res.stdout


@pytest.mark.parametrize(
    "args",
    [[*RUN, "--json", "--format", "csv"], [*REPLAY, "--json", "--format", "markdown"]],
    ids=["run", "replay"],
)
def test_json_and_another_format_is_bad_input(args):
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and "ask for different outputs" in res.output


def test_unknown_format_is_a_usage_error():
    res = CliRunner().invoke(cli, [*RUN, "--format", "yaml"])
    assert res.exit_code == 2 and "yaml" in res.output


def test_interrupted_run_leaves_the_old_output_file(tmp_path, monkeypatch):
    """--output is written only after the run, through a temporary file and a rename:
    a run that dies half-way leaves the previous file whole and no temporary behind."""
    import xcfbench.sim.engine

    real_run = xcfbench.sim.engine.run

    def dying_run(config, progress=None):
        def progress_then_die(done, total):
            if done * 2 >= total:
                raise KeyboardInterrupt

        return real_run(config, progress_then_die)

    monkeypatch.setattr(xcfbench.sim.engine, "run", dying_run)
    out = tmp_path / "r.json"
    out.write_text("previous")
    res = CliRunner().invoke(cli, [*RUN, "--output", str(out)])
    assert res.exit_code == 1  # click's Abort for an interrupt, through the group
    assert out.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_write_that_fails_leaves_no_temporary(tmp_path, monkeypatch):
    import xcfbench.io

    out = tmp_path / "r.json"
    out.write_text("previous")

    def no_rename(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(xcfbench.io.os, "replace", no_rename)
    res = CliRunner().invoke(cli, [*RUN, "--output", str(out)])
    assert res.exit_code != 0
    assert out.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_value_formatting():
    assert [cell(v) for v in (None, True, 3, 0.1, 2.107558)] == ["", "true", "3", "0.1", "2.107558"]
    assert (
        human(2.107558, "%") == "2.11 %" and human(None) == "—" and human(47.448, "x") == "47.45 ×"
    )
    assert (signed(4), signed(-0.39), signed(0.0001), signed(None)) == (
        "+4",
        "-0.39",
        "+1.00e-04",
        "—",
    )


def test_reproduce_document_as_csv_and_markdown():
    """reproduce's rows carry the letter's published figures beside each measured result."""
    doc = json.loads((GOLDEN / "compare-zero.json").read_text())
    measured = doc["results"][0]
    doc["kind"] = "reproduce"
    doc["results"] = [
        {
            "case": "xvmalloc zero",
            "published": {
                "curr_pages": 65859,
                "zv_page_count": 1269,
                "zv_desc_count": None,
                "effective_compression_pct": 1.93,
            },
            "measured": measured,
            "figures": [["curr_pages", "65859", "1376", "-64483 (-97.91%)"]],
            "why": "a smaller run | on purpose",
        }
    ]
    rows = list(csv.DictReader(io.StringIO(render_document(doc, "csv"))))
    assert rows[0]["case"] == "xvmalloc zero" and rows[0]["published.zv_page_count"] == "1269"
    assert rows[0]["published.zv_desc_count"] == "" and rows[0]["zv_page_count"] == "23"
    md = render_document(doc, "markdown")
    assert "| xvmalloc zero | curr_pages | 65859 | 1376 | -64483 (-97.91%) |" in md
    assert "a smaller run \\| on purpose" in md  # a pipe cannot end the cell

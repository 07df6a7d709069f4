"""Sweeps: the product of options, one line per finished run, resuming, parallel runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from xcfbench.cli import cli
from xcfbench.errors import InputError
from xcfbench.results import sweep as sweep_mod
from xcfbench.results.compare import load_source
from xcfbench.results.sweep import config_key, expand, read_results, run_sweep
from xcfbench.sim.config import RunConfig

SMALL = dict(size_bytes=8 << 20, limit_bytes=4 << 20)
CLI_SMALL = ["--size", "8M", "--limit", "4M", "--quiet"]


def configs(*allocs: str, fills=("zero",), archs=("i386",)) -> list[RunConfig]:
    return [
        RunConfig(alloc=a, fill=f, arch=arch, **SMALL)
        for a in allocs
        for f in fills
        for arch in archs
    ]


def lines(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_config_key_names_the_configuration_and_nothing_else():
    a = RunConfig(alloc="xv", fill="zero", **SMALL)
    assert config_key(a) == config_key(RunConfig(alloc="xvmalloc", fill="zero", **SMALL))
    assert len(config_key(a)) == 16 and int(config_key(a), 16) >= 0
    others = [
        RunConfig(alloc="ideal", fill="zero", **SMALL),
        RunConfig(alloc="xv", fill="zero", arch="x86_64", **SMALL),
        RunConfig(alloc="xv", fill="zero", size_bytes=8 << 20, limit_bytes=6 << 20),
        RunConfig(alloc="xv", fill="zero", seed=1, **SMALL),
    ]
    assert len({config_key(c) for c in [a, *others]}) == 5


def test_expand_is_the_product_first_axis_slowest_and_runs_aliases_once():
    made = expand(
        {"alloc": ["xv", "ideal", "xvmalloc"], "arch": ["i386", "x86_64"]},
        lambda a: RunConfig(alloc=a["alloc"], arch=a["arch"], fill="zero", **SMALL),
    )
    assert [(c.alloc, c.arch) for c in made] == [
        ("xvmalloc", "i386"),
        ("xvmalloc", "x86_64"),
        ("ideal", "i386"),
        ("ideal", "x86_64"),
    ]


def test_one_line_per_run_then_resume_without_redoing(tmp_path, monkeypatch):
    path = tmp_path / "s.jsonl"
    cs = configs("xvmalloc", "ideal")
    seen = []
    out = run_sweep(cs, str(path), progress=lambda done, total: seen.append((done, total)))
    assert (out.ran, out.reused) == (2, 0)
    got = lines(path)
    assert [d["key"] for d in got] == [config_key(c) for c in cs]
    assert all(d["kind"] == "run" and d["schema_version"] == 1 for d in got)
    assert seen[0] == (0, 2) and seen[-1] == (2, 2)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)

    def no_run(*a, **k):
        raise AssertionError("a finished run ran again")

    monkeypatch.setattr(sweep_mod, "run_document", no_run)
    again = run_sweep(cs, str(path))
    assert (again.ran, again.reused) == (0, 2)
    assert again.documents == out.documents
    assert len(lines(path)) == 2


def test_growing_a_sweep_runs_only_the_new_configurations(tmp_path):
    path = str(tmp_path / "s.jsonl")
    run_sweep(configs("ideal"), path)
    out = run_sweep(configs("ideal", "xvmalloc"), path)
    assert (out.ran, out.reused) == (1, 1)
    assert len(lines(path)) == 2


def test_torn_last_line_is_cut_off_and_rerun(tmp_path):
    path = tmp_path / "s.jsonl"
    cs = configs("ideal", "xvmalloc")
    run_sweep(cs, str(path))
    whole = path.read_bytes()
    first, second = whole.splitlines(keepends=True)
    path.write_bytes(first + second[: len(second) // 2])  # killed inside the write
    warnings = []
    out = run_sweep(cs, str(path), warn=warnings.append)
    assert (out.ran, out.reused) == (1, 1)
    assert "cut off a torn last line" in warnings[0]
    assert path.read_bytes() == whole


def test_reports_read_a_results_file_while_its_last_line_is_written(tmp_path):
    path = tmp_path / "s.jsonl"
    run_sweep(configs("ideal", "xvmalloc"), str(path))
    first, second = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(first + second[:100])
    assert [e.config["alloc"] for e in load_source(str(path)).entries] == ["ideal"]
    path.write_bytes(first + b"{oops}\n" + second)
    with pytest.raises(InputError, match="line 2 is not valid JSON"):
        load_source(str(path))


def test_complete_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "s.jsonl"
    run_sweep(configs("ideal"), str(path))
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    out = run_sweep(configs("ideal", "xvmalloc"), str(path))
    assert (out.ran, out.reused) == (1, 1)
    assert len(lines(path)) == 2


@pytest.mark.parametrize(
    "content,message",
    [
        ("not json\n{}\n", "line 1 is not a run result"),
        (
            '{"kind": "run", "key": "x", "schema_version": 99, "results": {}}\n',
            "line 1 has schema_version 99",
        ),
    ],
)
def test_a_file_that_is_not_a_sweeps_is_never_appended_to(tmp_path, content, message):
    path = tmp_path / "s.jsonl"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        run_sweep(configs("ideal"), str(path))
    assert path.read_text() == content


def test_two_sweeps_cannot_share_a_results_file(tmp_path):
    import fcntl

    path = tmp_path / "s.jsonl"
    with open(path, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(InputError, match="in use by another sweep"):
            run_sweep(configs("ideal"), str(path))


def test_jobs_do_not_change_the_results(tmp_path):
    cs = configs("xvmalloc", "ideal", fills=("zero", "zero-tagged"))
    one = run_sweep(cs, str(tmp_path / "one.jsonl"), jobs=1)
    two = run_sweep(cs, str(tmp_path / "two.jsonl"), jobs=2)
    assert one.documents == two.documents
    assert sorted(lines(tmp_path / "one.jsonl"), key=lambda d: d["key"]) == sorted(
        lines(tmp_path / "two.jsonl"), key=lambda d: d["key"]
    )


def test_results_file_reads_as_a_source_for_diff_and_plot(tmp_path):
    path = tmp_path / "s.jsonl"
    run_sweep(configs("ideal", archs=("i386", "x86_64")), str(path))
    src = load_source(str(path))
    assert src.kind == "jsonl" and [e.config["arch"] for e in src.entries] == ["i386", "x86_64"]
    assert read_results(str(path)).keys() == {d["key"] for d in lines(path)}


# -- the command ------------------------------------------------------------------------------

SWEEP = ["sweep", "--alloc", "xv,ideal", "--fill", "zero", "--arch", "i386,x86_64", *CLI_SMALL]


def test_sweep_command_prints_a_summary_and_resumes(tmp_path):
    results = str(tmp_path / "s.jsonl")
    first = CliRunner().invoke(cli, [*SWEEP, "--results", results, "--format", "markdown"])
    assert first.exit_code == 0, first.output
    assert "4 runs, 4 run now, 0 already in" in first.stderr
    assert "| allocator | fill | arch | curr_pages |" in first.stdout
    assert "| ideal | zero | x86_64 | 1376 |" in first.stdout
    again = CliRunner().invoke(
        cli, [*SWEEP, "--results", results, "--format", "markdown", "--jobs", "2"]
    )
    assert again.exit_code == 0
    assert "4 runs, 0 run now, 4 already in" in again.stderr
    assert again.stdout == first.stdout  # the same bytes, whatever ran
    assert len(lines(results)) == 4


def test_sweep_table_and_output_document(tmp_path):
    out = tmp_path / "sweep.json"
    res = CliRunner().invoke(
        cli, [*SWEEP, "--results", str(tmp_path / "s.jsonl"), "--output", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "sweep of 4 runs" in res.stdout and "x86_64" in res.stdout
    doc = json.loads(out.read_text())
    assert doc["kind"] == "sweep" and doc["config"]["axes"]["arch"] == ["i386", "x86_64"]
    assert [r["results"]["allocator"] for r in doc["results"]] == ["xvmalloc"] * 2 + ["ideal"] * 2
    # The sweep document and the results file are the same runs to diff.
    res = CliRunner().invoke(cli, ["diff", str(out), str(tmp_path / "s.jsonl"), "--format", "json"])
    assert res.exit_code == 0 and res.stderr == ""
    cmp = json.loads(res.stdout)
    assert len(cmp["cases"]) == 4
    assert {d["verdict"] for c in cmp["cases"] for m in c["metrics"] for d in m["deltas"][1:]} == {
        "same"
    }


@pytest.mark.parametrize(
    "args,message",
    [
        (["--jobs", "0"], "bad --jobs 0"),
        (["--alloc", "nope"], "unknown allocator 'nope'"),
        (["--limit", "4M,"], None),  # a trailing comma is no value
        (["--fill", ","], "--fill names nothing to sweep"),
    ],
)
def test_sweep_bad_input_exits_2(tmp_path, args, message):
    res = CliRunner().invoke(
        cli,
        [
            "sweep",
            *CLI_SMALL,
            "--alloc",
            "ideal",
            "--fill",
            "zero",
            "--results",
            str(tmp_path / "s.jsonl"),
            *args,
        ],
    )
    if message is None:
        assert res.exit_code == 0
        return
    assert res.exit_code == 2 and message in res.stderr
    assert not (tmp_path / "s.jsonl").exists()  # nothing ran, nothing written


def test_a_run_failing_in_a_worker_is_bad_input(tmp_path):
    res = CliRunner().invoke(
        cli,
        [
            "sweep",
            *CLI_SMALL,
            "--alloc",
            "ideal,xv",
            "--fill",
            "text",
            "--corpus",
            str(tmp_path / "missing.txt"),
            "--jobs",
            "2",
            "--results",
            str(tmp_path / "s.jsonl"),
        ],
    )
    assert res.exit_code == 2 and "does not exist" in res.stderr


def test_interrupted_sweep_resumes_with_one_line_per_configuration(tmp_path):
    """A real `xcfbench sweep` killed (SIGKILL, workers too) once its first run is on disk;
    run again, it does only what is missing."""
    results = tmp_path / "s.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "xcfbench",
        "sweep",
        "--alloc",
        "xv,ideal,zs",
        "--fill",
        "zero-tagged",
        "--arch",
        "i386,x86_64",
        "--size",
        "32M",
        "--limit",
        "16M",
        "--jobs",
        "2",
        "--quiet",
        "--results",
        str(results),
        "--format",
        "csv",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while not (results.exists() and results.read_bytes().count(b"\n") >= 1):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no run finished within a minute"
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    done_before = results.read_bytes().count(b"\n")
    assert 1 <= done_before < 6, "the sweep was not interrupted mid-way"

    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    got = lines(results)
    assert len(got) == 6 and len({d["key"] for d in got}) == 6
    assert {(d["config"]["alloc"], d["config"]["arch"]) for d in got} == {
        (a, arch) for a in ("xvmalloc", "ideal", "zsmalloc") for arch in ("i386", "x86_64")
    }
    assert f"6 runs, {6 - done_before} run now, {done_before} already in" in p.stderr
    assert p.stdout.count("\n") == 7  # CSV: a header and six rows

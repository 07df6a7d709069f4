"""The command line: one artifact on stdout, one line on stderr and exit 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tests.helpers import TRACES
from xcfbench.cli import cli, main

SMALL = ["--size", "8M", "--limit", "4M", "--quiet"]


def run_main(capsys, args):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_run_json_has_the_letters_keys():
    res = CliRunner().invoke(cli, ["run", "--alloc", "ideal", "--fill", "zero", "--json", *SMALL])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["schema_version"] == 1 and doc["kind"] == "run"
    r = doc["results"]
    for key in ("curr_pages", "zv_page_count", "zv_desc_count", "effective_compression_pct"):
        assert key in r
    # 2048 pages written, 1024 - 352 resident: the rest went to zcache
    assert r["curr_pages"] == 2048 - (1024 - 352)
    assert doc["config"]["compressor_version"].startswith("python-lzo")


def test_same_arguments_give_identical_json():
    args = ["run", "--alloc", "ideal", "--fill", "zero", "--json", *SMALL]
    a = CliRunner().invoke(cli, args).stdout
    b = CliRunner().invoke(cli, args).stdout
    assert a == b and a.startswith("{")


def test_output_file_and_table(tmp_path):
    out = tmp_path / "r.json"
    res = CliRunner().invoke(
        cli, ["run", "--alloc", "ideal", "--fill", "zero", "-o", str(out), *SMALL]
    )
    assert res.exit_code == 0
    assert "curr_pages" in res.stdout and not res.stdout.lstrip().startswith("{")
    assert json.loads(out.read_text())["results"]["curr_pages"] == 1376


BAD = [
    (["run", "--alloc", "nope"], "unknown allocator 'nope'"),
    (["run", "--fill", "sand"], "unknown fill 'sand'"),
    (["run", "--arch", "sparc"], "unknown arch 'sparc'"),
    (["run", "--limit", "-1"], "bad --limit '-1'"),
    (["run", "--limit", "0"], "bad --limit '0'"),
    (["run", "--size", "abc"], "bad --size 'abc'"),
    (["run", "--zv-max-zsize", "4000"], "zv_max_zsize 4000 is out of range"),
    (["run", "--compressor", "gzip"], "unknown compressor 'gzip'"),
    (["run", "--compact", "sometimes", "--alloc", "ideal"], "bad --compact 'sometimes'"),
    (["run", "--fill", "text", "--corpus", "/nonexistent/c.txt"], "does not exist"),
    (["run", "--opt", "colour=blue", "--alloc", "ideal"], "has no option 'colour'"),
    (["run", "--bogus"], "No such option"),
    (["replay", "--alloc", "xv", "/nonexistent.trace"], "does not exist"),
    (["replay", "--alloc", "zzz", "x.trace"], "unknown allocator 'zzz'"),
    (
        ["run", "--alloc", "ideal", "-o", "/nonexistent/dir/r.json"],
        "directory '/nonexistent/dir' does not exist",
    ),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2(capsys, args, message):
    code, out, err = run_main(capsys, args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "content,message",
    [
        ("a 1 10\na 2\n", "t.trace:2: malformed trace line"),
        ("a 1 10\n# c\na 1 5\n", "t.trace:3: duplicate live ID 1"),
        ("a 1 10\nf 2\n", "t.trace:2: free of ID 2, which is not live"),
    ],
)
def test_bad_trace(capsys, tmp_path, content, message):
    path = tmp_path / "t.trace"
    path.write_text(content)
    code, out, err = run_main(capsys, ["replay", "--alloc", "xv", str(path)])
    assert (code, out) == (2, "") and message in err and err.count("\n") == 1


def test_trace_that_is_a_directory(capsys, tmp_path):
    code, _, err = run_main(capsys, ["replay", "--alloc", "xv", str(tmp_path)])
    assert code == 2 and "is a directory" in err


def test_failed_run_leaves_no_output_file(capsys, tmp_path):
    out = tmp_path / "r.json"
    out.write_text("previous")
    code, _, _ = run_main(capsys, ["run", "--alloc", "nope", "-o", str(out)])
    assert code == 2 and out.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_real_process_bad_input():
    p = subprocess.run(
        [sys.executable, "-m", "xcfbench", "run", "--alloc", "nope"], capture_output=True, text=True
    )
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.startswith("xcfbench: error: unknown allocator 'nope'")


def test_replay_json_of_a_reference_trace():
    res = CliRunner().invoke(
        cli, ["replay", "--alloc", "xv", "--json", str(TRACES / "seed-zero.trace")]
    )
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)["results"]
    assert (r["pool_pages"], r["live_objects"], r["live_bytes"]) == (1373, 65859, 5268720)


def test_list_names_everything():
    res = CliRunner().invoke(cli, ["list"])
    for name in ("xvmalloc", "xcfmalloc", "zero", "text", "lzo1x-1"):
        assert name in res.stdout


def test_gen_trace_regenerates_a_reference_trace(tmp_path):
    out = tmp_path / "u.trace"
    res = CliRunner().invoke(cli, ["gen-trace", "uniform", "-o", str(out)])
    assert res.exit_code == 0 and res.stdout == ""
    from xcfbench.sim.trace import read_trace

    assert read_trace(out).ops == read_trace(TRACES / "uniform.trace").ops


def test_gen_trace_params_reach_the_generator():
    res = CliRunner().invoke(cli, ["gen-trace", "constant", "-p", "count=3", "-p", "size=7"])
    assert [ln for ln in res.stdout.splitlines() if not ln.startswith("#")] == [
        "a 0 7",
        "a 1 7",
        "a 2 7",
    ]


def test_chain_size_and_classes_on_replay():
    path = str(TRACES / "seed-text-like.trace")
    res = CliRunner().invoke(
        cli, ["replay", "--alloc", "zs", "--chain-size", "4", "--classes", "--json", path]
    )
    doc = json.loads(res.stdout)
    assert doc["config"]["alloc_options"] == {"chain_size": 4}
    classes = doc["results"]["allocator_stats"]["classes"]
    assert max(c["pages_per_zspage"] for c in classes) <= 4
    assert sum(c["pages_used"] for c in classes) == doc["results"]["pool_pages"]
    table = CliRunner().invoke(cli, ["replay", "--alloc", "zs", "--classes", path]).stdout
    assert "size classes" in table and "obj_allocated" in table


@pytest.mark.parametrize(
    "args,message",
    [
        (["replay", "--alloc", "xv", "--classes", "t"], "--classes: xvmalloc has no size-class"),
        (["replay", "--alloc", "xv", "--chain-size", "4", "t"], "--chain-size applies to zsmalloc"),
        (["replay", "--alloc", "zs", "--chain-size", "3", "t"], "chain"),
        (["compare", "--alloc", "xv,xcf", "--chain-size", "4"], "--chain-size applies to zsmalloc"),
        (["gen-trace", "zipf"], "unknown trace kind 'zipf'"),
        (
            ["replay", "--alloc", "xv", "--compact", "end", str(TRACES / "churn.trace")],
            "does not support compaction",
        ),
    ],
)
def test_bad_class_options(capsys, args, message):
    code, out, err = run_main(capsys, args)
    assert (code, out) == (2, "") and message in err and err.count("\n") == 1


def test_verify_failure_exits_1(capsys, monkeypatch, tmp_path):
    from xcfbench.sim.allocators.ideal import Ideal

    path = tmp_path / "t.trace"
    path.write_text("a 1 10\na 2 20\n")
    monkeypatch.setattr(Ideal, "read", lambda self, h: b"wrong")
    code, out, _ = run_main(capsys, ["replay", "--alloc", "ideal", "--verify", "--json", str(path)])
    assert code == 1 and json.loads(out)["results"]["verify_errors"] == 2


def test_group_and_console_script_agree_on_bad_input():
    """Through the click group (as any embedding program calls it) an InputError is the
    same one line and status 2 as from the console script."""
    res = CliRunner().invoke(cli, ["run", "--alloc", "nope"])
    assert res.exit_code == 2
    assert res.output.count("\n") == 1
    assert res.output.startswith("xcfbench: error: unknown allocator 'nope'")
    p = subprocess.run(
        [sys.executable, "-m", "xcfbench", "run", "--alloc", "nope"], capture_output=True, text=True
    )
    assert (p.returncode, p.stderr) == (2, res.output)


def test_usage_error_is_one_line_that_says_where_to_look():
    res = CliRunner().invoke(cli, ["run", "--no-such-option"])
    assert res.exit_code == 2
    assert res.output.count("\n") == 1
    assert res.output.rstrip().endswith("(see 'xcfbench run -h')")


def test_bare_command_prints_help_and_succeeds():
    res = CliRunner().invoke(cli, [])
    assert res.exit_code == 0 and "Commands:" in res.output

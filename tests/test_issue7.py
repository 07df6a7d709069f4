"""Regression tests for issue 7: one per row of its reproducer table, each asserting exit 0
or 2, one line on stderr, no traceback, and inputs left byte-identical."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from xcfbench.cli import cli
from xcfbench.errors import InputError

SMALL = ["--size", "8M", "--limit", "4M", "--fill", "zero", "--alloc", "xv", "--quiet"]


def xcf(*args: str, input: bytes | str | None = None, code: int | tuple = 2):
    """Run the CLI in process; bad input must be exit 2 and one line on stderr."""
    res = CliRunner().invoke(cli, list(args), input=input)
    codes = code if isinstance(code, tuple) else (code,)
    assert res.exit_code in codes, (res.exit_code, res.output, res.exception)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    if res.exit_code == 2:
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert "Traceback" not in res.stderr
    return res


def proc(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "xcfbench", *args], capture_output=True, timeout=60, **kw
    )


def one_line(p: subprocess.CompletedProcess) -> str:
    err = p.stderr.decode()
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def snapshot(*paths: Path) -> list[bytes]:
    return [p.read_bytes() for p in paths]


@pytest.fixture
def run_doc(tmp_path) -> Path:
    path = tmp_path / "a.json"
    xcf("run", *SMALL, "-o", str(path), code=0)
    return path


def variant(tmp_path: Path, doc: Path, name: str, change) -> Path:
    d = json.loads(doc.read_text())
    change(d)
    out = tmp_path / name
    out.write_text(json.dumps(d))
    return out


# 1 ------------------------------------------------------------------------------------------


def test_row1_id_at_2_64_is_malformed(tmp_path):
    t = tmp_path / "t"
    t.write_text("a 18446744073709551616 100\n")
    res = xcf("replay", "--alloc", "xcf", "--verify", str(t))
    assert "below 2**64" in res.stderr
    t.write_text("a 18446744073709551615 100\nf 18446744073709551615\n")
    xcf("replay", "--alloc", "xcf", "--verify", "-q", str(t), code=0)


# 2 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--alloc", "--fill"])
def test_row2_empty_lists(option):
    assert "names nothing" in xcf("compare", option, ",").stderr


# 3 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,message",
    [
        ("{dir}", "is a directory"),
        ("{dir}/sub/", "ends in '/'"),
        ("{dir}/" + "x" * 300, "longer than"),
        ("{dir}/missing/out.json", "does not exist"),
    ],
)
def test_row3_bad_output_paths_fail_before_the_run(tmp_path, name, message):
    target = name.format(dir=tmp_path)
    start = time.monotonic()
    assert message in xcf("run", "--size", "8G", "-q", "-o", target).stderr
    assert time.monotonic() - start < 5  # refused before an 8G run
    assert message in xcf("gen-trace", "churn", "-o", target).stderr


def test_row3_plot_out_is_checked(run_doc, tmp_path):
    assert "is a directory" in xcf("plot", str(run_doc), "--out", str(tmp_path)).stderr


def test_row3_full_disk_is_one_line_and_leaves_no_temp(tmp_path, monkeypatch):
    from xcfbench import io

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.os, "fsync", full)
    out = tmp_path / "out.trace"
    res = xcf("gen-trace", "constant", "-p", "count=10", "-o", str(out))
    assert "No space left on device" in res.stderr
    assert os.listdir(tmp_path) == []


# 4 ------------------------------------------------------------------------------------------


def test_row4_closed_and_full_stdout():
    p = proc(
        "gen-trace",
        "constant",
        "-p",
        "count=10",
        stdout=None,
        stdin=subprocess.DEVNULL,
        pass_fds=(),
        close_fds=True,
        preexec_fn=lambda: os.close(1),
    )
    assert p.returncode == 2 and "standard output is closed" in one_line(p)
    with open("/dev/full", "wb") as full:
        p = subprocess.run(
            [sys.executable, "-m", "xcfbench", "gen-trace", "constant"],
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    assert p.returncode == 2 and "No space left" in one_line(p)


def test_row4_broken_pipe_is_exit_0():
    p = subprocess.run(
        f"{sys.executable} -m xcfbench gen-trace constant | head -1",
        shell=True,
        capture_output=True,
        timeout=60,
    )
    assert p.returncode == 0 and b"Traceback" not in p.stderr and p.stderr == b""


# 5 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,message",
    [
        (["churn", "-p", "lo=5000", "-p", "hi=10"], "lo=5000 is more than hi=10"),
        (["churn", "-p", "p=2"], "between 0 and 1"),
        (["gauss", "-p", "lo=5000", "-p", "hi=10"], "lo=5000 is more than hi=10"),
        (["phase-change", "-p", "keep_small=1.5"], "between 0 and 1"),
        (["uniform", "-p", "count=100000000000"], "at most"),
        (["gauss", "-p", "sd=inf"], "bad value"),
        (["phase-change", "-p", "keep_small=nan"], "not finite"),
    ],
)
def test_row5_generator_parameters(args, message):
    assert message in xcf("gen-trace", *args).stderr


# 6 ------------------------------------------------------------------------------------------


def test_row6_huge_int_and_deep_nesting(tmp_path, run_doc):
    huge = tmp_path / "huge.json"
    huge.write_text(
        run_doc.read_text()
        .replace('"zv_page_count": ', '"zv_page_count": 1' + "0" * 400 + "+", 1)
        .replace("+", "", 1)
    )
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200000)
    assert "digits" in xcf("check", "-b", str(huge), str(run_doc)).stderr
    assert "nested too deeply" in xcf("diff", str(deep), str(run_doc)).stderr
    assert "nested too deeply" in xcf("check", "-b", str(run_doc), str(deep)).stderr


# 7, 9 ---------------------------------------------------------------------------------------


def _die_once(cfg, progress=None):
    """run_document, but the first call in a worker kills the worker (kill -9)."""
    from xcfbench.results import sweep

    marker = Path(os.environ["XCFBENCH_TEST_MARKER"])
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return sweep.__dict__["_real_run_document"](cfg, progress)
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


def test_row7_a_killed_worker_is_redone(tmp_path, monkeypatch):
    from xcfbench.results import sweep
    from xcfbench.sim.config import RunConfig

    monkeypatch.setenv("XCFBENCH_TEST_MARKER", str(tmp_path / "died"))
    monkeypatch.setitem(sweep.__dict__, "_real_run_document", sweep.run_document)
    monkeypatch.setattr(sweep, "run_document", _die_once)
    cs = [
        RunConfig(alloc=a, fill="zero", size_bytes=8 << 20, limit_bytes=4 << 20)
        for a in ("ideal", "xvmalloc", "zbud")
    ]
    out = sweep.run_sweep(cs, str(tmp_path / "s.jsonl"), jobs=2)
    assert (tmp_path / "died").exists()
    assert out.ran == 3 and len((tmp_path / "s.jsonl").read_bytes().splitlines()) == 3


def test_row7_sweep_full_disk_is_one_line(tmp_path, monkeypatch):
    from xcfbench.results import sweep

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sweep.os, "fsync", full)
    res = xcf("sweep", *SMALL, "--results", str(tmp_path / "s.jsonl"))
    assert "No space left on device" in res.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_row9_workers_die_with_the_sweep(tmp_path, sig):
    cmd = [
        sys.executable,
        "-m",
        "xcfbench",
        "sweep",
        "--alloc",
        "xv,xcf",
        "--fill",
        "text",
        "--size",
        "512M",
        "--limit",
        "256M",
        "--jobs",
        "2",
        "--quiet",
        "--results",
        str(tmp_path / "s.jsonl"),
        "--format",
        "csv",
    ]
    parent = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        workers: list[int] = []
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            workers = _children(parent.pid)
        assert len(workers) == 2
        time.sleep(0.3)
        parent.send_signal(sig)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 5
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(w) for w in workers)
        err = parent.stderr.read().decode()
        assert "Traceback" not in err
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        parent.stderr.close()


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# 8 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "-q", "--corpus", "/dev/zero"], "character device"),
        (["replay", "--alloc", "xv", "-q", "/dev/zero"], "character device"),
        (["diff", "/dev/zero", "/dev/zero"], "character device"),
        (["sweep", *SMALL, "--results", "/dev/zero"], "not a regular file"),
        (["run", "-q", "--opt", "reserve_pages=999999999"], "1..65536"),
        (["run", "-q", "--size", "65G"], "at most 64G"),
        (["run", "-q", "--limit", "65G"], "at most 64G"),
        (["run", "-q", "--totalram", "2T"], "at most"),
        (["run", "-q", "--reclaim-batch", "100000"], "--reclaim-batch"),
        (["run", "-q", "--overhead-pages", "99999999999"], "--overhead-pages"),
    ],
)
def test_row8_bounded(args, message):
    assert message in xcf(*args).stderr


def test_row8_big_documents_are_refused_naming_the_bound(tmp_path, monkeypatch):
    from xcfbench import io

    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 5000)
    monkeypatch.setattr(io, "MAX_CORPUS_BYTES", 4096)
    from xcfbench.sim import workloads

    monkeypatch.setattr(workloads, "MAX_CORPUS_BYTES", 4096)
    assert "larger than 4096 bytes" in xcf("run", "-q", "--corpus", str(big)).stderr


def test_row8_trace_memory_does_not_grow_with_length():
    """A trace of a million alloc/free operations streams through replay in little memory."""
    # VmHWM, not ru_maxrss: the latter keeps the high-water mark of the forked pytest.
    code = (
        "import re, sys\n"
        "from xcfbench.sim.trace import iter_ops\n"
        "lines = (b'a 1 100\\n' if i % 2 == 0 else b'f 1\\n' for i in range(1_000_000))\n"
        "n = sum(1 for _ in iter_ops(lines))\n"
        "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1]\n"
        "print(n, hwm)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    n, peak_kb = map(int, p.stdout.split())
    assert n == 1_000_000 and peak_kb < 60_000  # 1M ops held in a tuple: ~85 MB


# 10 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"notes\nline 2", b'{"a": 1}', b"{}\n", b"x"])
def test_row10_sweep_never_touches_a_file_that_is_not_its(tmp_path, content):
    notes = tmp_path / "n.txt"
    notes.write_bytes(content)
    assert "not a sweep's" in xcf("sweep", *SMALL, "--results", str(notes)).stderr
    assert notes.read_bytes() == content


# 11 -----------------------------------------------------------------------------------------


def test_row11_output_is_never_an_input(tmp_path, run_doc):
    t = tmp_path / "t.trace"
    t.write_text("a 1 10\n")
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(b"hello " * 1000)
    s = tmp_path / "s.jsonl"
    xcf("sweep", *SMALL, "--results", str(s), code=0)
    before = snapshot(t, corpus, s, run_doc)
    for args in (
        ["replay", "--alloc", "xv", "-q", str(t), "-o", str(t)],
        ["run", "-q", "--size", "8M", "--limit", "4M", "--corpus", str(corpus), "-o", str(corpus)],
        ["sweep", *SMALL, "--results", str(s), "-o", str(s)],
        ["plot", str(run_doc), "--out", str(run_doc)],
    ):
        res = xcf(*args)
        assert "input of this command" in res.stderr or "end it in .png" in res.stderr
    assert snapshot(t, corpus, s, run_doc) == before


def test_row11_devices_links_and_modes(tmp_path):
    assert "not a regular file" in xcf("gen-trace", "constant", "-o", "/dev/null").stderr
    target = tmp_path / "target.trace"
    target.write_text("old\n")
    target.chmod(0o600)
    link = tmp_path / "link.trace"
    link.symlink_to(target.name)
    xcf("gen-trace", "constant", "-p", "count=3", "-o", str(link), code=0)
    assert link.is_symlink() and target.read_text().startswith("# xcfbench trace v1")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    hard = tmp_path / "hard.trace"
    os.link(target, hard)
    before = target.read_bytes()
    assert "hard links" in xcf("gen-trace", "constant", "-o", str(hard)).stderr
    assert target.read_bytes() == before


# 12, 13 -------------------------------------------------------------------------------------


def test_row12_a_guard_on_a_fall_keeps_the_guard_on_a_rise(tmp_path, run_doc):
    plus1 = variant(
        tmp_path,
        run_doc,
        "plus1.json",
        lambda d: d["results"].update(zv_page_count=d["results"]["zv_page_count"] + 1),
    )
    res = xcf("check", "-b", str(run_doc), str(plus1), "--fail-on", "zv_page_count:-5%", code=1)
    assert "default: any increase" in res.stdout


@pytest.mark.parametrize("value", [float("nan"), "abc", None, True, float("inf")])
def test_row12_a_metric_that_is_not_a_number_fails(tmp_path, run_doc, value):
    bad = variant(tmp_path, run_doc, "bad.json", lambda d: d["results"].update(zv_page_count=value))
    res = xcf("check", "-b", str(bad), str(run_doc), code=1)
    assert "not a finite number in the baseline" in res.stdout
    res = xcf("check", "-b", str(run_doc), str(bad), "--format", "json", code=1)
    report = json.loads(res.stdout, parse_constant=_no_constants)  # row 13: valid JSON
    assert report["passed"] is False


def _no_constants(name: str):
    raise AssertionError(f"bare {name} in JSON output")


def test_row12_different_fills_are_not_paired(tmp_path, run_doc):
    text = variant(tmp_path, run_doc, "text.json", lambda d: d["results"].update(fill="text"))
    assert "--pair-any" in xcf("check", "-b", str(run_doc), str(text)).stderr
    assert "--pair-any" in xcf("diff", str(run_doc), str(text)).stderr
    xcf("diff", "--pair-any", str(run_doc), str(text), code=0)


def test_row13_dumps_refuses_nan():
    from xcfbench.results.document import dumps

    assert json.loads(dumps({"a": float("nan"), "b": [float("-inf")]})) == {"a": None, "b": [None]}


# 14 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "a 1 +5\n",
        "a 1 1_000\n",
        "a 1 \u0661\u0662\n",
        "a 1 10\x0bf 1\n",
        "a 1 10\x0cf 1\n",
        "a 1 10\u2028f 1\n",
        "a -1 5\n",
        "a 1 5 6\n",
        "a 1\n",
        "f\n",
        "a 1 10\rf 1\n",
    ],
)
def test_row14_the_trace_reader_accepts_exactly_v1(text):
    from xcfbench.sim.trace import parse_trace

    with pytest.raises(InputError):
        parse_trace(text.encode().splitlines(keepends=True))


def test_row14_crlf_and_bom_are_accepted():
    from xcfbench.sim.trace import FREE, parse_trace

    t = parse_trace([b"\xef\xbb\xbfa 1 10\r\n", b"f 1\r\n", b"\t\r\n", b"# c\n"])
    assert t.ops == ((1, 10), (1, FREE)) and t.comments == ("c",)


@pytest.mark.parametrize("version", [True, 1.0, "1", None])
def test_row14_schema_version_is_the_integer_1(tmp_path, run_doc, version):
    bad = variant(tmp_path, run_doc, "v.json", lambda d: d.update(schema_version=version))
    assert "schema_version" in xcf("diff", str(bad), str(run_doc)).stderr


# 15 -----------------------------------------------------------------------------------------


def test_row15_messages():
    assert (
        "unknown metric 'nonexistent'"
        in xcf("check", "-b", "x.json", "y.json", "--fail-on", "nonexistent:5%").stderr
    )
    res = xcf("run", "-q", "--reclaim-batch", "65500")
    assert "--reclaim-batch 65500 is more than" in res.stderr
    res = xcf(code=0)
    assert "Commands:" in res.stdout
    res = xcf("replay", "--alloc", "xv", "-q", "--json", "-", input="a 1 10\nf 1\n", code=0)
    assert json.loads(res.stdout)["results"]["ops"] == 2


def test_row15_bare_command_and_usage_error_as_processes():
    p = proc()
    assert p.returncode == 0 and b"Commands:" in p.stdout and p.stderr == b""
    p = proc("run", "--reclaim-batch", "x")
    assert p.returncode == 2 and "(see 'xcfbench run -h')" in one_line(p)


# 16 -----------------------------------------------------------------------------------------


def test_row16_stale_temp_files_are_removed_by_the_next_write(tmp_path):
    from xcfbench.io import write_atomic

    dead = tmp_path / f".xcfbench-{2**22 + 12345}-{'0' * 32}.tmp"  # no such pid
    live = tmp_path / f".xcfbench-{os.getpid()}-{'1' * 32}.tmp"
    fresh = tmp_path / f".xcfbench-{2**22 + 12346}-{'2' * 32}.tmp"
    other = tmp_path / ".xcfbench-notes.tmp"
    for p in (dead, live, fresh, other):
        p.write_text("x")
    old = time.time() - 3600
    for p in (dead, live, other):
        os.utime(p, (old, old))
    write_atomic(str(tmp_path / "out.txt"), "hello\n")
    assert not dead.exists() and live.exists() and fresh.exists() and other.exists()


def test_row16_sigterm_during_the_write_removes_the_temp_file(tmp_path):
    code = (
        "import os, signal, sys\n"
        "from xcfbench.cli import _on_sigterm\n"
        "from xcfbench.io import atomic_open\n"
        "signal.signal(signal.SIGTERM, _on_sigterm)\n"
        f"with atomic_open({str(tmp_path / 'out.txt')!r}) as f:\n"
        "    f.write('half')\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert p.returncode == 143
    assert os.listdir(tmp_path) == []

"""`xcfbench sweep --scheduler`: the same sweep on a real Dask cluster on this machine.

A scheduler and two workers run as subprocesses (loopback only, ephemeral ports, each in
a session of its own so that a worker is killed with its nanny); every one of them is
killed when the module's tests end, whatever happened.  The cluster's results file, its
resumption and its table must equal a local sweep's, line for line (as a set), even when a
worker is killed in the middle of the sweep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from xcfbench.cli import cli
from xcfbench.errors import InputError

distributed = pytest.importorskip("distributed", reason="the cluster extra is not installed")

STARTUP_S = 30.0  # bounded: a cluster that does not come up fails the test, never hangs
SWEEP_S = 60.0
SWEEP = [
    "sweep",
    "--alloc",
    "xv,xcf,zs,zbud,z3fold,zblock",
    "--fill",
    "zero,text",
    "--size",
    "256M",
    "--limit",
    "128M",
    "--quiet",
]


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """The process and everything it started (a worker's nanny and its worker)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.address = ""

    def start(self) -> None:
        sched_file = self.root / "scheduler.json"
        self.procs.append(
            _start(
                [
                    "distributed.cli.dask_scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--no-dashboard",
                    "--scheduler-file",
                    str(sched_file),
                ],
                self.root / "scheduler.log",
            )
        )
        self.address = json.loads(self._wait_for_file(sched_file))["address"]
        assert self.address.startswith("tcp://127.0.0.1:")
        for name in ("w1", "w2"):
            worker = _start(
                [
                    "distributed.cli.dask_worker",
                    self.address,
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--name",
                    name,
                    "--no-dashboard",
                    "--local-directory",
                    str(self.root / name),
                ],
                self.root / f"{name}.log",
            )
            self.procs.append(worker)
            self.workers[name] = worker
        with self.client() as client:
            client.wait_for_workers(2, timeout=STARTUP_S)

    def client(self) -> distributed.Client:
        return distributed.Client(self.address, timeout=STARTUP_S, set_as_default=False)

    def _wait_for_file(self, path: Path) -> str:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if path.exists():
                text = path.read_text()
                if text.strip().endswith("}"):
                    return text
            if any(p.poll() is not None for p in self.procs):
                break
            time.sleep(0.1)
        raise AssertionError(f"the scheduler did not start: {self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"{p.name}:\n{p.read_text()[-2000:]}" for p in self.root.glob("*.log"))

    def stop(self) -> None:
        for proc in self.procs:
            _kill(proc)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


def _sweep(
    args: list[str], results: Path, **popen: object
) -> subprocess.Popen[str] | subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "xcfbench", *SWEEP, "--results", str(results), *args]
    env = {**os.environ, "COLUMNS": "200"}
    if popen:
        return subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=SWEEP_S)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], str]:
    """The reference: the same sweep run locally, two processes."""
    path = tmp_path_factory.mktemp("local") / "local.jsonl"
    done = _sweep(["--jobs", "2"], path)
    assert done.returncode == 0, done.stderr
    return _lines(path), done.stdout


def test_cluster_sweep_survives_a_killed_worker_and_equals_the_local_sweep(
    cluster: Cluster, local: tuple[list[str], str], tmp_path: Path
) -> None:
    path = tmp_path / "cluster.jsonl"
    proc = _sweep(["--scheduler", cluster.address], path, popen=True)
    assert isinstance(proc, subprocess.Popen)
    try:
        # Mid-sweep: w1 is running a task and the sweep has not finished.
        victim = cluster.workers["w1"]
        deadline = time.monotonic() + SWEEP_S
        with cluster.client() as client:
            names = {}
            while time.monotonic() < deadline and proc.poll() is None:
                names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
                busy = [names.get(a) for a, keys in client.processing().items() if keys]
                if "w1" in busy and path.exists() and _lines(path):
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the sweep ended before w1 was seen running a task")
        written_before_kill = len(_lines(path))
        _kill(victim)
        out, err = proc.communicate(timeout=SWEEP_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err + cluster.logs()
    ref_lines, ref_table = local
    assert written_before_kill < len(ref_lines)
    got = _lines(path)
    keys = [json.loads(line)["key"] for line in got]
    assert len(keys) == len(set(keys)) == len(ref_lines)  # nothing lost, nothing doubled
    assert set(got) == set(ref_lines)
    assert out == ref_table  # the final table


def test_cluster_sweep_resumes_a_results_file_like_a_local_one(
    cluster: Cluster, local: tuple[list[str], str], tmp_path: Path
) -> None:
    ref_lines, ref_table = local
    path = tmp_path / "resumed.jsonl"
    # What a local sweep killed after five runs leaves, with a torn sixth line.
    path.write_text("".join(line + "\n" for line in ref_lines[:5]) + ref_lines[5][:40])
    done = _sweep(["--scheduler", cluster.address], path)
    assert done.returncode == 0, done.stderr
    total = len(ref_lines)
    assert f"{total} runs, {total - 5} run now, 5 already in" in done.stderr
    assert "torn last line" in done.stderr
    assert sorted(_lines(path)) == sorted(ref_lines)
    assert done.stdout == ref_table
    # Run again: everything is there, nothing runs, nothing is appended.
    again = _sweep(["--scheduler", cluster.address], path)
    assert again.returncode == 0 and f"0 run now, {total} already in" in again.stderr
    assert sorted(_lines(path)) == sorted(ref_lines)


def test_a_worker_of_another_xcfbench_version_stops_the_sweep(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from xcfbench.results import sweep as sweep_mod
    from xcfbench.results.sweep import run_sweep
    from xcfbench.sim.config import RunConfig

    monkeypatch.setattr(sweep_mod, "TOOL_VERSION", "0.0-not-the-workers")
    path = tmp_path / "r.jsonl"
    cfg = RunConfig(alloc="xvmalloc", fill="zero", size_bytes=8 << 20, limit_bytes=4 << 20)
    with pytest.raises(InputError, match="runs xcfbench .*; this is 0.0-not-the-workers"):
        run_sweep([cfg], str(path), scheduler=cluster.address)
    assert path.read_text() == ""  # nothing of another version is written


def test_scheduler_without_distributed_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    results = tmp_path / "r.jsonl"
    res = CliRunner().invoke(
        cli, [*SWEEP, "--results", str(results), "--scheduler", "tcp://127.0.0.1:1"]
    )
    assert res.exit_code != 0
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'xcfbench[cluster]'" in lines[0]
    assert not results.exists()  # refused before anything was written


def test_unreachable_scheduler_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from xcfbench.results import sweep as sweep_mod

    monkeypatch.setattr(sweep_mod, "CONNECT_TIMEOUT_S", 1.0)
    with_port = _free_port()
    res = CliRunner().invoke(
        cli,
        [
            *SWEEP,
            "--results",
            str(tmp_path / "r.jsonl"),
            "--scheduler",
            f"tcp://127.0.0.1:{with_port}",
        ],
    )
    assert res.exit_code != 0
    assert "cannot reach the Dask scheduler" in res.output


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

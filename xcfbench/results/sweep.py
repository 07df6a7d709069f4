"""Sweeps: the product of run options, run in parallel, one JSON line per finished run.

The results file
----------------
`xcfbench sweep` appends one line per finished run to its results file (JSON lines,
sweep.jsonl by default): a complete run document ({"schema_version", "tool_version",
"kind": "run", "config", "results"}) plus "key", the run's configuration key.  A line is
written with a single write(2) on an O_APPEND descriptor and fsynced as soon as its run
finishes, so a sweep killed at any moment leaves every finished run on disk and at worst
one torn last line.  diff, check and plot read the file as it is.

Resuming
--------
Before it runs anything the sweep reads its results file: every line whose key belongs to
the sweep is a run it need not do again.  A torn last line (no newline: the process died
inside the write) is cut off; any other line that is not a result document is an error,
so that a file that is not ours is never appended to.  Lines of other configurations are
kept and ignored.  While it runs, the sweep holds an exclusive lock on the file, so two
sweeps cannot interleave their lines.

The key is the first 16 hex digits of the SHA-256 of the configuration's canonical JSON
(RunConfig.to_dict() with sorted keys).  Every field that changes a number is in it and
nothing else: not the tool version, not the order in which options were typed.  A corpus
file edited in place keeps its key; delete the results file after changing one.

A file that is not a sweep's (any complete line that is not a run document, or a lone
last line that is not one) is refused before anything is written to it; only then is a
torn last line cut off.  A device or a directory is refused; the file is read whole, so it
is bounded like any result file (256 MiB).

Parallelism
-----------
jobs == 1 runs in this process (no pickling, and progress within each run).  jobs > 1
uses a ProcessPoolExecutor of that many processes; every run is submitted before the
first progress callback, so the workers are forked before a progress bar starts a thread.
A worker that dies (kill -9, the OOM killer) breaks the pool: a new pool runs what is not
done yet, each configuration at most MAX_ATTEMPTS times.  Workers die with the sweep:
PR_SET_PDEATHSIG on Linux, and a thread polling the parent's pid everywhere.
Lines are appended in the order runs finish; the summary and the sweep document list the
runs in the order of the product, so neither depends on the number of jobs.

On a cluster
------------
With a scheduler address (`--scheduler tcp://HOST:8786`) every configuration not yet in
the results file is a task on a Dask distributed cluster: run_document on a worker, the
run document sent back, and the line written here, by this process, exactly as a local
run's.  The results file, resuming, the lock and the final table are the same; only where
the runs compute differs.  A worker that dies (killed, out of memory) loses its tasks to
the scheduler, which runs them again on another worker; Dask gives up on a task after
`distributed.scheduler.allowed-failures` deaths (3 by default) and so does the sweep.  A
task's result is delivered once, and a key already written is never written again, so a
rerun task neither loses nor doubles a line.  `distributed` is an optional dependency
(pip install 'xcfbench[cluster]'), imported only when a scheduler is named.

Plain Python: no click, no rich.  Progress and warnings go through callbacks.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import stat
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from xcfbench.errors import InputError
from xcfbench.io import read_input
from xcfbench.results.document import SCHEMA_VERSION, TOOL_VERSION, document, json_loads
from xcfbench.sim.config import RunConfig

try:
    import fcntl
except ImportError:  # not on Windows: sweeps there are not locked
    fcntl = None  # type: ignore[assignment]  # the module, or None where it is missing

# The options a sweep multiplies, in the order the product runs them.
AXES = ("alloc", "fill", "arch", "frontend", "compressor", "chain_size", "size", "limit")

Progress = Callable[[float, int], None]
Warn = Callable[[str], None]


def config_key(cfg: RunConfig) -> str:
    canon = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def expand(
    axes: dict[str, list[Any]], make: Callable[[dict[str, Any]], RunConfig]
) -> list[RunConfig]:
    """Every combination of the axes' values, first axis slowest; make() builds (and so
    validates) each config before anything runs.  Aliases naming the same config
    (xv, xvmalloc) run once."""
    names = list(axes)
    seen: set[str] = set()
    configs = []
    for values in itertools.product(*(axes[n] for n in names)):
        cfg = make(dict(zip(names, values, strict=False)))
        key = config_key(cfg)
        if key not in seen:
            seen.add(key)
            configs.append(cfg)
    return configs


def run_document(
    cfg: RunConfig, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """One run as the line it becomes (a worker's whole job, so module level)."""
    from xcfbench.sim.engine import run

    result = run(cfg, progress)
    doc = document("run", {**cfg.to_dict(), **result.provenance}, result.to_dict())
    doc["key"] = config_key(cfg)
    return doc


def _line(doc: dict[str, Any]) -> bytes:
    return (
        json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    ).encode()


# -- the results file -------------------------------------------------------------------------


def read_results(
    path: str, warn: Warn | None = None, repair: bool = False
) -> dict[str, dict[str, Any]]:
    """key -> run document for every line of the file (the first line of a key wins).

    Every complete line is checked before anything is changed: a file that is not a
    sweep's is refused untouched.  Then, with repair, a torn last line (a sweep killed
    inside its write) is cut off, or a complete last line missing its newline gets one."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise InputError(f"results file {path!r} cannot be read: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise InputError(f"results file {path!r} is {kind}")
    data = read_input(path, "results file", binary=True)
    cut = len(data)
    tail = b""
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
    docs: dict[str, dict[str, Any]] = {}
    for number, raw in enumerate(data[:cut].splitlines(), 1):
        if not raw.strip():
            continue
        docs.setdefault(*_checked_line(path, number, raw))
    if tail:
        number = data[:cut].count(b"\n") + 1
        if _valid_line(tail):
            key, doc = _checked_line(path, number, tail)
            docs.setdefault(key, doc)
            if repair:  # a complete line whose newline is missing (an editor did it)
                with open(path, "ab") as f:
                    f.write(b"\n")
        elif not docs or not tail.lstrip().startswith(b"{"):
            # Nothing proves the file is a sweep's: refuse it, untouched.
            raise InputError(
                f"results file {path!r} line {number} is not a run result;"
                " not appending to a file that is not a sweep's (if a sweep was"
                " killed while writing its first line, delete the file)"
            )
        else:
            if repair:
                os.truncate(path, cut)
            if warn:
                warn(
                    f"results file {path!r}: cut off a torn last line ({len(tail)} bytes)"
                    " left by an interrupted sweep"
                )
    return docs


def _checked_line(path: str, number: int, raw: bytes) -> tuple[str, dict[str, Any]]:
    doc = _parse_line(raw)
    if doc is None:
        raise InputError(
            f"results file {path!r} line {number} is not a run result;"
            " not appending to a file that is not a sweep's"
        )
    if type(doc["schema_version"]) is not int or doc["schema_version"] != SCHEMA_VERSION:
        raise InputError(
            f"results file {path!r} line {number} has schema_version"
            f" {doc['schema_version']!r}; this xcfbench writes version"
            f" {SCHEMA_VERSION} (start a new results file)"
        )
    return doc["key"], doc


def _parse_line(raw: bytes) -> dict[str, Any] | None:
    try:
        doc = json_loads(raw, "line")
    except InputError:
        return None
    if (
        not isinstance(doc, dict)
        or doc.get("kind") != "run"
        or "schema_version" not in doc
        or not isinstance(doc.get("key"), str)
        or not isinstance(doc.get("results"), dict)
    ):
        return None
    return doc


def _valid_line(raw: bytes) -> bool:
    return _parse_line(raw) is not None


class _ResultsFile:
    """The results file, opened for appending and locked for the sweep's lifetime."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            st = os.stat(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise InputError(f"cannot write results file {path!r}: {e.strerror}") from None
        else:
            if not stat.S_ISREG(st.st_mode):
                kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
                raise InputError(f"results file {path!r} is {kind}")
        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as e:
            raise InputError(f"cannot write results file {path!r}: {e.strerror}") from None
        if fcntl is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(self.fd)
                raise InputError(f"results file {path!r} is in use by another sweep") from None

    def append(self, doc: dict[str, Any]) -> None:
        data = _line(doc)
        try:
            while data:  # one write for a regular file; loop for the pedantic
                data = data[os.write(self.fd, data) :]
            os.fsync(self.fd)
        except OSError as e:  # a full disk: one line, and the file stays resumable
            raise InputError(
                f"cannot write results file {self.path!r}: {e.strerror}"
                " (run the sweep again to resume)"
            ) from None

    def close(self) -> None:
        os.close(self.fd)  # closing drops the lock


# -- running ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepOutcome:
    documents: tuple[dict[str, Any], ...]  # one run document per config, in config order
    ran: int  # runs done now
    reused: int  # runs found in the results file


def run_sweep(
    configs: list[RunConfig],
    path: str,
    jobs: int = 1,
    progress: Progress | None = None,
    warn: Warn | None = None,
    scheduler: str | None = None,
) -> SweepOutcome:
    """Run every config not yet in the results file at path; return all their documents.
    With scheduler (a Dask scheduler's address) the runs are tasks on that cluster."""
    if scheduler is not None:
        _cluster_client_class()  # a missing package is an error before anything is touched
        if not scheduler.strip():
            raise InputError("--scheduler needs an address, e.g. tcp://HOST:8786")
    if jobs < 1:
        raise InputError(f"bad --jobs {jobs}: run at least one at a time")
    if jobs > MAX_JOBS:
        raise InputError(f"bad --jobs {jobs}: at most {MAX_JOBS} processes")
    out = _ResultsFile(path)
    try:
        done = read_results(path, warn, repair=True)
        keys = [config_key(c) for c in configs]
        todo = [(k, c) for k, c in zip(keys, configs, strict=False) if k not in done]
        reused = len(configs) - len(todo)
        total = len(configs)
        if scheduler is not None:
            if jobs != 1 and warn:
                warn("--jobs is ignored with --scheduler: the cluster's workers run the sweep")
            _run_cluster(todo, done, out, reused, total, scheduler, progress)
        elif jobs == 1 or len(todo) <= 1:
            _run_here(todo, done, out, reused, total, progress)
        else:
            _run_pool(todo, done, out, reused, total, min(jobs, len(todo)), progress)
    finally:
        out.close()
    return SweepOutcome(tuple(done[k] for k in keys), len(todo), reused)


def _run_here(todo, done, out, finished, total, progress) -> None:
    if progress:
        progress(finished, total)
    for key, cfg in todo:
        within = None
        if progress:

            def within(d: int, t: int, base: int = finished) -> None:
                progress(base + d / t, total)

        doc = run_document(cfg, within)
        out.append(doc)
        done[key] = doc
        finished += 1
        if progress:
            progress(finished, total)


MAX_JOBS = 256

# A configuration whose worker dies (killed, out of memory) is run again in a new pool, at
# most this many times in all.
MAX_ATTEMPTS = 3


def _run_pool(todo, done, out, finished, total, jobs, progress) -> None:
    attempts = {key: 0 for key, _ in todo}
    remaining = dict(todo)
    if progress:
        progress(finished, total)
    while remaining:
        for key in remaining:
            attempts[key] += 1
            if attempts[key] > MAX_ATTEMPTS:
                raise InputError(
                    f"a worker died {MAX_ATTEMPTS} times running"
                    f" {_describe(remaining[key])} (killed, or out of memory?)"
                )
        pool = ProcessPoolExecutor(
            max_workers=min(jobs, len(remaining)), initializer=_worker_init, initargs=(os.getpid(),)
        )
        try:
            pending: dict[Future, str] = {
                pool.submit(run_document, cfg): key for key, cfg in remaining.items()
            }
            while pending:
                ready, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in ready:
                    key = pending.pop(future)
                    try:
                        doc = future.result()  # a run's own error stops the sweep here
                    except BrokenProcessPool:
                        continue  # its worker died: run it again below
                    out.append(doc)
                    done[key] = doc
                    del remaining[key]
                    finished += 1
                    if progress:
                        progress(finished, total)
        except BaseException:
            _stop(pool)
            raise
        pool.shutdown()


def _describe(cfg: RunConfig) -> str:
    return f"{cfg.alloc} {cfg.fill} {cfg.arch} {cfg.frontend} {cfg.compressor}"


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: kill its workers rather than wait for their runs to finish."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            process.kill()
        except (OSError, AttributeError, ValueError):
            pass
    pool.shutdown(wait=False, cancel_futures=True)


def _worker_init(parent: int) -> None:
    """In each worker: die with the parent.  On Linux the kernel sends SIGKILL when the
    parent exits (prctl PR_SET_PDEATHSIG); everywhere, a thread polls the parent's pid."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us on Ctrl-C
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="xcfbench-parent-watch", daemon=True).start()


# -- on a Dask cluster -------------------------------------------------------------------------

# How long to wait for the scheduler to answer before giving up on it.
CONNECT_TIMEOUT_S = 30.0


def _cluster_client_class() -> Any:
    """distributed.Client, or a one-line InputError naming the extra that installs it."""
    try:
        from distributed import Client
    except ImportError:
        raise InputError(
            "--scheduler needs the Dask 'distributed' package, which is not installed;"
            " install it with: pip install 'xcfbench[cluster]'"
        ) from None
    return Client


def _run_cluster(todo, done, out, finished, total, scheduler: str, progress) -> None:
    """Each configuration a task on the cluster at scheduler; each result a line here."""
    if progress:
        progress(finished, total)
    if not todo:
        return
    Client = _cluster_client_class()
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        raise InputError(f"cannot reach the Dask scheduler at {scheduler!r}: {e}") from None
    try:
        # One task a configuration, named by its key and this sweep (two sweeps on one
        # cluster never share a task, whatever state the other's is in).
        sweep_id = uuid.uuid4().hex[:8]
        futures = {
            client.submit(run_document, cfg, key=f"xcfbench-{sweep_id}-{key}"): key
            for key, cfg in todo
        }
        cfgs = dict(todo)
        try:
            for future in as_completed(futures, loop=client.loop):
                key = futures[future]
                try:
                    doc = future.result()  # a run's own error stops the sweep here
                except KilledWorker:
                    raise InputError(
                        f"workers died running {_describe(cfgs[key])} on the cluster"
                        " (killed, or out of memory?)"
                    ) from None
                except ImportError as e:
                    raise InputError(
                        f"a worker of {scheduler} cannot import xcfbench ({e});"
                        " install xcfbench on every worker"
                    ) from None
                if doc.get("tool_version") != TOOL_VERSION:
                    # Another version may count other pages: its lines would not be this
                    # sweep's, and a resumed sweep would mix them.
                    raise InputError(
                        f"a worker of {scheduler} runs xcfbench {doc.get('tool_version')};"
                        f" this is {TOOL_VERSION}: install the same version on every worker"
                    )
                if key in done:
                    continue  # delivered twice: written once
                out.append(doc)
                done[key] = doc
                finished += 1
                if progress:
                    progress(finished, total)
        except BaseException:
            client.cancel(list(futures), force=True)
            raise
    finally:
        client.close()


def sweep_document(axes: dict[str, list[Any]], outcome: SweepOutcome) -> dict[str, Any]:
    """The whole sweep as one document (kind "sweep"): its axes and every run's document."""
    config = {"axes": {k: list(v) for k, v in axes.items()}, "runs": len(outcome.documents)}
    return document("sweep", config, list(outcome.documents))


# -- make bench -------------------------------------------------------------------------------


def bench_sweep(size_bytes: int = 256 << 20, limit_bytes: int = 128 << 20) -> tuple[float, float]:
    """Time one 4-run sweep with one job and with two; print both, the speed-up, and the
    CPU seconds each spent (equal CPU and no speed-up means other load held the cores)."""
    import resource

    configs = [
        RunConfig(alloc=a, fill=f, size_bytes=size_bytes, limit_bytes=limit_bytes)
        for a in ("xvmalloc", "xcfmalloc")
        for f in ("zero", "zero-tagged")
    ]
    run_document(
        RunConfig(alloc="xvmalloc", fill="zero-tagged", size_bytes=4 << 20, limit_bytes=2 << 20)
    )  # imports and caches, not timed
    seconds, cpu = {}, {}
    for jobs in (1, 2):
        before = _cpu_seconds(resource)
        with tempfile.TemporaryDirectory(prefix="xcfbench-sweep-") as tmp:
            t0 = time.perf_counter()
            run_sweep(configs, os.path.join(tmp, "sweep.jsonl"), jobs=jobs)
            seconds[jobs] = time.perf_counter() - t0
        cpu[jobs] = _cpu_seconds(resource) - before
    one, two = seconds[1], seconds[2]
    verdict = "ok" if two < one else "NOT FASTER"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\nsweep of 4 runs (xvmalloc, xcfmalloc x zero, zero-tagged; {size_bytes >> 20}M"
        f" into {limit_bytes >> 20}M) on {os.cpu_count()} cores: --jobs 1 {one:.2f} s,"
        f" --jobs 2 {two:.2f} s, speed-up {one / two:.2f}x: {verdict}"
        f"\n  CPU {cpu[1]:.2f} s and {cpu[2]:.2f} s; load average {load:.2f} when done"
    )
    return one, two


def _cpu_seconds(resource) -> float:
    """User and system time of this process and its finished children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total

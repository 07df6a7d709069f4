"""Page images, profiles and --fill image: (issue 11, items 1-4 and 7).

Processes captured here are started by the tests themselves, with an empty environment
(`env -i`) and nothing secret in them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from xcfbench.sim.images import DigestSet, iter_image, load_image, load_profile, open_container

REPO = Path(__file__).resolve().parents[1]
CORPUS_IMAGE = REPO / "corpora" / "python-strings.xcfimg"
PYTHON = shutil.which("python3") or sys.executable
PROGRAM = """
import time
d = {("k%d " % i) * 4: ["v%d" % i] * 3 for i in range(30000)}
l = ["word %d and %d " % (i, i * i) * 4 for i in range(30000)]
print("ready", flush=True)
time.sleep(600)
"""


def xcfbench(*args, user=None):
    pre = None
    if user is not None:

        def pre():
            os.setgid(user)
            os.setuid(user)

    return subprocess.run(
        [sys.executable, "-m", "xcfbench", *map(str, args)],
        capture_output=True,
        text=True,
        preexec_fn=pre,
        cwd=REPO,
    )


@pytest.fixture
def child():
    p = subprocess.Popen(["env", "-i", PYTHON, "-c", PROGRAM], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    _wait_asleep(p.pid)
    yield p
    p.kill()
    p.wait()
    p.stdout.close()


def _running(pid: int) -> bool:
    """Whether the process left the stopped state: SIGCONT is delivered asynchronously,
    so a loaded machine may show "T" for a moment after it was sent."""
    import time

    for _ in range(1000):
        if _state(pid) in ("S", "R"):
            return True
        time.sleep(0.01)
    return False


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def _wait_state(pid: int, state: str) -> None:
    import time

    for _ in range(500):
        if _state(pid) == state:
            return
        time.sleep(0.002)
    raise AssertionError(f"process {pid} never reached state {state}")


def _wait_asleep(pid: int) -> None:
    """Until the child sleeps in time.sleep: between "ready" and the sleep it still writes
    (3.11's interpreter fills inline caches as it runs)."""
    import time

    for _ in range(200):
        time.sleep(0.01)
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "S":
                time.sleep(0.1)
                return


def one_line_error(r, *words):
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("xcfbench: error: "), r.stderr
    for w in words:
        assert w in r.stderr, r.stderr


def test_capture_freeze_matches_smaps_and_mem(child, tmp_path):
    # Stopped by us first and through the comparison: a Python process that is stopped and
    # continued may run (its sleep returns EINTR and is retried, taking the GIL), so the
    # memory must not move between the capture and the reading.  --freeze leaves a
    # process it found stopped as it was; test_freeze_resumes_the_process covers the rest.
    out = tmp_path / "p.xcfimg"
    os.kill(child.pid, signal.SIGSTOP)
    _wait_state(child.pid, "T")
    try:
        r = xcfbench("capture", child.pid, "--freeze", "-o", out)
        assert r.returncode == 0, r.stderr
        assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
        assert _state(child.pid) == "T"
        with open(f"/proc/{child.pid}/smaps_rollup") as f:
            anon_kb = next(int(line.split()[1]) for line in f if line.startswith("Anonymous:"))
        c = open_container(str(out))
        ps = load_image(c)
        assert c.meta["pages"] == len(ps.keys)
        assert abs(len(ps.keys) - anon_kb // 4) <= 0.02 * (anon_kb // 4)
        assert c.meta["executables"] == ["python3"] and c.meta["frozen"] is True
        assert c.meta["complete"] is True and c.meta["kernel"] == os.uname().release
        fd = os.open(f"/proc/{child.pid}/mem", os.O_RDONLY)
        try:
            for addr, key in zip(ps.addresses, ps.keys, strict=False):
                assert os.pread(fd, 4096, addr) == ps.pages[key], hex(addr)
        finally:
            os.close(fd)
        assert list(ps.addresses) == sorted(ps.addresses)
        assert len(ps.pages) == c.meta["distinct_pages"] < len(ps.keys)
        assert len(set(ps.pages)) == len(ps.pages)  # stored once each
        names = {r["name"] for r in ps.regions}
        assert "[heap]" in names and "[stack]" in names
    finally:
        os.kill(child.pid, signal.SIGCONT)


def test_freeze_resumes_the_process(child, tmp_path):
    r = xcfbench("capture", child.pid, "--freeze", "-q", "-o", tmp_path / "p.img")
    assert r.returncode == 0 and r.stderr == ""
    assert open_container(str(tmp_path / "p.img")).meta["frozen"] is True
    assert _running(child.pid)


def test_exit_midway_keeps_what_was_read(tmp_path):
    from xcfbench.sim.capture import CaptureStats, _capture_one
    from xcfbench.sim.images import IMAGE_MAGIC, ContainerWriter

    p = subprocess.Popen(["env", "-i", PYTHON, "-c", "pass"])
    p.wait()
    with open(tmp_path / "x", "wb") as f:
        w = ContainerWriter(f, IMAGE_MAGIC)
        assert _capture_one(p.pid, "python3", w, DigestSet(), 0, CaptureStats(), None) is False


def _corrupt(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x55
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage, words",
    [
        ("truncate", ("truncated",)),
        ("body", ("corrupted", "body checksum")),
        ("header", ("corrupted", "header checksum")),
        ("future", ("format version 2", "upgrade")),
        ("not-an-image", ("not an xcfbench page image",)),
    ],
)
@pytest.mark.parametrize("command", ["run", "profile"])
def test_damaged_image_is_refused(tmp_path, damage, words, command):
    bad = tmp_path / "bad.xcfimg"
    shutil.copy(CORPUS_IMAGE, bad)
    if damage == "truncate":
        bad.write_bytes(bad.read_bytes()[:-1000])
    elif damage == "body":
        _corrupt(bad, 4096 + 5000)
    elif damage == "header":
        _corrupt(bad, 60)
    elif damage == "future":
        data = bytearray(bad.read_bytes())
        data[8:12] = struct.pack("<I", 2)
        bad.write_bytes(bytes(data))
    else:
        bad.write_bytes(b"hello\n" * 1000)
    out = tmp_path / "out"
    if command == "run":
        r = xcfbench(
            "run", "--fill", f"image:{bad}", "--size", "1M", "--limit", "512K", "-q", "-o", out
        )
    else:
        r = xcfbench("profile", bad, "-o", out)
    one_line_error(r, *words)
    assert not out.exists() and os.listdir(tmp_path) == ["bad.xcfimg"]


def test_capture_of_no_such_process(tmp_path):
    p = subprocess.Popen(["true"])
    p.wait()  # a PID that existed and is gone (reuse is unlikely)
    r = xcfbench("capture", p.pid, "-o", tmp_path / "x.img")
    one_line_error(r, f"no process {p.pid}")
    assert os.listdir(tmp_path) == []


def _main_as(uid: int, args: list[str]) -> tuple[int, str]:
    """xcfbench's main(args) in a forked child that has dropped to uid: (status, stderr).
    Forked, not exec'd, because the interpreter may live where uid cannot read it."""
    import xcfbench.cli.images  # noqa: F401  (everything capture needs, imported as root)
    import xcfbench.sim.capture  # noqa: F401
    from xcfbench.cli import main

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        code = 70
        try:
            os.close(r)
            sys.stderr = os.fdopen(w, "w")
            os.setgid(uid)
            os.setgroups([])
            os.setuid(uid)
            main(args)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        err = f.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), err


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another uid")
def test_capture_without_permission(child):
    # As uid 65534 (nobody) we may not read our root-owned child: the honest situation of
    # a user pointing capture at someone else's process.
    import tempfile

    d = tempfile.mkdtemp()
    try:
        os.chmod(d, 0o777)
        code, err = _main_as(65534, ["capture", str(child.pid), "-o", f"{d}/x.img"])
        assert code == 2, err
        assert err.count("\n") == 1 and err.startswith("xcfbench: error: "), err
        for w in ("permission denied", "CAP_SYS_PTRACE", "ptrace_scope"):
            assert w in err
        assert os.listdir(d) == []
    finally:
        shutil.rmtree(d)


def test_capture_needs_pids_or_all(tmp_path):
    one_line_error(xcfbench("capture", "-o", tmp_path / "x"), "PIDs or --all")


def test_digest_set_is_a_set_in_at_most_16_bytes_each():
    import random

    rng = random.Random(1)
    s, ref = DigestSet(), set()
    for _ in range(300_000):
        d = rng.getrandbits(64) if rng.random() < 0.8 else rng.choice((0, 1, 5, 7))
        assert s.add(d) == ((d or 1) not in ref)
        ref.add(d or 1)
    assert s.count == len(ref)
    assert s.nbytes <= 16 * s.count + 16 * DigestSet.SHARDS * DigestSet.FIRST // 8


# ---- profiles and --fill image: ------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_profile(tmp_path_factory):
    out = tmp_path_factory.mktemp("prof") / "p.xcfprof"
    r = xcfbench("profile", CORPUS_IMAGE, "-c", "lzo1x-1", "-o", out)
    assert r.returncode == 0, r.stderr
    return out


def _run(fill, *extra):
    r = xcfbench("run", "--fill", fill, "--size", "24M", "--limit", "4M", "-q", "--json", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("alloc", ["xcfmalloc", "xvmalloc", "zsmalloc"])
def test_run_on_a_profile_equals_the_run_on_its_image(corpus_profile, alloc):
    a = _run(f"image:{CORPUS_IMAGE}", "--alloc", alloc)
    b = _run(f"image:{corpus_profile}", "--alloc", alloc)
    assert _strip(a["results"]) == _strip(b["results"])
    pa, pb = a["config"], b["config"]
    assert (
        pa["image_checksum"] == pb["image_checksum"] == open_container(str(CORPUS_IMAGE)).checksum
    )
    assert pb["profile"] == corpus_profile.name and pa["image"] == CORPUS_IMAGE.name


def _strip(results: dict) -> dict:
    """Every field but the two that name the file the run read."""
    out = dict(results)
    out.pop("fill")
    prov = dict(out.pop("provenance"))
    prov.pop("profile", None)
    prov.pop("profile_checksum", None)
    return {**out, "provenance": prov}


def test_shuffle_is_seeded_and_recorded():
    a = _run(f"image:{CORPUS_IMAGE}", "--shuffle", "--seed", "3")
    b = _run(f"image:{CORPUS_IMAGE}", "--shuffle", "--seed", "3")
    c = _run(f"image:{CORPUS_IMAGE}")
    assert a == b
    assert a["config"]["shuffle"] is True and "shuffle" not in c["config"]
    assert a["results"]["samples"] != c["results"]["samples"]


def test_shuffle_order_is_a_permutation():
    from xcfbench.sim.workloads import create_workload

    w = create_workload(f"image:{CORPUS_IMAGE}", seed=5, shuffle=True)
    plain = create_workload(f"image:{CORPUS_IMAGE}")
    n = len(plain.order)
    assert sorted(w.key(i) for i in range(n)) == sorted(plain.key(i) for i in range(n))
    assert [w.key(i) for i in range(n)] != [plain.key(i) for i in range(n)]
    assert w.key(n + 7) == w.key(7)  # cycles


@pytest.mark.parametrize(
    "args, words",
    [
        (("--verify",), ("--verify needs page bytes",)),
        (("-c", "lzo1x-1-linux31"), ("does not record lzo1x-1-linux31",)),
    ],
)
def test_what_a_profile_cannot_do_is_refused(corpus_profile, tmp_path, args, words):
    r = xcfbench(
        "run",
        "--fill",
        f"image:{corpus_profile}",
        "--size",
        "1M",
        "--limit",
        "512K",
        "-q",
        "-o",
        tmp_path / "out.json",
        *args,
    )
    one_line_error(r, *words)
    assert not (tmp_path / "out.json").exists()


def test_shuffle_needs_an_image_fill():
    one_line_error(xcfbench("run", "--fill", "zero", "--shuffle", "-q"), "--shuffle")


def test_profile_holds_no_page_bytes_and_a_fresh_key(corpus_profile, tmp_path):
    from xcfbench.sim.images import _body

    c = open_container(str(corpus_profile))
    assert c.kind == "profile" and c.meta["source"]["image"] == CORPUS_IMAGE.name
    body = b"".join(_body(c))
    image = load_image(open_container(str(CORPUS_IMAGE)))
    for page in image.pages:
        chunk = page[1024:1056]
        if len(set(chunk)) > 4:
            assert chunk not in body
    ps = load_profile(c)
    assert list(ps.keys) == list(image.keys)  # duplicates still seen
    again = tmp_path / "again.xcfprof"
    assert xcfbench("profile", CORPUS_IMAGE, "-c", "lzo1x-1", "-o", again).returncode == 0
    ps2 = load_profile(open_container(str(again)))
    assert not set(ps.hashes) & set(ps2.hashes)  # a new key each time
    assert list(ps.lengths[0]) == list(ps2.lengths[0])


def test_profile_records_every_registered_compressor_and_call(tmp_path):
    from xcfbench.cli.images import profile_compressors
    from xcfbench.sim.compressors import COMPRESSORS

    comps = profile_compressors((), ())
    assert {(c.name, c.call) for c in comps} == {
        (name, call) for name, cls in COMPRESSORS.items() for call in cls.calls
    }


def test_profile_flags_zero_and_same_filled(tmp_path):
    from xcfbench.sim.images import FLAG_SAME, FLAG_ZERO

    image = load_image(open_container(str(CORPUS_IMAGE)))
    ps = load_profile(open_container(str(_profile_of(tmp_path))))
    for k, page in enumerate(image.pages):
        word = page[:8]
        same = page == word * 512
        assert bool(ps.flags[k] & FLAG_SAME) == same
        assert bool(ps.flags[k] & FLAG_ZERO) == (page == bytes(4096))


def _profile_of(tmp_path):
    out = tmp_path / "p.xcfprof"
    assert xcfbench("profile", CORPUS_IMAGE, "-c", "lzo1x-1", "-o", out).returncode == 0
    return out


def test_corpus_image_provenance():
    c = open_container(str(CORPUS_IMAGE))
    assert c.meta["executables"] == ["python3"] and c.meta["complete"]
    assert c.meta["pages"] == sum(1 for r in iter_image(c) if r[0] in ("N", "D"))


def test_seed_experiment_on_the_corpus_image():
    r = xcfbench(
        "compare",
        "--alloc",
        "xv,xcf",
        "--fill",
        f"image:{CORPUS_IMAGE}",
        "--size",
        "64M",
        "--limit",
        "32M",
        "-q",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["results"]
    assert [row["allocator"] for row in rows] == ["xvmalloc", "xcfmalloc"]
    assert all(row["curr_pages"] > 0 for row in rows)


# ---- record and import ------------------------------------------------------------

SAMPLES = REPO / "tests" / "data" / "bpftrace"


@pytest.mark.parametrize("name", ["basic", "edge"])
@pytest.mark.parametrize("ext", ["", ".gz", ".xz", ".zst"])
def test_import_of_hand_written_samples_is_byte_for_byte(tmp_path, name, ext):
    from xcfbench.compressed_io import close_text_stream, open_text_stream

    out = tmp_path / f"{name}.trace{ext}"
    r = xcfbench("import", SAMPLES / f"{name}.raw", "-o", out)
    assert r.returncode == 0, r.stderr
    s = open_text_stream(str(out))
    try:
        assert s.read() == (SAMPLES / f"{name}.trace").read_text()
    finally:
        close_text_stream(s)
    if ext:
        assert out.read_bytes() != (SAMPLES / f"{name}.trace").read_bytes()


@pytest.mark.parametrize("ext", [".gz", ".xz", ".zst"])
def test_import_reads_compressed_recordings_and_refuses_truncated_ones(tmp_path, ext):
    from xcfbench.compressed_io import atomic_text_output

    raw = tmp_path / f"edge.raw{ext}"
    with atomic_text_output(str(raw)) as f:
        f.write((SAMPLES / "edge.raw").read_text() * 20)
    r = xcfbench("import", raw, "-o", tmp_path / "t.trace")
    assert r.returncode == 0, r.stderr
    data = raw.read_bytes()
    raw.write_bytes(data[: len(data) // 2])
    one_line_error(xcfbench("import", raw, "-o", tmp_path / "u.trace"))
    assert not (tmp_path / "u.trace").exists()


def test_imported_trace_replays(tmp_path):
    out = tmp_path / "e.trace"
    assert xcfbench("import", SAMPLES / "edge.raw", "-o", out).returncode == 0
    r = xcfbench("replay", "--alloc", "zsmalloc", "--json", "-q", out)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["results"]["allocs"] == 6


def test_import_refuses_a_foreign_line(tmp_path):
    raw = tmp_path / "x.raw"
    raw.write_text("M 1 0 100 4096\nhello world\n")
    one_line_error(xcfbench("import", raw, "-o", tmp_path / "t"), "x.raw:2")
    assert not (tmp_path / "t").exists()


def test_record_prints_the_bpftrace_program():
    r = xcfbench("record", "--print-bpftrace")
    assert r.returncode == 0
    for probe in ("kprobe:zs_malloc", "kretprobe:zs_malloc", "kprobe:zs_free", "retval"):
        assert probe in r.stdout
    one_line_error(xcfbench("record"), "--print-bpftrace")


@pytest.mark.parametrize("ext", [".gz", ".xz", ".zst"])
def test_gen_trace_writes_compressed_by_extension(tmp_path, ext):
    from xcfbench.compressed_io import close_text_stream, open_text_stream

    plain, packed = tmp_path / "c.trace", tmp_path / f"c.trace{ext}"
    assert xcfbench("gen-trace", "churn", "-p", "ops=2000", "-o", plain).returncode == 0
    assert xcfbench("gen-trace", "churn", "-p", "ops=2000", "-o", packed).returncode == 0
    stream = open_text_stream(str(packed))
    try:
        assert stream.read() == plain.read_text()
    finally:
        close_text_stream(stream)
    assert len(packed.read_bytes()) < len(plain.read_bytes())


def test_frozen_stops_and_always_resumes(child):
    from xcfbench.sim.capture import frozen

    before = signal.getsignal(signal.SIGTERM)  # another test's CLI may have set one
    with frozen([child.pid]):
        assert _state(child.pid) == "T"
    assert _running(child.pid)
    with pytest.raises(KeyboardInterrupt):
        with frozen([child.pid]):
            assert _state(child.pid) == "T"
            os.kill(os.getpid(), signal.SIGTERM)  # raises here; SIGCONT still sent
            import time

            time.sleep(5)
    assert _running(child.pid)
    assert signal.getsignal(signal.SIGTERM) == before


def test_capture_of_two_processes_names_both(tmp_path):
    kids = [
        subprocess.Popen(
            ["env", "-i", PYTHON, "-c", "import time; print('ready', flush=True); time.sleep(600)"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for k in kids:
            assert k.stdout.readline().strip() == "ready"
        out = tmp_path / "two.xcfimg"
        r = xcfbench("capture", kids[0].pid, kids[1].pid, "-q", "-o", out)
        assert r.returncode == 0, r.stderr
        ps = load_image(open_container(str(out)))
        assert [p["pid"] for p in ps.processes] == [k.pid for k in kids]
        assert {reg["pid"] for reg in ps.regions} == {k.pid for k in kids}
        assert len(ps.pages) < len(ps.keys)  # the two interpreters share many pages
    finally:
        for k in kids:
            k.kill()
            k.wait()
            k.stdout.close()

"""Trace v1 reading, its error messages, and replay's bookkeeping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xcfbench.errors import InputError
from xcfbench.sim.arch import I386
from xcfbench.sim.trace import FREE, format_trace, parse_trace, read_trace, replay


def test_parse_skips_blank_and_comment_lines():
    t = parse_trace(["# hello", "", "a 1 100", "  ", "f 1", "a 1 7"])
    assert t.ops == ((1, 100), (1, FREE), (1, 7))
    assert t.comments == ("hello",)


@pytest.mark.parametrize(
    "line",
    ["a 1", "a x 10", "a 1 10 3", "f", "f 1 2", "x 1 2", "a -1 5", "a 1 -5", "f -3", "a 1 1.5"],
)
def test_malformed_line_names_its_number(line):
    with pytest.raises(InputError, match=r"t:3: malformed trace line"):
        parse_trace(["# c", "a 9 1", line], name="t")


def test_duplicate_live_id():
    with pytest.raises(InputError, match=r"t:2: duplicate live ID 4"):
        parse_trace(["a 4 10", "a 4 10"], name="t")


@pytest.mark.parametrize("lines", [["f 7"], ["a 7 1", "f 7", "f 7"]])
def test_free_of_id_not_live(lines):
    with pytest.raises(InputError, match=rf"t:{len(lines)}: free of ID 7, which is not live"):
        parse_trace(lines, name="t")


def test_read_trace_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_trace(tmp_path / "nope.trace")
    with pytest.raises(InputError, match="is a directory"):
        read_trace(tmp_path)
    binary = tmp_path / "bin.trace"
    binary.write_bytes(b"a 1 1\n\xff\xfe\n")
    with pytest.raises(InputError, match="not UTF-8"):
        read_trace(binary)


ops_strategy = st.lists(
    st.tuples(st.booleans(), st.integers(0, 20), st.integers(0, 5000)), max_size=60
)


def _legal(raw):
    live: set[int] = set()
    ops = []
    for is_alloc, oid, size in raw:
        if oid in live:
            ops.append((oid, FREE))
            live.remove(oid)
        elif is_alloc:
            ops.append((oid, size))
            live.add(oid)
    return ops


@given(ops_strategy)
def test_format_then_parse_round_trips(raw):
    ops = _legal(raw)
    assert parse_trace(format_trace(ops, ["x"]).splitlines()).ops == tuple(ops)


def test_replay_counts_refused_allocations_and_their_frees():
    # ideal refuses 0 and anything over a page; the frees of those IDs are counted no-ops.
    t = parse_trace(["a 1 0", "a 2 5000", "a 3 100", "f 1", "f 2", "a 1 4096", "f 3"])
    r = replay(t, "ideal", I386)
    assert (r.allocs, r.frees, r.failed_allocs, r.frees_of_failed) == (4, 3, 2, 2)
    assert (r.live_objects, r.live_bytes, r.pool_pages, r.peak_pool_pages) == (1, 4096, 1, 2)
    assert (r.peak_live_objects, r.peak_live_bytes) == (2, 4196)


@pytest.mark.parametrize("pure", [False, True])
def test_a_fifo_whose_writer_comes_later_is_waited_for(tmp_path, monkeypatch, pure):
    """`mkfifo f; xcfbench replay f & ...; cat trace > f`: the replay waits for the
    writer and reads everything (it used to read an empty trace at once)."""
    import os
    import threading
    import time

    from xcfbench.sim.trace import open_trace

    monkeypatch.setenv("XCFBENCH_PURE", "1" if pure else "")
    fifo = tmp_path / "f"
    os.mkfifo(fifo)

    def write_later() -> None:
        time.sleep(0.3)
        deadline = time.monotonic() + 10  # no reader by then: give up, the test fails
        while True:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.05)
        os.set_blocking(fd, True)
        os.write(fd, b"a 1 100\na 2 200\nf 1\n")
        os.close(fd)

    writer = threading.Thread(target=write_later)
    writer.start()
    try:
        with open_trace(fifo) as stream:
            result = replay(stream, "zbud", I386)
    finally:
        writer.join()
    assert (result.ops, result.live_objects, result.live_bytes) == (3, 1, 200)

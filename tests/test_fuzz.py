"""Fuzzing the input paths: whatever bytes or options come in, the answer is a result or
an InputError (exit 2, one line), never another exception or a traceback."""

from __future__ import annotations

import json

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xcfbench.cli import cli
from xcfbench.errors import InputError
from xcfbench.results.compare import parse_threshold, thresholds_for
from xcfbench.results.document import json_loads, parse_document
from xcfbench.sim.trace import parse_trace

FAST = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
CLI = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Trace-like lines: mostly near-valid, with the characters that broke the old reader.
_token = st.sampled_from(
    [
        "a",
        "f",
        "#",
        "1",
        "0",
        "18446744073709551615",
        "18446744073709551616",
        "+5",
        "1_000",
        "\u0661",
        "-1",
        " ",
        "\t",
        "\r",
        "\x0b",
        "\x0c",
        "\u2028",
        "\ufeff",
        "\x00",
        "\xff",
        "999",
    ]
)
_line = st.lists(_token, max_size=6).map("".join)


@FAST
@given(st.lists(st.one_of(_line, st.text(max_size=30)), max_size=20), st.booleans())
def test_trace_reader_returns_or_raises_input_error(lines, crlf):
    end = "\r\n" if crlf else "\n"
    data = [(line + end).encode("utf-8", "surrogatepass") for line in lines]
    try:
        trace = parse_trace(data)
    except InputError as e:
        assert "\n" not in str(e)
        return
    for oid, size in trace.ops:
        assert 0 <= oid < 2**64 and -1 <= size < 2**64


@FAST
@given(st.binary(max_size=200))
def test_trace_reader_on_raw_bytes(data):
    try:
        parse_trace(data.splitlines(keepends=True))
    except InputError as e:
        assert "\n" not in str(e)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@FAST
@given(
    st.one_of(
        _json_values.map(lambda v: json.dumps(v)),
        st.fixed_dictionaries(
            {
                "schema_version": _json_values,
                "kind": _json_values,
                "config": _json_values,
                "results": _json_values,
            }
        ).map(json.dumps),
        st.text(max_size=100),
    )
)
def test_document_loader_returns_or_raises_input_error(text):
    try:
        doc = parse_document(text, "fuzz.json")
    except InputError as e:
        assert "\n" not in str(e)
        return
    assert type(doc["schema_version"]) is int


def test_document_loader_extremes():
    for text in ("[" * 200000, "1" + "0" * 400, '{"a": ' * 5000):
        try:
            json_loads(text, "x")
        except InputError:
            pass


@FAST
@given(
    st.lists(
        st.one_of(
            st.text(max_size=30),
            st.tuples(
                st.sampled_from(["zv_page_count", "pool_pages", "nonexistent", "x", ""]),
                st.sampled_from([":", ": ", "::", ""]),
                st.sampled_from(["+", "-", "", "±"]),
                st.sampled_from(["5", "0", ".5", "1e400", "9" * 400, "nan", "", "\u0665"]),
                st.sampled_from(["%", "", " %", "%%"]),
            ).map("".join),
        ),
        max_size=4,
    )
)
def test_fail_on_expressions(texts):
    try:
        thresholds = thresholds_for(texts)
    except InputError as e:
        assert "\n" not in str(e)
        return
    for t in texts:
        parse_threshold(t)
    assert thresholds


_options = st.sampled_from(
    [
        "--size",
        "--limit",
        "--totalram",
        "--overhead-pages",
        "--reclaim-batch",
        "--seed",
        "--zv-max-zsize",
        "--policy-percent",
        "--chain-size",
        "--compact",
        "--opt",
        "--alloc",
        "--fill",
        "--arch",
        "--compressor",
        "--format",
    ]
)
_values = st.sampled_from(
    [
        "0",
        "1",
        "-1",
        "4K",
        "65G",
        "1T",
        "99999999999999999999999",
        "1_000",
        "+5",
        "nan",
        "",
        ",",
        "xv",
        "zs",
        "text",
        "every:0",
        "end",
        "reserve_pages=999999999",
        "max_compact_passes=0",
        "chain_size=3",
        "rule=v9",
        "\u0661",
        "x" * 300,
    ]
)


@CLI
@given(
    st.lists(st.tuples(_options, _values), max_size=3), st.sampled_from(["run", "compare", "sweep"])
)
def test_option_parsing_is_exit_0_or_2(tmp_path_factory, pairs, command):
    tmp = tmp_path_factory.mktemp("fuzz")
    args = [command, "--quiet"]
    for option, value in pairs:
        args += [option, value]
    if command == "sweep":
        args += ["--results", str(tmp / "s.jsonl")]
    # Keep the runs that are valid short: a small size unless the fuzz chose one.
    if "--size" not in args:
        args += ["--size", "4M"]
    if "--limit" not in args:
        args += ["--limit", "2M"]
    if command != "run" and "--alloc" not in args:
        args += ["--alloc", "ideal"]
    if "--fill" not in args:
        args += ["--fill", "zero"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code in (0, 2), (args, res.exception, res.output)
    assert res.exception is None or isinstance(res.exception, SystemExit), (args, res.exception)
    if res.exit_code == 2:
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def _cli_ok(args: list[str], input: bytes | None = None) -> None:
    res = CliRunner().invoke(cli, args, input=input)
    assert res.exit_code in (0, 2), (args, res.exception, res.output)
    assert res.exception is None or isinstance(res.exception, SystemExit), (args, res.exception)
    if res.exit_code == 2:
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr


@CLI
@given(st.lists(_line, max_size=8), st.sampled_from(["xv", "zs", "xcf", "zbud"]), st.booleans())
def test_replay_from_stdin_is_exit_0_or_2(lines, alloc, verify):
    data = "".join(line + "\n" for line in lines).encode("utf-8", "surrogatepass")
    _cli_ok(
        ["replay", "--alloc", alloc, "--quiet", "--json", "-"] + (["--verify"] if verify else []),
        input=data,
    )


@CLI
@given(
    st.sampled_from(["constant", "gauss", "uniform", "churn", "phase-change", "nope"]),
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "count",
                    "ops",
                    "p",
                    "lo",
                    "hi",
                    "seed",
                    "size",
                    "mean",
                    "sd",
                    "keep_small",
                    "n_small",
                    "x",
                ]
            ),
            st.sampled_from(
                [
                    "0",
                    "1",
                    "-1",
                    "0.5",
                    "2",
                    "nan",
                    "inf",
                    "1e400",
                    "5000",
                    "10",
                    "",
                    "x",
                    "99999999999",
                ]
            ),
        ),
        max_size=3,
    ),
)
def test_gen_trace_parameters_are_exit_0_or_2(kind, params):
    args = ["gen-trace", kind]
    for name, value in params:
        args += ["-p", f"{name}={value}"]
    names = {n for n, _ in params}
    if not names & {"count", "ops", "n_small"}:  # keep the valid traces small
        args += ["-p", {"churn": "ops", "phase-change": "n_small"}.get(kind, "count") + "=50"]
    _cli_ok(args)

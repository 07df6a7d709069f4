"""Pictures: each kind written as PNG, opened again and checked; SVG; the terminal."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests.helpers import GOLDEN
from xcfbench.cli import cli
from xcfbench.output.plot import prepare
from xcfbench.results.compare import load_sources

SMALL = ["--size", "8M", "--limit", "4M", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> str:
    """zsmalloc and xvmalloc over zero-tagged pages: a histogram, samples, a class table."""
    path = tmp_path_factory.mktemp("plot") / "runs.json"
    res = CliRunner().invoke(
        cli, ["compare", "--alloc", "zs,xv", "--fill", "zero-tagged", *SMALL, "--output", str(path)]
    )
    assert res.exit_code == 0, res.output
    return str(path)


def plot(*args: str):
    return CliRunner().invoke(cli, ["plot", *args])


@pytest.mark.parametrize("kind", ["sizes", "pool", "classes"])
def test_png_of_each_kind_opens_at_its_size_and_is_not_blank(runs, tmp_path, kind):
    import matplotlib.image
    import numpy as np

    out = tmp_path / f"{kind}.png"
    res = plot(runs, "--kind", kind, "--out", str(out))
    assert res.exit_code == 0, res.output
    assert res.stdout == ""  # the picture is the artifact
    width, height = prepare(kind, load_sources([runs])).size_px
    image = matplotlib.image.imread(str(out))
    assert image.shape[:2] == (height, width)
    assert width == 800 and height >= 375
    pixels = image[..., :3]
    assert float(np.var(pixels)) > 0.005  # not one flat colour
    # Something besides the white background and black text: the data's colours.
    coloured = np.abs(pixels[..., 0] - pixels[..., 2]) > 0.2
    assert coloured.mean() > 0.002


def test_pictures_are_the_same_bytes_every_time(runs, tmp_path):
    for ext in ("png", "svg"):
        a, b = tmp_path / f"a.{ext}", tmp_path / f"b.{ext}"
        assert plot(runs, "--kind", "pool", "--out", str(a)).exit_code == 0
        assert plot(runs, "--kind", "pool", "--out", str(b)).exit_code == 0
        assert a.read_bytes() == b.read_bytes()
    assert (tmp_path / "a.svg").read_text().lstrip().startswith("<?xml")


def test_series_come_from_the_stored_result(runs):
    pic = prepare("pool", load_sources([runs]))
    assert [s.label for s in pic.series] == ["zsmalloc zero-tagged", "xvmalloc zero-tagged"]
    zs = pic.series[0]
    assert zs.x[-1] == 2048 and zs.y2[-1] == 1376  # pages written, curr_pages at the end
    sizes = prepare("sizes", load_sources([runs]))
    assert sum(sizes.series[0].y) == 1376 and sizes.marks == ((3584.0, "zv_max_zsize 3584"),)
    classes = prepare("classes", load_sources([runs]))
    assert len(classes.series) == 1  # xvmalloc has no class table
    assert "1376 of" in classes.series[0].note


@pytest.mark.parametrize(
    "kind,title",
    [("sizes", "Compressed sizes"), ("pool", "Pool pages"), ("classes", "zsmalloc zero-tagged")],
)
def test_terminal_rendering_without_out(runs, kind, title):
    res = plot(runs, "--kind", kind, "--width", "90", "--height", "20")
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert title in out and "\x1b[" not in out  # no colours into a pipe
    assert max(len(line) for line in out.splitlines()) <= 90
    assert plot(runs, "--kind", kind, "--width", "90", "--height", "20").stdout == out


@pytest.mark.parametrize(
    "args,message",
    [
        (["--kind", "classes"], "needs zsmalloc results"),
        (["--out", "x.pdf"], "end it in .png or .svg"),
        (["--out", "/nonexistent/dir/x.png"], "does not exist"),
    ],
)
def test_plot_bad_input_exits_2(args, message):
    res = plot(str(GOLDEN / "run-xvmalloc-zero.json"), *args)
    assert res.exit_code == 2 and message in res.stderr


def test_plot_refuses_replays_and_unknown_kinds():
    res = plot(str(GOLDEN / "replay-seed-zero.json"))
    assert res.exit_code == 2 and "--kind sizes needs run results" in res.stderr
    res = plot(str(GOLDEN / "run-xvmalloc-zero.json"), "--kind", "pie")
    assert res.exit_code == 2


def test_classes_of_a_zsmalloc_replay(tmp_path):
    from tests.helpers import TRACES

    doc = tmp_path / "replay.json"
    res = CliRunner().invoke(
        cli,
        ["replay", "--alloc", "zs", "--quiet", "--output", str(doc), str(TRACES / "uniform.trace")],
    )
    assert res.exit_code == 0, res.output
    pic = prepare("classes", load_sources([str(doc)]))
    (series,) = pic.series
    assert series.label == "uniform.trace zsmalloc" and len(series.x) > 20
    assert all(used <= allocated for used, allocated in zip(series.y2, series.y, strict=False))
    out = tmp_path / "classes.png"
    assert plot(str(doc), "--kind", "classes", "--out", str(out)).exit_code == 0
    assert out.stat().st_mode & 0o044  # readable like any new file


def test_pool_draws_live_pages_and_says_the_fragmentation(tmp_path, runner):
    """With churn the samples carry live pages (ceil(live bytes / 4096)); the pool picture
    draws them and its title gives the pool against them at the end."""
    path = tmp_path / "churn.json"
    args = ["run", "--frontend", "zram", "--alloc", "zs", "-c", "lzo-rle", "--fill", "text"]
    res = runner.invoke(
        cli, [*args, *SMALL, "--ops", "3000", "--access", "zipf:1.1", "--output", str(path)]
    )
    assert res.exit_code == 0, res.output
    (source,) = load_sources([str(path)])
    samples = source.entries[0].result["samples"]
    pic = prepare("pool", [source])
    (series,) = pic.series
    assert series.y4 == tuple(s[3] for s in samples)
    assert all(pool >= live for pool, live in zip(series.y, series.y4, strict=True))
    pool, live = samples[-1][2], samples[-1][3]
    assert f"at the end: pool {pool} pages for {live} pages of live bytes" in pic.title

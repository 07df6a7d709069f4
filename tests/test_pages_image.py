"""`xcfbench pages` reads page images: their pages in address order, as if raw."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from xcfbench.cli import cli
from xcfbench.sim.images import image_pages

IMAGE = Path(__file__).resolve().parents[1] / "corpora" / "python-strings.xcfimg"


def test_pages_of_an_image_equal_pages_of_its_raw_pages(tmp_path: Path):
    raw = tmp_path / "image.raw"
    raw.write_bytes(b"".join(image_pages(str(IMAGE))))
    args = ["pages", "-c", "lz4", "--format", "csv"]
    a = CliRunner().invoke(cli, [*args, str(IMAGE)])
    b = CliRunner().invoke(cli, [*args, str(raw)])
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    assert a.stdout == b.stdout
    assert len(a.stdout.splitlines()) == 1 + raw.stat().st_size // 4096


def test_pages_refuses_a_profile_and_a_damaged_image(tmp_path: Path):
    prof = tmp_path / "p.xcfprof"
    r = CliRunner().invoke(cli, ["profile", str(IMAGE), "-o", str(prof), "-c", "lz4"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["pages", "-c", "lz4", str(prof)])
    assert r.exit_code == 2 and "holds compressed lengths" in r.stderr
    bad = tmp_path / "bad.xcfimg"
    bad.write_bytes(IMAGE.read_bytes()[:-100])
    r = CliRunner().invoke(cli, ["pages", "-c", "lz4", str(bad)])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert r.stdout == ""

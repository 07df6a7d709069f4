"""The wheel's contents: every package of the tree is listed in pyproject.toml, and the
corpus is package data found through importlib.resources."""

from __future__ import annotations

import tomllib
from importlib.resources import files
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_package_of_the_tree_is_listed():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    tree = {
        ".".join(p.relative_to(REPO).parts)
        for p in (REPO / "xcfbench").rglob("*")
        if p.is_dir() and p.name != "__pycache__" and any(p.glob("*.py"))
    }
    assert tree | {"xcfbench", "xcfbench.corpora"} == listed


def test_the_corpus_is_package_data():
    corpus = files("xcfbench.corpora") / "english.txt"
    assert corpus.is_file()
    assert len(corpus.read_bytes()) == 2 << 20


def test_license_matches_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["project"]["license"] == "GPL-2.0-only"
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "GPL-2.0-only" in text and "GNU GENERAL PUBLIC LICENSE" in text and "Version 2" in text

"""Workloads: the pages a program writes, in order.

A workload maps a page index (0, 1, 2, ... in write order) to a key, and a key to the 4 KiB
of the page.  Pages with the same key have the same bytes, so the run compresses each key
once (compressors.SizeCache).  Workloads are pure functions of their seed.

  zero        4096 zero bytes, every page (the letter's "zero filled")
  zero-tagged a zero page whose last 4 bytes hold the page index: the hypothesis of
              spec zcache-2011.md §5.4 for the letter's xvmalloc zero row
  text        English text, consecutive 4 KiB pages of a corpus, cycling; the default
              corpus is corpora/english.txt (calibrated: 75% +- 1% under lzo1x-1);
              --corpus PATH uses any file instead
  random      incompressible bytes: every page compresses past zv_max_zsize and is rejected
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import ClassVar

from xcfbench.sim.arch import PAGE_SIZE
from xcfbench.errors import InputError
from xcfbench.io import MAX_CORPUS_BYTES, read_input

def default_corpus() -> str:
    """corpora/english.txt, shipped as package data (the package xcfbench.corpora), so a
    checkout, an editable install and a wheel find it alike; XCFBENCH_CORPORA names
    another folder."""
    if os.environ.get("XCFBENCH_CORPORA"):
        return str(Path(os.environ["XCFBENCH_CORPORA"]) / "english.txt")
    from importlib.resources import files
    return str(files("xcfbench.corpora") / "english.txt")
ZERO_PAGE = bytes(PAGE_SIZE)


class Workload:
    name: ClassVar[str]
    summary: ClassVar[str]
    uses_corpus: ClassVar[bool] = False

    def __init__(self, seed: int = 0, corpus: str | None = None) -> None:
        self.seed = seed

    def key(self, index: int) -> object:
        raise NotImplementedError

    def page(self, key: object) -> bytes:
        raise NotImplementedError

    def describe(self) -> dict[str, object]:
        """What goes into the result's config so that a run can be reproduced."""
        return {}


class ZeroFill(Workload):
    name = "zero"
    summary = "every page is 4096 zero bytes (the letter's zero-filled run)"

    def key(self, index: int) -> object:
        return 0

    def page(self, key: object) -> bytes:
        return ZERO_PAGE


class ZeroTaggedFill(Workload):
    name = "zero-tagged"
    summary = "zero pages whose last 4 bytes hold the page index (spec §5.4 hypothesis)"

    def key(self, index: int) -> object:
        return index

    def page(self, key: object) -> bytes:
        return ZERO_PAGE[:-4] + (key & 0xFFFFFFFF).to_bytes(4, "little")


class RandomFill(Workload):
    name = "random"
    summary = "incompressible random bytes; every put is rejected as compress_poor"

    def key(self, index: int) -> object:
        return index

    def page(self, key: object) -> bytes:
        return random.Random(self.seed * 0x1_0000_0000 + key).randbytes(PAGE_SIZE)


class TextFill(Workload):
    name = "text"
    summary = "English text, 4 KiB pages of corpora/english.txt (75% under lzo1x-1), or --corpus"
    uses_corpus = True

    def __init__(self, seed: int = 0, corpus: str | None = None) -> None:
        super().__init__(seed)
        self.corpus_path = str(corpus) if corpus is not None else default_corpus()
        data = read_corpus(self.corpus_path)
        self.digest = hashlib.sha256(data).hexdigest()
        self.corpus_bytes = len(data)
        if len(data) % PAGE_SIZE:
            # A partial last page is padded with zeros, as a program's last buffer would be.
            data += bytes(PAGE_SIZE - len(data) % PAGE_SIZE)
        self.pages = [data[i:i + PAGE_SIZE] for i in range(0, len(data), PAGE_SIZE)]
        # The seed picks where in the corpus the program starts writing.
        self.start = random.Random(seed).randrange(len(self.pages))

    def key(self, index: int) -> object:
        return (self.start + index) % len(self.pages)

    def page(self, key: object) -> bytes:
        return self.pages[key]

    def describe(self) -> dict[str, object]:
        return {"corpus": os.path.basename(self.corpus_path), "corpus_sha256": self.digest,
                "corpus_bytes": self.corpus_bytes, "corpus_pages": len(self.pages)}


def read_corpus(path: str) -> bytes:
    data = read_input(path, "corpus", binary=True, limit=MAX_CORPUS_BYTES)
    if not data:
        raise InputError(f"corpus {path!r} is empty")
    return data


WORKLOADS: dict[str, type[Workload]] = {
    w.name: w for w in (ZeroFill, TextFill, ZeroTaggedFill, RandomFill)}


def get_workload_class(name: str) -> type[Workload]:
    try:
        return WORKLOADS[name]
    except KeyError:
        raise InputError(f"unknown fill {name!r}: choose from {', '.join(WORKLOADS)}") from None


def create_workload(name: str, seed: int = 0, corpus: str | None = None) -> Workload:
    cls = get_workload_class(name)
    if corpus is not None and not cls.uses_corpus:
        raise InputError(f"--corpus applies to the text fill, not {name!r}")
    return cls(seed=seed, corpus=corpus)

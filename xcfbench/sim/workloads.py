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
  file:PATHS  the pages of any files (comma-separated), read as the text fill reads its
              corpus (the same code): binary or text, cycling, the seed picks the start
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import ClassVar

from xcfbench.sim.arch import PAGE_SIZE
from xcfbench.errors import InputError
from xcfbench.io import iter_chunks

DEFAULT_CORPUS = Path(os.environ.get("XCFBENCH_CORPORA",
                                     Path(__file__).resolve().parents[2] / "corpora")) / "english.txt"
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
        self.corpus_path = str(corpus) if corpus is not None else str(DEFAULT_CORPUS)
        self._load([self.corpus_path], "corpus")

    def _load(self, paths: list[str], what: str) -> None:
        self.pages, self.digest, self.corpus_bytes = read_pages(paths, what)
        # The seed picks where in the corpus the program starts writing.
        self.start = random.Random(self.seed).randrange(len(self.pages))

    def key(self, index: int) -> object:
        return (self.start + index) % len(self.pages)

    def page(self, key: object) -> bytes:
        return self.pages[key]

    def describe(self) -> dict[str, object]:
        return {"corpus": os.path.basename(self.corpus_path), "corpus_sha256": self.digest,
                "corpus_bytes": self.corpus_bytes, "corpus_pages": len(self.pages)}


class FileFill(TextFill):
    """The text fill's pages, of any files: --fill file:PATH[,PATH...]."""
    name = "file"
    summary = ("file:PATH[,PATH...]: the 4 KiB pages of any files, binary or text (last page"
               " of each zero-padded), cycling")
    uses_corpus = False

    def __init__(self, seed: int = 0, corpus: str | None = None,
                 paths: tuple[str, ...] = ()) -> None:
        Workload.__init__(self, seed)
        if not paths:
            raise InputError("--fill file needs files: file:PATH[,PATH...]")
        self.paths = tuple(paths)
        self.corpus_path = ",".join(self.paths)
        self._load(list(self.paths), "file")

    def describe(self) -> dict[str, object]:
        return {**super().describe(),
                "corpus": ",".join(os.path.basename(p) for p in self.paths)}


def read_pages(paths: list[str], what: str) -> tuple[list[bytes], str, int]:
    """The 4 KiB pages of the files one after another, each file's partial last page padded
    with zeros, as a program's last buffer would be; with the SHA-256 and the length of
    their bytes.  A pipe is read as a stream; an empty input is refused."""
    digest = hashlib.sha256()
    pages: list[bytes] = []
    total = 0
    for path in paths:
        for chunk in iter_chunks(path, what, PAGE_SIZE):
            digest.update(chunk)
            total += len(chunk)
            pages.append(chunk if len(chunk) == PAGE_SIZE
                         else chunk + bytes(PAGE_SIZE - len(chunk)))
    return pages, digest.hexdigest(), total


WORKLOADS: dict[str, type[Workload]] = {
    w.name: w for w in (ZeroFill, TextFill, ZeroTaggedFill, RandomFill, FileFill)}


def get_workload_class(name: str) -> type[Workload]:
    if name.startswith("file:"):
        return FileFill
    try:
        return WORKLOADS[name]
    except KeyError:
        raise InputError(f"unknown fill {name!r}: choose from {', '.join(WORKLOADS)}") from None


def create_workload(name: str, seed: int = 0, corpus: str | None = None) -> Workload:
    cls = get_workload_class(name)
    if corpus is not None and not cls.uses_corpus:
        raise InputError(f"--corpus applies to the text fill, not {name!r}")
    if cls is FileFill:
        paths = tuple(p for p in name.partition(":")[2].split(",") if p)
        return FileFill(seed=seed, paths=paths)
    return cls(seed=seed, corpus=corpus)

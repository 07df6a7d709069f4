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
  image:FILE  the pages of a page image (xcfbench capture) or of a profile (xcfbench
              profile), in address order or shuffled (--shuffle, by the seed), cycling
  file:PATHS  the pages of any files (comma-separated), read as the text fill reads its
              corpus (the same code): binary or text, cycling, the seed picks the start
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from xcfbench.errors import InputError
from xcfbench.io import MAX_CORPUS_BYTES, iter_chunks, too_large
from xcfbench.sim.arch import PAGE_SIZE


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

    def key(self, index: int) -> int:
        raise NotImplementedError

    def page(self, key: int) -> bytes:
        raise NotImplementedError

    def describe(self) -> dict[str, object]:
        """What goes into the result's config so that a run can be reproduced."""
        return {}

    def period(self) -> int | None:
        """P when key(i) == key(i % P) for every page index i (the pages cycle); None
        when the pages do not repeat."""
        return None

    def known_sizes(self, compressor, verify: bool = False):
        """Recorded lengths for compressor, for a workload that has lengths instead of
        bytes (a profile): an object with clen(key) and same_filled(key); None otherwise."""
        return None


class ZeroFill(Workload):
    name = "zero"
    summary = "every page is 4096 zero bytes (the letter's zero-filled run)"

    def key(self, index: int) -> int:
        return 0

    def period(self) -> int | None:
        return 1

    def page(self, key: int) -> bytes:
        return ZERO_PAGE


class ZeroTaggedFill(Workload):
    name = "zero-tagged"
    summary = "zero pages whose last 4 bytes hold the page index (spec §5.4 hypothesis)"

    def key(self, index: int) -> int:
        return index

    def page(self, key: int) -> bytes:
        return ZERO_PAGE[:-4] + (key & 0xFFFFFFFF).to_bytes(4, "little")


class RandomFill(Workload):
    name = "random"
    summary = "incompressible random bytes; every put is rejected as compress_poor"

    def key(self, index: int) -> int:
        return index

    def page(self, key: int) -> bytes:
        return random.Random(self.seed * 0x1_0000_0000 + key).randbytes(PAGE_SIZE)


class TextFill(Workload):
    name = "text"
    summary = "English text, 4 KiB pages of corpora/english.txt (75% under lzo1x-1), or --corpus"
    uses_corpus = True

    def __init__(self, seed: int = 0, corpus: str | None = None) -> None:
        super().__init__(seed)
        self.corpus_path = str(corpus) if corpus is not None else default_corpus()
        self._load([self.corpus_path], "corpus")

    def _load(self, paths: list[str], what: str) -> None:
        self.pages, self.digest, self.corpus_bytes = read_pages(paths, what)
        # The seed picks where in the corpus the program starts writing.
        self.start = random.Random(self.seed).randrange(len(self.pages))

    def key(self, index: int) -> int:
        return (self.start + index) % len(self.pages)

    def period(self) -> int | None:
        return len(self.pages)

    def page(self, key: int) -> bytes:
        return self.pages[key]

    def describe(self) -> dict[str, object]:
        return {
            "corpus": os.path.basename(self.corpus_path),
            "corpus_sha256": self.digest,
            "corpus_bytes": self.corpus_bytes,
            "corpus_pages": len(self.pages),
        }


class FileFill(TextFill):
    """The text fill's pages, of any files: --fill file:PATH[,PATH...]."""

    name = "file"
    summary = (
        "file:PATH[,PATH...]: the 4 KiB pages of any files, binary or text (last page"
        " of each zero-padded), cycling"
    )
    uses_corpus = False

    def __init__(
        self, seed: int = 0, corpus: str | None = None, paths: tuple[str, ...] = ()
    ) -> None:
        Workload.__init__(self, seed)
        if not paths:
            raise InputError("--fill file needs files: file:PATH[,PATH...]")
        self.paths = tuple(paths)
        self.corpus_path = ",".join(self.paths)
        self._load(list(self.paths), "file")

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "corpus": ",".join(os.path.basename(p) for p in self.paths)}


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
            if total > MAX_CORPUS_BYTES:  # the pages are held in memory: bounded
                raise too_large(path, what, MAX_CORPUS_BYTES)
            pages.append(
                chunk if len(chunk) == PAGE_SIZE else chunk + bytes(PAGE_SIZE - len(chunk))
            )
    return pages, digest.hexdigest(), total


class ImageFill(Workload):
    name = "image"
    summary = "image:FILE, the pages of a page image or a profile in address order (--shuffle)"

    def __init__(
        self,
        seed: int = 0,
        corpus: str | None = None,
        path: str | None = None,
        shuffle: bool = False,
    ) -> None:
        from xcfbench.sim.images import load_image, load_profile, open_container

        super().__init__(seed)
        if not path:
            raise InputError("--fill image needs a file: --fill image:FILE")
        self.path, self.shuffle = path, shuffle
        self.container = open_container(path)
        load = load_image if self.container.kind == "image" else load_profile
        self.set = load(self.container)
        if not self.set.keys:
            raise InputError(f"{self.container.kind} {path!r} holds no pages")
        self.order: Sequence[int] = self.set.keys
        if shuffle:
            order = list(self.set.keys)
            random.Random(seed).shuffle(order)
            self.order = order

    def key(self, index: int) -> int:
        return self.order[index % len(self.order)]

    def period(self) -> int | None:
        return len(self.order)

    def page(self, key: int) -> bytes:
        if self.container.kind != "image":
            raise InputError(f"profile {self.path!r} holds no page bytes")
        return self.set.pages[key]

    def describe(self) -> dict[str, object]:
        meta = self.container.meta
        d: dict[str, object] = {"image_pages": meta["pages"]}
        if self.container.kind == "image":
            d.update(image=os.path.basename(self.path), image_checksum=self.container.checksum)
        else:
            d.update(
                image=meta["source"]["image"],
                image_checksum=meta["source"]["image_checksum"],
                profile=os.path.basename(self.path),
                profile_checksum=self.container.checksum,
            )
        return d

    def known_sizes(self, compressor, verify: bool = False):
        if self.container.kind == "image":
            return None
        from xcfbench.sim.images import profile_calls

        if verify:
            raise InputError(
                f"--verify needs page bytes; profile {self.path!r} has lengths"
                " only: run on its image"
            )
        calls = profile_calls(self.container)
        want = (compressor.name, compressor.call, compressor.level)
        if want not in calls:
            raise InputError(
                f"profile {self.path!r} does not record {compressor.name}"
                f" ({compressor.call} call, level {compressor.level})"
            )
        n = calls.index(want)
        recorded = self.container.meta["compressors"][n]["version"]
        if recorded != compressor.version():
            raise InputError(
                f"profile {self.path!r} recorded {compressor.name} as"
                f" {recorded!r}, this is {compressor.version()!r}"
            )
        return _ProfileSizes(self.set, n)


class _ProfileSizes:
    """A profile's lengths for one compressor call, as PageCache asks for them."""

    def __init__(self, ps, n: int) -> None:
        from xcfbench.sim.images import FLAG_SAME, FLAG_ZERO, NO_LENGTH

        self.lengths, self.flags = ps.lengths[n], ps.flags
        self.none, self.same, self.zero = NO_LENGTH, FLAG_SAME, FLAG_ZERO

    def clen(self, key) -> int | None:
        n = self.lengths[key]
        return None if n == self.none else n

    def same_filled(self, key) -> int | None:
        """0 for a zero page; a same-filled page's word is not recorded (it is memory), so
        it reads as 1: what zram counts is alike, the stored word is not."""
        f = self.flags[key]
        if not f & self.same:
            return None
        return 0 if f & self.zero else 1


WORKLOADS: dict[str, type[Workload]] = {
    w.name: w for w in (ZeroFill, TextFill, ZeroTaggedFill, RandomFill, FileFill, ImageFill)
}


def get_workload_class(name: str) -> type[Workload]:
    if name.startswith("image:"):
        return ImageFill
    if name.startswith("file:"):
        return FileFill
    try:
        return WORKLOADS[name]
    except KeyError:
        raise InputError(f"unknown fill {name!r}: choose from {', '.join(WORKLOADS)}") from None


def create_workload(
    name: str, seed: int = 0, corpus: str | None = None, shuffle: bool = False
) -> Workload:
    cls = get_workload_class(name)
    if corpus is not None and not cls.uses_corpus:
        raise InputError(f"--corpus applies to the text fill, not {name!r}")
    if cls is ImageFill:
        return ImageFill(seed=seed, path=name.partition(":")[2], shuffle=shuffle)
    if shuffle:
        raise InputError(f"--shuffle applies to --fill image:FILE, not {name!r}")
    if cls is FileFill:
        paths = tuple(p for p in name.partition(":")[2].split(",") if p)
        return FileFill(seed=seed, paths=paths)
    return cls(seed=seed, corpus=corpus)

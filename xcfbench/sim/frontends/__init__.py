"""Front-end registry: name -> class, like the allocators' (--frontend zcache|zram|zswap)."""

from __future__ import annotations

from typing import Any

from xcfbench.errors import InputError
from xcfbench.sim.allocators.base import Allocator
from xcfbench.sim.arch import Arch
from xcfbench.sim.frontends.base import FrontEnd
from xcfbench.sim.pages import PageCache

FRONTENDS: dict[str, type[FrontEnd]] = {}


def register(cls: type[FrontEnd]) -> type[FrontEnd]:
    if cls.name in FRONTENDS:
        raise RuntimeError(f"front end {cls.name!r} registered twice")
    FRONTENDS[cls.name] = cls
    return cls


def get_frontend_class(name: str) -> type[FrontEnd]:
    try:
        return FRONTENDS[name]
    except KeyError:
        raise InputError(f"unknown front end {name!r}: choose from"
                         f" {', '.join(FRONTENDS)}") from None


def create_frontend(name: str, allocator: Allocator, arch: Arch, pages: PageCache, *,
                    totalram_pages: int, **options: Any) -> FrontEnd:
    cls = get_frontend_class(name)
    unknown = set(options) - set(cls.options)
    if unknown:
        raise InputError(f"front end {cls.name} has no option {sorted(unknown)[0]!r}"
                         f" (options: {', '.join(cls.options) or 'none'})")
    return cls(allocator, arch, pages, totalram_pages=totalram_pages, **options)


# Importing the modules registers them, in the order `xcfbench list` shows.
from xcfbench.sim.frontends import zcache, zram, zswap  # noqa: E402,F401

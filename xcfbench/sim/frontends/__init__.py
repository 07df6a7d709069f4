"""Front-end registry: name -> class, like the allocators' (--frontend zcache|zram|zswap)."""

from __future__ import annotations

from typing import Any

from xcfbench.errors import InputError
from xcfbench.sim.allocators.base import Allocator
from xcfbench.sim.arch import Arch
from xcfbench.sim.compressors import get_compressor_class
from xcfbench.sim.frontends.base import FRONTENDS, FrontEnd, register
from xcfbench.sim.pages import PageCache

__all__ = [
    "FRONTENDS",
    "FrontEnd",
    "compressor_call",
    "create_frontend",
    "get_frontend_class",
    "register",
]


def get_frontend_class(name: str) -> type[FrontEnd]:
    try:
        return FRONTENDS[name]
    except KeyError:
        raise InputError(
            f"unknown front end {name!r}: choose from {', '.join(FRONTENDS)}"
        ) from None


def compressor_call(frontend: str, compressor: str) -> str:
    """The call the front end makes, where the compressor models it; otherwise the
    compressor's own (the seed's lzo1x-1 behind zram is a plain lzo1x-1 call)."""
    call = get_frontend_class(frontend).call
    calls = get_compressor_class(compressor).calls
    return call if call in calls else calls[0]


def create_frontend(
    name: str,
    allocator: Allocator,
    arch: Arch,
    pages: PageCache,
    *,
    totalram_pages: int,
    **options: Any,
) -> FrontEnd:
    cls = get_frontend_class(name)
    unknown = set(options) - set(cls.options)
    if unknown:
        raise InputError(
            f"front end {cls.name} has no option {sorted(unknown)[0]!r}"
            f" (options: {', '.join(cls.options) or 'none'})"
        )
    return cls(allocator, arch, pages, totalram_pages=totalram_pages, **options)


# Importing the modules registers them, in the order `xcfbench list` shows.
from xcfbench.sim.frontends import zcache, zram, zswap  # noqa: E402,F401

"""Allocator registry: name -> class, filled by the @register decorator.

Like the kernel's zpool driver list, every allocator is looked up by name; the CLI's
--alloc choices and `xcfbench list` come from here, with short aliases (xv, xcf, zs).
"""

from __future__ import annotations

from typing import Any

from xcfbench.errors import InputError
from xcfbench.sim.allocators.base import ALIASES, REGISTRY, Allocator, register
from xcfbench.sim.allocators.twins import make_twin
from xcfbench.sim.arch import I386, Arch

__all__ = [
    "ALIASES",
    "REGISTRY",
    "Allocator",
    "canonical_name",
    "create",
    "get_allocator_class",
    "register",
]


def canonical_name(name: str) -> str:
    key = ALIASES.get(name, name)
    if key not in REGISTRY:
        names = ", ".join(
            f"{n} ({', '.join(c.aliases)})" if c.aliases else n for n, c in REGISTRY.items()
        )
        raise InputError(f"unknown allocator {name!r}: choose from {names}")
    return key


def get_allocator_class(name: str) -> type[Allocator]:
    return REGISTRY[canonical_name(name)]


def create(name: str, arch: Arch = I386, store: bool = False, **options: Any) -> Allocator:
    """A new allocator: its C twin when one is built (see twins.py), else the Python one.
    The Python one is made first either way: it checks the options."""
    cls = get_allocator_class(name)
    unknown = set(options) - set(cls.options)
    if unknown:
        raise InputError(
            f"allocator {cls.name} has no option {sorted(unknown)[0]!r}"
            f" (options: {', '.join(cls.options) or 'none'})"
        )
    return make_twin(cls(arch=arch, store=store, **options))


# Importing the modules registers them.  Order is the order `xcfbench list` shows.
from xcfbench.sim.allocators import ideal, xcfmalloc, xvmalloc, z3fold, zblock, zbud, zsmalloc  # noqa: E402,F401  # noqa: E402,F401

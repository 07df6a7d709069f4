"""Struct sizes per architecture.

Every size the simulators need that depends on the machine lives here, so that an
allocator asks ``arch.xcf_blkhdr`` instead of hard-coding 12.  The numbers are the
``sizeof`` values of the 2011 and 2024 C sources compiled with ``gcc -m32`` (i386, the
cover letter's machine) and for x86_64; tests/reference/reference.json records the
same values under ``struct_sizes``.
"""

from __future__ import annotations

from dataclasses import dataclass

from xcfbench.errors import InputError

PAGE_SIZE = 4096
PAGE_SHIFT = 12


@dataclass(frozen=True)
class Arch:
    name: str
    sizeof_long: int  # also sizeof(void *) and zsmalloc's ZS_HANDLE_SIZE
    zv_hdr: int  # zcache 3.1 struct zv_hdr, SENTINELS on
    zv_hdr_no_sentinel: int
    xv_link_free: int  # xvmalloc free-list links kept in a free block
    xcf_blkhdr: int  # xcfmalloc in-page block header, XCFM_DEBUG on
    xcf_blkhdr_no_debug: int
    xcf_blkdesc: int  # sizeof(struct xcf_blkdesc)
    xcf_desc_slab: int  # SLUB object size of xcf_desc_cache
    z3fold_zhdr: int  # z3fold header rounded up to a 64-byte chunk

    @property
    def xcf_descs_per_slab_page(self) -> int:
        return PAGE_SIZE // self.xcf_desc_slab


I386 = Arch(
    name="i386",
    sizeof_long=4,
    zv_hdr=36,
    zv_hdr_no_sentinel=32,
    xv_link_free=12,
    xcf_blkhdr=12,
    xcf_blkhdr_no_debug=8,
    xcf_blkdesc=20,
    xcf_desc_slab=24,
    z3fold_zhdr=64,
)
X86_64 = Arch(
    name="x86_64",
    sizeof_long=8,
    zv_hdr=40,
    zv_hdr_no_sentinel=40,
    xv_link_free=24,
    xcf_blkhdr=16,
    xcf_blkhdr_no_debug=16,
    xcf_blkdesc=32,
    xcf_desc_slab=32,
    z3fold_zhdr=128,
)

ARCHES = {a.name: a for a in (I386, X86_64)}
ARCH_ALIASES = {
    "x86": "i386",
    "x86-32": "i386",
    "ia32": "i386",
    "x86-64": "x86_64",
    "amd64": "x86_64",
}


def get_arch(name: str) -> Arch:
    key = ARCH_ALIASES.get(name, name)
    try:
        return ARCHES[key]
    except KeyError:
        raise InputError(f"unknown arch {name!r}: choose from {', '.join(ARCHES)}") from None

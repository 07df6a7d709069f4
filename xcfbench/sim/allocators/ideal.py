"""ideal: the lower bound no real allocator reaches.

Every live byte is packed back to back with no header, no rounding and no fragmentation,
and the pool is always exactly ceil(live bytes / PAGE_SIZE) pages.  It answers "how far
from perfect is allocator X on this workload?"; it models no kernel code.
"""

from __future__ import annotations

from typing import Any

from xcfbench.sim.allocators.base import Allocator, need_store, register
from xcfbench.sim.arch import PAGE_SIZE


@register
class Ideal(Allocator):
    name = "ideal"
    summary = (
        "lower bound: live bytes packed perfectly, ceil(bytes/4096) pages (not a kernel allocator)"
    )
    objects_span_pages = True
    supports_compaction = True

    def __init__(self, arch=None, store: bool = False, **options: Any) -> None:
        super().__init__(arch=arch, store=store)
        self.max_alloc_size = PAGE_SIZE
        self.live_bytes = 0
        self.sizes: dict[int, int] = {}
        self.data: dict[int, bytes] = {}
        self.next_handle = 0

    def malloc(self, size: int) -> int | None:
        if size <= 0 or size > PAGE_SIZE:
            return None
        h = self.next_handle
        self.next_handle += 1
        self.sizes[h] = size
        self.live_bytes += size
        return h

    def free(self, handle: int) -> None:
        self.live_bytes -= self.sizes.pop(handle)
        self.data.pop(handle, None)

    def write(self, handle: int, data: bytes) -> None:
        need_store(self)
        assert len(data) == self.sizes[handle]
        self.data[handle] = bytes(data)

    def read(self, handle: int) -> bytes:
        need_store(self)
        return self.data[handle]

    def pool_pages(self) -> int:
        return -(-self.live_bytes // PAGE_SIZE)

    def compact(self) -> int:
        return 0

    def stats(self) -> dict[str, Any]:
        return {"live_bytes": self.live_bytes}

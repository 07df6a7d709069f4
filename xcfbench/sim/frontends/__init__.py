"""Front ends: the kernel path a pushed-out page takes to the allocator."""

from xcfbench.sim.frontends.zcache import Zcache31

FRONTENDS = {Zcache31.name: Zcache31}

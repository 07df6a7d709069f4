"""The allocator contract, for every registered allocator: register a new one and this
tests it.

A hypothesis state machine drives two instances of the same allocator with the same
calls, one keeping real bytes (store=True) and one not.  After every step:

  * both made the same decisions and report the same accounting (pool pages, pages held,
    metadata, stats): storage must never change a page count;
  * the storing one reads every live object back byte for byte, and its check() of the
    internal invariants passes;
  * objects over max_alloc_size are refused, as the kernel refuses them.

Freeing everything must give every pool page back, except where the kernel's allocator
keeps pages on purpose (RETAINS below says which and why).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from xcfbench.sim.allocators import REGISTRY, create
from xcfbench.sim.arch import I386, X86_64

# Allocators whose pool does not return to zero pages when every object is freed.
RETAINS: dict[str, str] = {}


def machine_for(name: str, arch):
    class Contract(RuleBasedStateMachine):
        objects = Bundle("objects")

        @initialize()
        def setup(self) -> None:
            self.stored = create(name, arch, store=True)
            self.plain = create(name, arch, store=False)
            self.live: dict[int, tuple[object, object, bytes]] = {}
            self.next_id = 0

        @rule(target=objects, size=st.integers(0, 4200), seed=st.integers(0, 2**32 - 1))
        def malloc(self, size: int, seed: int):
            a = self.stored.malloc(size)
            b = self.plain.malloc(size)
            assert (a is None) == (b is None), f"store changed a malloc({size}) decision"
            if size > self.stored.max_alloc_size:
                assert a is None, f"malloc({size}) over max {self.stored.max_alloc_size}"
            if a is None:
                return -1
            data = random.Random(seed).randbytes(size)
            self.stored.write(a, data)
            self.next_id += 1
            self.live[self.next_id] = (a, b, data)
            return self.next_id

        @rule(obj=consumes(objects))
        def free(self, obj: int) -> None:
            if obj not in self.live:
                return
            a, b, _ = self.live.pop(obj)
            self.stored.free(a)
            self.plain.free(b)

        @precondition(lambda self: self.stored.supports_compaction)
        @rule()
        def compact(self) -> None:
            assert self.stored.compact() == self.plain.compact()

        @rule()
        def free_everything(self) -> None:
            for a, b, _ in self.live.values():
                self.stored.free(a)
                self.plain.free(b)
            self.live.clear()
            if name not in RETAINS:
                assert self.stored.pool_pages() == 0, "pages left after every free"

        @invariant()
        def same_accounting(self) -> None:
            s, p = self.stored, self.plain
            assert (s.pool_pages(), s.pages_held(), s.metadata_bytes()) == (
                p.pool_pages(),
                p.pages_held(),
                p.metadata_bytes(),
            )
            assert s.stats() == p.stats()

        @invariant()
        def bytes_read_back(self) -> None:
            for a, _, data in self.live.values():
                assert self.stored.read(a) == data
            self.stored.check()

    Contract.__name__ = f"Contract_{name}_{arch.name}"
    return Contract


@pytest.mark.parametrize("arch", [I386, X86_64], ids=lambda a: a.name)
@pytest.mark.parametrize("name", list(REGISTRY))
def test_allocator_contract(name, arch):
    machine = machine_for(name, arch)
    machine.TestCase.settings = settings(
        max_examples=20,
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    machine.TestCase().runTest()

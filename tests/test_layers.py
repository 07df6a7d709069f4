"""The engine and the allocators never load click or rich."""

from __future__ import annotations

import subprocess
import sys


def test_engine_imports_neither_click_nor_rich():
    code = ("import sys, xcfbench.sim.engine, xcfbench.sim.trace, xcfbench.sim.allocators, "
            "xcfbench.results.document, xcfbench.results.metrics, xcfbench.results.published; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('click', 'rich')); "
            "print(','.join(bad))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.strip() == ""

"""The output of `xcfbench pages --format json`, read back: JSON Lines, one object per page
and a last object holding the summary (sim/pagestats.py).  `plot --kind sizes` draws the
summary's histograms.  Read line by line: a file of a million pages takes constant memory.
"""

from __future__ import annotations

import json
from typing import Any

from xcfbench.errors import InputError
from xcfbench.io import check_input_file

KIND = "pages"


def is_pages_output(path: str) -> bool:
    """Whether path starts like `xcfbench pages --format json` output."""
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
        doc = json.loads(first)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(doc, dict) and (doc.get("kind") == KIND or "page" in doc)


def read_pages_summary(path: str) -> dict[str, Any]:
    """The summary object at the end of a pages output."""
    check_input_file(path, "pages output")
    last = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                last = line
    try:
        doc = json.loads(last) if last else None
    except json.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict) or doc.get("kind") != KIND or "summary" not in doc:
        raise InputError(f"pages output {path!r} does not end with its summary (was it cut short?)")
    return doc

"""The versioned JSON document that carries results.

A document is {"schema_version", "tool_version", "kind", "config", "results"}.  The loader
refuses a document of another schema version with a clear message.
"""

from __future__ import annotations

import json
from typing import Any

from xcfbench import __version__
from xcfbench.errors import InputError

SCHEMA_VERSION = 1
TOOL_VERSION = __version__


def document(kind: str, config: dict[str, Any], results: Any) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "tool_version": TOOL_VERSION, "kind": kind,
            "config": config, "results": results}


def dumps(doc: dict[str, Any]) -> str:
    """Canonical JSON: sorted keys, fixed separators, so equal documents are equal bytes."""
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def parse_document(text: str, name: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"result file {name!r} is not valid JSON: {e}") from None
    check_document(doc, repr(name))
    return doc


def check_document(doc: Any, where: str) -> None:
    """An xcfbench result document of the version this xcfbench reads, or InputError;
    where says which file (and line) it came from."""
    if not isinstance(doc, dict) or "schema_version" not in doc:
        raise InputError(f"result file {where} is not an xcfbench result (no schema_version)")
    if doc["schema_version"] != SCHEMA_VERSION:
        raise InputError(f"result file {where} has schema_version {doc['schema_version']!r};"
                         f" this xcfbench reads version {SCHEMA_VERSION}")

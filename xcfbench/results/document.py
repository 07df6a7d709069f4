"""The versioned JSON document that carries results.

A document is {"schema_version", "tool_version", "kind", "config", "results"}.  The loader
refuses a document of another schema version with a clear message (schema_version is the
integer 1: not true, not 1.0).

JSON in and out is strict: an integer of more than MAX_INT_DIGITS digits and nesting deeper
than the parser can follow are one-line errors; what xcfbench writes is always valid JSON
(a non-finite float is written as null, and json.dumps runs with allow_nan=False).
"""

from __future__ import annotations

import json
import math
from typing import Any

from xcfbench import __version__
from xcfbench.errors import InputError

SCHEMA_VERSION = 1
TOOL_VERSION = __version__
MAX_INT_DIGITS = 30  # far past any count xcfbench writes (2**64 has 20 digits)


def document(kind: str, config: dict[str, Any], results: Any) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool_version": TOOL_VERSION,
        "kind": kind,
        "config": config,
        "results": results,
    }


def finite(value: Any) -> Any:
    """value with every non-finite float (NaN, Infinity) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps(doc: dict[str, Any]) -> str:
    """Canonical JSON: sorted keys, fixed separators, so equal documents are equal bytes.
    Always valid JSON: no NaN, no Infinity."""
    return (
        json.dumps(finite(doc), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
        + "\n"
    )


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _TooLarge(text)
    return int(text)


class _TooLarge(ValueError):
    pass


def json_loads(text: str | bytes, where: str) -> Any:
    """json.loads, with every way it can fail as an InputError that names where."""
    try:
        return json.loads(text, parse_int=_parse_int)
    except _TooLarge as e:
        raise InputError(
            f"result file {where} has an integer of {len(str(e))} digits;"
            f" at most {MAX_INT_DIGITS} are read"
        ) from None
    except RecursionError:
        raise InputError(f"result file {where} is nested too deeply to read") from None
    except json.JSONDecodeError as e:
        raise InputError(f"result file {where} is not valid JSON: {e}") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise InputError(f"result file {where} is not valid JSON ({e})") from None


def parse_document(text: str, name: str) -> dict[str, Any]:
    doc = json_loads(text, repr(name))
    check_document(doc, repr(name))
    return doc


def check_document(doc: Any, where: str) -> None:
    """An xcfbench result document of the version this xcfbench reads, or InputError;
    where says which file (and line) it came from."""
    if not isinstance(doc, dict) or "schema_version" not in doc:
        raise InputError(f"result file {where} is not an xcfbench result (no schema_version)")
    version = doc["schema_version"]
    if type(version) is not int or version != SCHEMA_VERSION:
        raise InputError(
            f"result file {where} has schema_version {doc['schema_version']!r};"
            f" this xcfbench reads version {SCHEMA_VERSION}"
        )

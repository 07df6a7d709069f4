"""tests/reference/ is a verbatim copy of the kernel's reference answers: every file
listed in its MANIFEST has the recorded SHA-256, and no file is unlisted."""

from __future__ import annotations

import hashlib

from tests.helpers import REFERENCE


def _manifest() -> dict[str, str]:
    out = {}
    for line in (REFERENCE / "MANIFEST").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            out[name] = digest
    return out


def test_every_reference_file_has_its_recorded_digest():
    manifest = _manifest()
    assert "reference.json" in manifest and len(manifest) >= 9
    for name, digest in manifest.items():
        data = (REFERENCE / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name


def test_no_reference_file_is_unlisted():
    on_disk = {
        str(p.relative_to(REFERENCE))
        for p in REFERENCE.rglob("*")
        if p.is_file() and p.name != "MANIFEST"
    }
    assert on_disk == set(_manifest())

"""Shared fixtures.  Shared helpers (reference data, golden files, builders) are in
tests/helpers.py."""

from __future__ import annotations

import pytest
from click.testing import CliRunner


@pytest.fixture
def runner() -> CliRunner:
    """click's runner for the xcfbench group: stdout and stderr kept apart."""
    return CliRunner()

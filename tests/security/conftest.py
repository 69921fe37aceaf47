"""Fixtures for the security tests: throw-away certificates (see security_harness.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "broker"))
sys.path.insert(0, str(Path(__file__).parent))

from kbroker.security.devcerts import Pki, make_pki  # noqa: E402


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki", clients=("alice", "bob"))

"""Fixtures: an in-process virtual cluster of three nodes, and raw clients to each node."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The raw wire client lives beside the broker tests.
sys.path.insert(0, str(Path(__file__).parent.parent / "broker"))
sys.path.insert(0, str(Path(__file__).parent))

from kbroker.testing import BrokerThread  # noqa: E402


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[BrokerThread]:
    bt = BrokerThread(tmp_path / "data", {"kbroker.nodes": "3"})
    bt.start()
    try:
        yield bt
    finally:
        bt.close()

"""Fixtures: an in-process broker with the control API on (see control_harness.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The raw Kafka client of tests/broker, and this directory's harness.
sys.path.insert(0, str(Path(__file__).parent.parent / "broker"))
sys.path.insert(0, str(Path(__file__).parent))

from kbroker.testing import BrokerThread  # noqa: E402

CONTROL = {
    "kbroker.http.listen": "127.0.0.1:0",
    "kbroker.control.enabled": "true",
    "num.partitions": "2",
}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerThread]:
    bt = BrokerThread(tmp_path / "data", CONTROL)
    bt.start()
    try:
        yield bt
    finally:
        bt.close()

"""Fixtures: an in-process broker and a raw client (see broker_harness.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from broker_harness import RawClient  # noqa: E402

from kbroker.testing import BrokerThread


@pytest.fixture
def broker_thread(tmp_path: Path) -> Iterator[BrokerThread]:
    bt = BrokerThread(tmp_path / "data")
    bt.start()
    try:
        yield bt
    finally:
        bt.close()


@pytest.fixture
def client(broker_thread: BrokerThread) -> Iterator[RawClient]:
    c = RawClient(broker_thread.address)
    try:
        yield c
    finally:
        c.close()

"""pytest plugin: the ``kbroker`` fixture, a real broker in the test process.

Installed with kbroker (entry point ``pytest11``), so any project's tests can write::

    def test_roundtrip(kbroker):
        producer = KafkaProducer(bootstrap_servers=kbroker.bootstrap)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kbroker.testing import BrokerThread, running_broker


@pytest.fixture
def kbroker(tmp_path: Path) -> Iterator[BrokerThread]:
    """A broker on a free loopback port with a fresh data directory, stopped afterwards."""
    with running_broker(tmp_path / "kbroker-data") as broker:
        yield broker

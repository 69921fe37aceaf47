"""pytest plugin: the ``kbroker`` fixture, a real broker in the test process.

Installed with kbroker (entry point ``pytest11``), so any project's tests can write::

    def test_roundtrip(kbroker):
        producer = KafkaProducer(bootstrap_servers=kbroker.bootstrap)

pytest loads this module into every session of every project where kbroker is installed,
so it imports nothing of the broker at module level: ``kbroker.testing`` (and through it
the server, wire, log and coordinator) is imported only when a test asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from kbroker.testing import BrokerThread


@pytest.fixture
def kbroker(tmp_path: Path) -> Iterator[BrokerThread]:
    """A broker on a free loopback port with a fresh data directory, stopped afterwards."""
    from kbroker.testing import running_broker

    with running_broker(tmp_path / "kbroker-data") as broker:
        yield broker

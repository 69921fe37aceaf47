"""Fixtures: an in-process broker with the StandardAuthorizer, and raw clients."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "broker"))
sys.path.insert(0, str(Path(__file__).parent))

from acl_harness import Secured  # noqa: E402
from broker_harness import RawClient  # noqa: E402

from kbroker.acl.model import AclBinding  # noqa: E402
from kbroker.acl.store import AclStore  # noqa: E402
from kbroker.config import STANDARD_AUTHORIZER  # noqa: E402
from kbroker.testing import BrokerThread  # noqa: E402


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Secured]:
    """Start a broker with the authorizer; ``seed`` ACLs are written to its data dir first
    (as a stopped broker's store), ``settings`` add to the authorizer's."""
    started: list[BrokerThread] = []

    def start(seed: tuple[AclBinding, ...] = (), **settings: str) -> BrokerThread:
        data = tmp_path / f"data{len(started)}"
        if seed:
            AclStore(data).add(seed)
        props = {"authorizer.class.name": STANDARD_AUTHORIZER, **{k.replace("_", "."): v for k, v in settings.items()}}
        bt = BrokerThread(data, props)
        started.append(bt)
        bt.start()
        return bt

    yield start
    for bt in started:
        bt.close()


@pytest.fixture
def connect() -> Iterator[Callable[[BrokerThread], RawClient]]:
    clients: list[RawClient] = []

    def make(bt: BrokerThread) -> RawClient:
        c = RawClient(bt.address)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()

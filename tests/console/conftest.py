"""Fixtures for the web console's tests (helpers in console_helpers.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# RawClient (one blocking Kafka connection) lives with the broker tests.
sys.path.append(str(HERE.parent / "broker"))

from console_helpers import ConsoleBroker  # noqa: E402

from kbroker.testing import BrokerThread  # noqa: E402


@pytest.fixture
def console_factory(tmp_path: Path) -> Iterator[Callable[..., ConsoleBroker]]:
    started: list[BrokerThread] = []

    def make(settings: dict[str, str] | None = None) -> ConsoleBroker:
        bt = BrokerThread(tmp_path / f"data{len(started)}", {"kbroker.http.listen": "127.0.0.1:0", **(settings or {})})
        started.append(bt)
        bt.start()
        return ConsoleBroker(bt)

    try:
        yield make
    finally:
        for bt in started:
            bt.close()


@pytest.fixture
def console(console_factory: Callable[..., ConsoleBroker]) -> ConsoleBroker:
    """A broker with the console read-only (the default)."""
    return console_factory()

"""pytest plugin: real brokers in the test process, as fixtures.

Installed with kbroker (entry point ``pytest11``), so any project's tests can write::

    def test_roundtrip(kbroker):
        producer = KafkaProducer(bootstrap_servers=kbroker.bootstrap)

    @pytest.mark.kbroker(config={"num.partitions": "5"})
    def test_with_settings(kbroker): ...

    def test_shared(kbroker_session): ...       # one broker for the whole session

    def test_two(kbroker_factory):
        a, b = kbroker_factory(), kbroker_factory({"auto.create.topics.enable": "false"})

Fixtures:

- ``kbroker`` (function scope): a broker on a free loopback port with a fresh data
  directory under ``tmp_path``, stopped after the test.  ``@pytest.mark.kbroker(config={...})``
  on the test (or its class or module; the closest wins) passes broker properties, as
  ``--set`` takes them.
- ``kbroker_session`` (session scope): one broker shared by every test of the session that
  asks for it; tests see each other's topics.  The marker does not apply to it.
- ``kbroker_factory`` (function scope): a callable ``factory(config=None)`` that starts
  another broker, each with its own data directory under ``tmp_path``; all of them are
  stopped after the test.

Each is a :class:`kbroker.testing.BrokerThread` (``bootstrap``, ``address``, ``data_dir``,
``restart()``).

pytest loads this module into every session of every project where kbroker is installed,
so it imports nothing of the broker at module level: ``kbroker.testing`` (and through it
the server, wire, log and coordinator) is imported only when a test asks for a fixture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from kbroker.testing import BrokerThread

MARKER = "kbroker"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(config={{...}}): broker properties (Kafka names, as --set takes them) "
        "for the test's kbroker fixture",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A marker meant for a broker the test does not get is a mistake, not a no-op."""
    if item.get_closest_marker(MARKER) is None:
        return
    names = getattr(item, "fixturenames", ())
    if "kbroker" not in names and ("kbroker_session" in names or "kbroker_factory" in names):
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER} sets the properties of the kbroker fixture, which {item.name} does "
            "not use (kbroker_session is shared and takes no marker; kbroker_factory takes config= per call)"
        )


def _property_value(value: object) -> str:
    if isinstance(value, bool):  # a Python True means Kafka's "true"
        return "true" if value else "false"
    return str(value)


def _settings(config: Mapping[str, object] | None) -> dict[str, str]:
    return {str(k): _property_value(v) for k, v in (config or {}).items()}


def _marker_settings(node: pytest.Item | Any) -> dict[str, str]:
    marker = node.get_closest_marker(MARKER)
    if marker is None:
        return {}
    if marker.args or set(marker.kwargs) - {"config"}:
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER} takes one keyword, config={{...}}; "
            f"got args {marker.args!r} and keywords {sorted(marker.kwargs)}"
        )
    config = marker.kwargs.get("config") or {}
    if not isinstance(config, Mapping):
        raise pytest.UsageError(f"@pytest.mark.{MARKER}(config=...) wants a mapping, got {type(config).__name__}")
    return _settings(config)


@pytest.fixture
def kbroker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerThread]:
    """A broker on a free loopback port with a fresh data directory, stopped afterwards;
    ``@pytest.mark.kbroker(config={...})`` sets its properties."""
    settings = _marker_settings(request.node)
    from kbroker.testing import running_broker

    with running_broker(tmp_path / "kbroker-data", settings) as broker:
        yield broker


@pytest.fixture(scope="session")
def kbroker_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerThread]:
    """One broker for the whole session, stopped when the session ends."""
    from kbroker.testing import running_broker

    with running_broker(tmp_path_factory.mktemp("kbroker-session")) as broker:
        yield broker


@pytest.fixture
def kbroker_factory(tmp_path: Path) -> Iterator[Callable[..., BrokerThread]]:
    """``factory(config=None)`` starts one more broker (own data dir under ``tmp_path``);
    every broker it started is stopped after the test."""
    from kbroker.testing import BrokerFactory

    with BrokerFactory(tmp_path / "kbroker-factory") as factory:

        def make(config: Mapping[str, object] | None = None) -> BrokerThread:
            return factory(_settings(config))

        yield make

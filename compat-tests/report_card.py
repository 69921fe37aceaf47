"""The compatibility report card: COMPATIBILITY.md, a client x feature matrix of this suite.

Tests say what they show with a marker::

    @pytest.mark.feature("produce", "consume", "compression:{codec}", client="kafka-python")
    @pytest.mark.feature("transactions", client="{client}")

Names may use the test's parameters (``{codec}``, ``{client}``); ``compression:none`` counts
as no feature.  Each test's outcome (all of its phases) goes into every (client, feature) cell
it names; a cell is *pass* when all its tests passed, *fail* when any failed, *skipped* when
all were skipped, *n/s* when :data:`NOT_SUPPORTED` says the client cannot do it, and ``·``
when no test covers it.

When: the file is written at the end of a run of the *whole* compat suite (every test module
of compat-tests/ reported, nothing deselected or filtered with -k/-m/--lf/--deselect, no -x,
not interrupted), against kbroker (not the Tansu stand-in), by the xdist controller or the
only process.  ``--compat-report PATH`` writes it for any run, marked partial unless whole.
The content is deterministic for a given set of outcomes and client versions (fixed row and
column order, no dates or durations).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

MARKER = "feature"
USER_PROPERTY = "compat_features"
REPORT_NAME = "COMPATIBILITY.md"

# Column order; clients a test names that are not here come after, alphabetically.
CLIENTS = ("kafka-python", "aiokafka", "confluent-kafka", "kafkajs", "kcat", "kbroker-cli")
CLIENT_ALIASES = {"confluent": "confluent-kafka", "kafka_python": "kafka-python"}
# Row order and the row labels.
FEATURES: dict[str, str] = {
    "produce": "Produce",
    "consume": "Consume (fetch, offsets)",
    "compression:gzip": "Compression: gzip",
    "compression:snappy": "Compression: snappy",
    "compression:lz4": "Compression: lz4",
    "compression:zstd": "Compression: zstd",
    "groups": "Consumer groups (join, sync, commit, rebalance)",
    "group-admin": "Group admin (list, describe, delete, offsets)",
    "admin": "Topic and config admin",
    "idempotence": "Idempotent producer",
    "transactions": "Transactions",
    "compaction": "Compacted topics",
    "durability": "Durability (acks=all across a crash)",
    "cluster": "Virtual cluster (leader moves, node stop/start, coordinator moves)",
    "quotas": "Client quotas (set, describe, throttled)",
    "telemetry": "Client telemetry (KIP-714 subscriptions, pushes)",
    "share-groups": "Share groups (KIP-932 queues)",
    "security": "SASL and TLS (PLAIN, SCRAM over SASL_SSL, client certificates)",
    "fault injection": "Fault injection (control API: injected errors, delays, closed connections)",
}
# What a client cannot do at all (so no test can show it), with why.
NOT_SUPPORTED: dict[tuple[str, str], str] = {
    ("kafkajs", "compression:snappy"): "needs a codec plugin package",
    ("kafkajs", "compression:lz4"): "needs a codec plugin package",
    ("kafkajs", "compression:zstd"): "needs a codec plugin package",
    ("kcat", "admin"): "no admin requests",
    ("kcat", "group-admin"): "no admin requests",
    ("kbroker-cli", "compression:gzip"): "produces uncompressed batches (reads every codec)",
    ("kbroker-cli", "compression:snappy"): "produces uncompressed batches (reads every codec)",
    ("kbroker-cli", "compression:lz4"): "produces uncompressed batches (reads every codec)",
    ("kbroker-cli", "compression:zstd"): "produces uncompressed batches (reads every codec)",
    ("kbroker-cli", "idempotence"): "no idempotent producer",
    ("kbroker-cli", "groups"): "commits offsets from outside the membership; does not join groups",
    ("kbroker-cli", "transactions"): "no transactional producer",
    ("aiokafka", "telemetry"): "no KIP-714 client metrics",
    ("kafkajs", "telemetry"): "no KIP-714 client metrics",
    ("kafka-python", "share-groups"): "no share consumer (KIP-932)",
    ("aiokafka", "share-groups"): "no share consumer (KIP-932)",
    ("kafkajs", "share-groups"): "no share consumer (KIP-932)",
    ("kcat", "share-groups"): "no share consumer (KIP-932)",
    ("kbroker-cli", "share-groups"): "no share consumer (KIP-932)",
    ("aiokafka", "quotas"): "its admin client has no AlterClientQuotas / DescribeClientQuotas call",
    ("kafkajs", "quotas"): "its admin client has no AlterClientQuotas / DescribeClientQuotas call",
    ("kcat", "quotas"): "no admin requests (cannot set or describe quotas)",
    ("kbroker-cli", "quotas"): "no client-quota verb (topic, group, produce, consume, acl, user only)",
    ("kcat", "telemetry"): "its librdkafka 2.0.2 has no KIP-714 client metrics (no enable.metrics.push)",
    ("kbroker-cli", "telemetry"): "no KIP-714 client metrics",
}
# A test failed if any phase failed, else was skipped if any phase skipped, else passed.
OUTCOME_RANK = {"failed": 3, "skipped": 2, "passed": 1}


def canonical_client(name: str) -> str:
    return CLIENT_ALIASES.get(name, name)


def item_features(item: pytest.Item) -> list[tuple[str, str]]:
    """(client, feature) pairs the item's ``feature`` markers name, parameters filled in."""
    params: Mapping[str, Any] = getattr(getattr(item, "callspec", None), "params", {})
    if params.get("any_broker_factory", "kbroker") != "kbroker":
        return []  # the same test against the Tansu peer: the card is about kbroker
    pairs: list[tuple[str, str]] = []
    for mark in item.iter_markers(MARKER):
        client = mark.kwargs.get("client")
        if not client:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.feature needs client=...")
        client = canonical_client(str(client).format(**params))
        for name in mark.args:
            feature = str(name).format(**params)
            if feature == "compression:none":
                continue
            pairs.append((client, feature))
    return sorted(set(pairs))


@dataclass
class Cell:
    passed: int = 0
    failed: int = 0
    skipped: int = 0

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


def aggregate(results: Iterable[tuple[list[tuple[str, str]], str]]) -> dict[tuple[str, str], Cell]:
    """(pairs, outcome) per test -> a Cell per (client, feature)."""
    cells: dict[tuple[str, str], Cell] = {}
    for pairs, outcome in results:
        for pair in pairs:
            cells.setdefault(pair, Cell()).add(outcome)
    return cells


def _cell_text(cell: Cell | None, not_supported: str | None) -> str:
    if cell is None or cell.passed + cell.failed == 0:
        if not_supported is not None:
            return "n/s"
        return "skipped" if cell is not None else "·"
    total = cell.passed + cell.failed
    if cell.failed:
        return f"**fail** ({cell.failed}/{total})"
    return f"pass ({cell.passed})"


def render(cells: Mapping[tuple[str, str], Cell], versions: Mapping[str, str], *, whole: bool) -> str:
    """The Markdown report (deterministic: fixed orders, no dates)."""
    named = {c for c, _ in cells}
    clients = list(CLIENTS) + sorted(named - set(CLIENTS))
    features = list(FEATURES) + sorted({f for _, f in cells} - set(FEATURES))
    lines = [
        "# Compatibility report card",
        "",
        "Written by the compat suite (`python -m pytest compat-tests`): each cell sums the tests that",
        "drive that client through that feature against a real kbroker process over TCP.",
        "**pass (n)**: all n tests passed; **fail (f/n)**: f of n failed; **n/s**: the client does",
        "not support it (notes below); **skipped**: its tests were skipped here; **·**: no test yet.",
        "",
    ]
    if not whole:
        lines += ["**Partial run**: only part of the compat suite ran; cells of tests that did not run show `·`.", ""]
    lines += ["| Feature | " + " | ".join(f"{c}<br>{versions.get(c, '?')}" for c in clients) + " |"]
    lines += ["|---|" + "---|" * len(clients)]
    for feature in features:
        row = [_cell_text(cells.get((c, feature)), NOT_SUPPORTED.get((c, feature))) for c in clients]
        lines.append(f"| {FEATURES.get(feature, feature)} | " + " | ".join(row) + " |")
    lines += ["", "Not supported by the client:", ""]
    for (client, feature), why in sorted(NOT_SUPPORTED.items(), key=lambda kv: (clients.index(kv[0][0]), features.index(kv[0][1]))):
        lines.append(f"- {client}, {FEATURES.get(feature, feature)}: {why}")
    lines += ["", "Client versions:", ""]
    for client in clients:
        lines.append(f"- {client}: {versions.get(client, 'unknown')}")
    return "\n".join(lines) + "\n"


def client_versions() -> dict[str, str]:
    """The version of each client this environment has (what the suite drove)."""
    out: dict[str, str] = {}
    try:
        import kafka

        out["kafka-python"] = str(kafka.__version__)
    except ImportError:
        pass
    try:
        import aiokafka

        out["aiokafka"] = str(aiokafka.__version__)
    except ImportError:
        pass
    try:
        import confluent_kafka

        out["confluent-kafka"] = f"{confluent_kafka.__version__} (librdkafka {confluent_kafka.libversion()[0]})"
    except ImportError:
        pass
    import clients

    package = clients.NODE_MODULES / "kafkajs" / "package.json"
    out["kafkajs"] = json.loads(package.read_text())["version"] if package.exists() else clients.KAFKAJS_VERSION
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    if kcat:
        try:
            text = subprocess.run([kcat, "-V"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
        m = re.search(r"Version (\S+) .*?librdkafka (\d\S*)", text)
        out["kcat"] = f"{m[1]} (librdkafka {m[2]})" if m else "installed"
    import kbroker

    out["kbroker-cli"] = f"kbroker {kbroker.__version__}"
    return out


class ReportCard:
    """The pytest plugin: collects outcomes, writes the report at the end."""

    def __init__(self, config: pytest.Config, compat_dir: Path, target: str) -> None:
        self.config = config
        self.compat_dir = compat_dir
        self.target = target
        self.outcomes: dict[str, str] = {}  # nodeid -> worst outcome over its phases
        self.pairs: dict[str, list[tuple[str, str]]] = {}
        self.modules: set[str] = set()
        self.deselected = False

    # -- collection (the only process, or each xdist worker) ---------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            pairs = item_features(item)
            if pairs:
                item.user_properties.append((USER_PROPERTY, json.dumps(pairs)))

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        if items:
            self.deselected = True

    # -- reports (the only process, or the xdist controller) ---------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        path = report.nodeid.split("::", 1)[0]
        if not Path(path).name.startswith("test_") or Path(path).parent.name != self.compat_dir.name:
            return
        self.modules.add(Path(path).name)
        outcome = "failed" if report.failed else "skipped" if report.skipped else "passed"
        previous = self.outcomes.get(report.nodeid)
        if previous is None or OUTCOME_RANK[outcome] > OUTCOME_RANK[previous]:
            self.outcomes[report.nodeid] = outcome
        for name, value in report.user_properties:
            if name == USER_PROPERTY:
                self.pairs[report.nodeid] = [tuple(p) for p in json.loads(value)]  # type: ignore[misc]

    def whole_suite(self, exitstatus: int) -> bool:
        opt = self.config.option
        if self.deselected or getattr(opt, "keyword", "") or getattr(opt, "markexpr", ""):
            return False
        if getattr(opt, "deselect", None) or getattr(opt, "lf", False) or getattr(opt, "maxfail", 0):
            return False
        if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            return False
        on_disk = {p.name for p in self.compat_dir.glob("test_*.py")}
        return bool(on_disk) and on_disk <= self.modules

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(self.config, "workerinput"):  # an xdist worker: the controller writes
            return
        forced = self.config.getoption("compat_report", None)
        whole = self.whole_suite(int(exitstatus))
        if self.target != "kbroker" or not (whole or forced):
            return
        path = Path(forced) if forced else self.compat_dir.parent / REPORT_NAME
        results = [(self.pairs.get(nodeid, []), outcome) for nodeid, outcome in sorted(self.outcomes.items())]
        path.write_text(render(aggregate(results), client_versions(), whole=whole))
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"compat report card written to {path}")

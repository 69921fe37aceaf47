"""The compat suite's report card (compat-tests/report_card.py), run by pytester on a small
stand-in suite: written after a whole run only (or when asked), deterministic, each cell the
sum of the tests that name it."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPORT_CARD = Path(__file__).resolve().parent.parent / "compat-tests" / "report_card.py"

CONFTEST = f"""
import importlib.util, sys
from pathlib import Path
import pytest

spec = importlib.util.spec_from_file_location("report_card", {str(REPORT_CARD)!r})
report_card = importlib.util.module_from_spec(spec)
sys.modules["report_card"] = report_card
spec.loader.exec_module(report_card)
report_card.client_versions = lambda: {{"kafka-python": "9.9", "confluent-kafka": "1.2 (librdkafka 1.2)"}}

def pytest_addoption(parser):
    parser.addoption("--compat-report", default=None)

def pytest_configure(config):
    config.addinivalue_line("markers", "feature: report card")
    config.pluginmanager.register(report_card.ReportCard(config, Path(__file__).parent, "kbroker"), "card")
"""

TEST_A = """
import pytest

@pytest.mark.feature("produce", "compression:{codec}", client="kafka-python")
@pytest.mark.parametrize("codec", ["none", "gzip"])
def test_produce(codec):
    pass

@pytest.mark.feature("consume", client="{client}")
@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_consume(client):
    assert client == "kafka-python"

def test_untagged():
    pass
"""

TEST_B = """
import pytest

@pytest.mark.feature("transactions", client="kafka-python")
def test_skipped():
    pytest.skip("no such client here")
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    compat = pytester.mkdir("compat")
    (compat / "conftest.py").write_text(CONFTEST)
    (compat / "test_a.py").write_text(TEST_A)
    (compat / "test_b.py").write_text(TEST_B)
    return pytester


def _cells(report: str) -> dict[str, list[str]]:
    rows = {}
    for line in report.splitlines():
        if line.startswith("| ") and not line.startswith("| Feature"):
            label, *cells = [c.strip() for c in line.strip("|").split("|")]
            rows[label] = cells
    return rows


def test_whole_run_writes_the_matrix(suite: pytest.Pytester) -> None:
    result = suite.runpytest("compat", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1, skipped=1)
    report = (suite.path / "COMPATIBILITY.md").read_text()
    assert "Partial run" not in report
    header = next(line for line in report.splitlines() if line.startswith("| Feature"))
    assert header.split(" | ")[1:3] == ["kafka-python<br>9.9", "aiokafka<br>?"]
    rows = _cells(report)
    # columns: kafka-python, aiokafka, confluent-kafka, kafkajs, kcat, kbroker-cli
    assert rows["Produce"][:3] == ["pass (2)", "·", "·"]
    assert rows["Compression: gzip"][0] == "pass (1)"
    assert rows["Compression: snappy"][0] == "·"  # "none" counts as no codec
    assert rows["Consume (fetch, offsets)"][:3] == ["pass (1)", "·", "**fail** (1/1)"]
    assert rows["Transactions"][0] == "skipped"
    assert rows["Transactions"][5] == "n/s"  # kbroker-cli: declared not supported
    assert "- confluent-kafka: 1.2 (librdkafka 1.2)" in report


def test_same_outcomes_same_bytes(suite: pytest.Pytester) -> None:
    suite.runpytest("compat", "-p", "no:cacheprovider")
    first = (suite.path / "COMPATIBILITY.md").read_bytes()
    (suite.path / "COMPATIBILITY.md").unlink()
    suite.runpytest("compat", "-p", "no:cacheprovider", "-p", "no:randomly")
    assert (suite.path / "COMPATIBILITY.md").read_bytes() == first


@pytest.mark.parametrize(
    "args",
    [["compat/test_a.py"], ["compat", "-k", "produce"], ["compat", "-x"], ["compat", "--deselect", "compat/test_b.py::test_skipped"]],
    ids=["one-module", "keyword", "exitfirst", "deselect"],
)
def test_partial_runs_write_nothing(suite: pytest.Pytester, args: list[str]) -> None:
    suite.runpytest(*args, "-p", "no:cacheprovider")
    assert not (suite.path / "COMPATIBILITY.md").exists()


def test_asked_for_partial_report_says_so(suite: pytest.Pytester) -> None:
    out = suite.path / "partial.md"
    suite.runpytest("compat/test_b.py", "-p", "no:cacheprovider", f"--compat-report={out}")
    report = out.read_text()
    assert "**Partial run**" in report
    assert _cells(report)["Transactions"][0] == "skipped"
    assert _cells(report)["Produce"][0] == "·"
    assert not (suite.path / "COMPATIBILITY.md").exists()


def test_xdist_controller_writes_what_the_workers_ran(suite: pytest.Pytester) -> None:
    suite.runpytest("compat", "-p", "no:cacheprovider")
    alone = (suite.path / "COMPATIBILITY.md").read_bytes()
    (suite.path / "COMPATIBILITY.md").unlink()
    result = suite.runpytest_subprocess("compat", "-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=4, failed=1, skipped=1)
    assert (suite.path / "COMPATIBILITY.md").read_bytes() == alone

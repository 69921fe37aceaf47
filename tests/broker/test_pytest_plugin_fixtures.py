"""The pytest plugin's fixtures as another project uses them: small test files run by
pytester against real brokers, checked from outside (results, then ports and data dirs)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from kbroker.log.manager import CLEAN_SHUTDOWN_MARKER

pytest_plugins = ["pytester"]

# What the inner tests leave behind for the outer test to check once their session is over.
_RECORD = """
import json, os
from pathlib import Path

def record(name, broker):
    out = Path(os.environ["KBROKER_FIXTURE_RECORD"])
    seen = json.loads(out.read_text()) if out.exists() else {}
    seen[name] = {"bootstrap": broker.bootstrap, "data_dir": str(broker.data_dir)}
    out.write_text(json.dumps(seen))
"""



_PARTITIONS = """
from kafka import KafkaProducer

def partitions_after_auto_create(bootstrap, topic):
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        producer.send(topic, b"v").get(timeout=10)
        return producer.partitions_for(topic)
    finally:
        producer.close()
"""


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: str) -> tuple[pytest.RunResult, dict]:
    record = pytester.path / "record.json"
    monkeypatch.setenv("KBROKER_FIXTURE_RECORD", str(record))
    pytester.makepyfile(kbroker_fixture_helpers=_RECORD + _PARTITIONS)  # not "helpers": compat-tests has one
    pytester.makepyfile(source)
    result = pytester.runpytest("--strict-markers", "-p", "no:cacheprovider")
    return result, json.loads(record.read_text()) if record.exists() else {}


def _assert_stopped(seen: dict) -> None:
    """Every recorded broker no longer accepts connections and shut down cleanly."""
    for name, info in seen.items():
        host, port = info["bootstrap"].rsplit(":", 1)
        with pytest.raises(ConnectionRefusedError), socket.create_connection((host, int(port)), timeout=5):
            pass
        assert (Path(info["data_dir"]) / CLEAN_SHUTDOWN_MARKER).exists(), name


def test_marker_sets_the_function_fixture_s_properties(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result, seen = _run(pytester, monkeypatch, """
import pytest
from kbroker_fixture_helpers import partitions_after_auto_create, record

@pytest.mark.kbroker(config={"num.partitions": "5"})
def test_five(kbroker):
    record("five", kbroker)
    assert partitions_after_auto_create(kbroker.bootstrap, "auto") == {0, 1, 2, 3, 4}

@pytest.mark.kbroker(config={"num.partitions": 2, "auto.create.topics.enable": True})
def test_plain_values(kbroker):
    assert partitions_after_auto_create(kbroker.bootstrap, "auto") == {0, 1}

def test_default(kbroker):
    record("default", kbroker)
    assert partitions_after_auto_create(kbroker.bootstrap, "auto") == {0}
""")
    result.assert_outcomes(passed=3)
    assert seen["five"]["bootstrap"] != seen["default"]["bootstrap"]
    _assert_stopped(seen)


def test_a_misused_marker_is_a_usage_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result, _seen = _run(pytester, monkeypatch, """
import pytest

@pytest.mark.kbroker({"num.partitions": "5"})
def test_positional(kbroker):
    pass
""")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*takes one keyword, config=*"])


def test_the_marker_on_a_test_without_the_function_fixture_is_refused(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, _seen = _run(pytester, monkeypatch, """
import pytest

@pytest.mark.kbroker(config={"num.partitions": "5"})
def test_session(kbroker_session):
    pass

@pytest.mark.kbroker(config={"num.partitions": "5"})
def test_factory(kbroker_factory):
    pass
""")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*sets the properties of the kbroker fixture, which test_session does not use*"])


def test_session_fixture_is_one_broker_for_the_session(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result, seen = _run(pytester, monkeypatch, """
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kbroker_fixture_helpers import record

first = []

def test_first(kbroker_session):
    record("first", kbroker_session)
    first.append(kbroker_session)
    producer = KafkaProducer(bootstrap_servers=kbroker_session.bootstrap)
    producer.send("shared", b"left by test_first").get(timeout=10)
    producer.close()

def test_second(kbroker_session):
    record("second", kbroker_session)
    assert kbroker_session is first[0]
    consumer = KafkaConsumer(bootstrap_servers=kbroker_session.bootstrap, consumer_timeout_ms=5000)
    consumer.assign([TopicPartition("shared", 0)])
    consumer.seek_to_beginning()
    assert [m.value for m in consumer] == [b"left by test_first"]
    consumer.close()
""")
    result.assert_outcomes(passed=2)
    assert seen["first"] == seen["second"]
    _assert_stopped(seen)


def test_factory_brokers_are_distinct_and_all_stop(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result, seen = _run(pytester, monkeypatch, """
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kbroker_fixture_helpers import partitions_after_auto_create, record

def test_three(kbroker_factory):
    brokers = [kbroker_factory(), kbroker_factory(), kbroker_factory({"num.partitions": "3"})]
    for i, b in enumerate(brokers):
        record(f"b{i}", b)
    assert len({b.bootstrap for b in brokers}) == 3
    assert len({b.data_dir for b in brokers}) == 3
    for i, b in enumerate(brokers[:2]):
        producer = KafkaProducer(bootstrap_servers=b.bootstrap)
        producer.send("t", f"only on broker {i}".encode()).get(timeout=10)
        producer.close()
    for i, b in enumerate(brokers[:2]):
        consumer = KafkaConsumer(bootstrap_servers=b.bootstrap, consumer_timeout_ms=5000)
        consumer.assign([TopicPartition("t", 0)])
        consumer.seek_to_beginning()
        assert [m.value for m in consumer] == [f"only on broker {i}".encode()]
        consumer.close()
    assert partitions_after_auto_create(brokers[2].bootstrap, "t") == {0, 1, 2}
""")
    result.assert_outcomes(passed=1)
    assert len(seen) == 3
    _assert_stopped(seen)

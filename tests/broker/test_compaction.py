"""Compacted topics in the broker: keyless records refused, cleaner configs validated, the
cleaner running on its worker thread and swapping on the loop."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.create_topics_request import (
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
)
from kbroker.wire.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.records import decode_records, iter_batches, make_batch

from kbroker.config import ConfigError, build_config
from kbroker.testing import BrokerThread

# Bounded waits for the cleaner thread (it normally finishes within a second or two).
CLEANER_WAIT_S = 60.0


def _create(c: RawClient, name: str, configs: dict[str, str]) -> int:
    topic = CreatableTopic(
        name=name,
        num_partitions=1,
        replication_factor=-1,
        configs=[CreatableTopicConfig(name=k, value=v) for k, v in configs.items()],
    )
    return c.request(CreateTopicsRequest(topics=[topic]), 7).topics[0].error_code


def _produce(c: RawClient, name: str, batch: bytes):
    req = ProduceRequest(
        acks=-1,
        timeout_ms=5000,
        topic_data=[
            TopicProduceData(
                name=name, partition_data=[PartitionProduceData(index=0, records=bytes(batch))]
            )
        ],
    )
    return c.request(req, 9).responses[0].partition_responses[0]


def _read_all(c: RawClient, name: str) -> list[tuple[int, bytes | None, bytes | None]]:
    out: list[tuple[int, bytes | None, bytes | None]] = []
    offset = 0
    for _ in range(10_000):
        req = FetchRequest(
            replica_id=-1,
            max_wait_ms=0,
            min_bytes=1,
            max_bytes=1 << 20,
            isolation_level=0,
            topics=[
                FetchTopic(
                    topic=name,
                    partitions=[
                        FetchPartition(partition=0, fetch_offset=offset, partition_max_bytes=1 << 20)
                    ],
                )
            ],
        )
        part = c.request(req, 12).responses[0].partitions[0]
        views = list(iter_batches(bytes(part.records)))
        if not views:
            break
        for v in views:
            out += [
                (v.base_offset + r.offset_delta, r.key, r.value)
                for r in decode_records(v)
                if v.base_offset + r.offset_delta >= offset
            ]
            offset = max(offset, v.next_offset)
    return out


COMPACT = {"cleanup.policy": "compact", "internal.segment.bytes": "2000"}


def test_keyless_records_are_refused_on_compacted_topics(client: RawClient) -> None:
    assert _create(client, "c", COMPACT) == ErrorCode.NONE
    assert _create(client, "d", {}) == ErrorCode.NONE
    bad = make_batch([b"x", b"y"], [b"k", None])
    r = _produce(client, "c", bad)
    assert r.error_code == ErrorCode.INVALID_RECORD
    assert [e.batch_index for e in r.record_errors] == [1]
    assert "without key" in (r.error_message or "")
    assert _produce(client, "d", bad).error_code == ErrorCode.NONE  # delete topics take it
    assert _produce(client, "c", make_batch([b"x"], [b"k"])).error_code == ErrorCode.NONE
    assert [(o, k) for o, k, _ in _read_all(client, "c")] == [(0, b"k")]


def test_topic_config_ranges(client: RawClient) -> None:
    assert _create(client, "a", {"segment.bytes": "1048575"}) == ErrorCode.INVALID_CONFIG
    assert _create(client, "b", {"segment.bytes": "1048576"}) == ErrorCode.NONE
    assert _create(client, "c", {"min.cleanable.dirty.ratio": "1.5"}) == ErrorCode.INVALID_CONFIG
    assert _create(client, "d", {"max.compaction.lag.ms": "0"}) == ErrorCode.INVALID_CONFIG
    assert _create(client, "e", {"delete.retention.ms": "-1"}) == ErrorCode.INVALID_CONFIG
    assert _create(client, "f", {"internal.segment.bytes": "2"}) == ErrorCode.INVALID_CONFIG


@pytest.mark.parametrize(
    "setting",
    [
        "log.cleaner.threads=-1",
        "log.cleaner.backoff.ms=-1",
        "log.cleaner.min.cleanable.ratio=1.1",
        "log.cleaner.max.compaction.lag.ms=0",
        "log.cleaner.delete.retention.ms=-5",
        "log.cleaner.dedupe.buffer.size=1048576",  # must exceed 1 MiB per thread
        "log.cleaner.threads=abc",
        "transaction.state.log.segment.bytes=0",
    ],
)
def test_bad_cleaner_broker_configs_are_refused(setting: str) -> None:
    with pytest.raises(ConfigError):
        build_config(overrides=[setting], environ={})


def test_cleaner_compacts_on_its_thread(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data", {"log.cleaner.backoff.ms": "0"})
    bt.start()
    c = RawClient(bt.address)
    try:
        assert _create(c, "c", {**COMPACT, "delete.retention.ms": "0"}) == ErrorCode.NONE
        expected: dict[bytes, bytes | None] = {}
        for i in range(400):
            key, value = b"k%d" % (i % 20), (None if i % 7 == 6 else b"v%d" % i)
            expected[key] = value
            assert _produce(c, "c", make_batch([value], [key])).error_code == ErrorCode.NONE
        broker = bt.broker
        assert broker is not None and broker.topics.cleaner is not None
        cleaner = broker.topics.cleaner
        deadline = time.monotonic() + CLEANER_WAIT_S
        while cleaner.passes_completed == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert cleaner.passes_completed >= 1, cleaner.last_error
        records = _read_all(c, "c")
        offsets = [o for o, _, _ in records]
        assert offsets == sorted(set(offsets)) and len(records) < 400
        latest = {k: v for _, k, v in records}
        for key, value in expected.items():
            if value is not None:
                assert latest[key] == value
            else:
                assert latest.get(key) is None
        assert (tmp_path / "data" / "cleaner-offset-checkpoint").exists()
        # a restart keeps the cleaned log and its checkpoint
        bt.restart()
        c.close()
        c = RawClient(bt.address)
        assert _read_all(c, "c") == records
    finally:
        c.close()
        bt.close()


def test_consumer_offsets_are_compacted_and_replayed_after_restart(tmp_path: Path) -> None:
    from kbroker.wire.messages.find_coordinator_request import FindCoordinatorRequest
    from kbroker.wire.messages.offset_commit_request import (
        OffsetCommitRequest,
        OffsetCommitRequestPartition,
        OffsetCommitRequestTopic,
    )
    from kbroker.wire.messages.offset_fetch_request import (
        OffsetFetchRequest,
        OffsetFetchRequestTopic,
    )

    from kbroker.metadata import OFFSETS_TOPIC

    settings = {
        "offsets.topic.num.partitions": "1",
        "offsets.topic.segment.bytes": "8192",
        "log.cleaner.backoff.ms": "0",
    }
    bt = BrokerThread(tmp_path / "data", settings)
    bt.start()
    c = RawClient(bt.address)
    try:
        assert _create(c, "t", {}) == ErrorCode.NONE
        assert c.request(FindCoordinatorRequest(key="g", key_type=0), 3).error_code == ErrorCode.NONE
        for i in range(1500):
            partitions = [
                OffsetCommitRequestPartition(partition_index=0, committed_offset=i),
            ]
            commit = OffsetCommitRequest(
                group_id="g",
                generation_id_or_member_epoch=-1,
                member_id="",
                retention_time_ms=-1,
                topics=[OffsetCommitRequestTopic(name="t", partitions=partitions)],
            )
            r = c.request(commit, 7)
            assert r.topics[0].partitions[0].error_code == ErrorCode.NONE
        broker = bt.broker
        assert broker is not None and broker.topics.cleaner is not None
        log = broker.topics.log(OFFSETS_TOPIC, 0)
        assert log is not None
        written = log.size_bytes
        deadline = time.monotonic() + CLEANER_WAIT_S
        # A pass may have started while the commits were still coming: wait for one
        # that covered them (the log shrinks), not just for the first.
        while (
            broker.topics.cleaner.passes_completed == 0 or log.size_bytes >= written / 4
        ) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert broker.topics.cleaner.passes_completed >= 1, broker.topics.cleaner.last_error
        # one live key: what remains is the active segment plus the latest commit
        assert log.size_bytes < written / 4
        c.close()
        bt.restart()
        c = RawClient(bt.address)
        fetched = c.request(
            OffsetFetchRequest(
                group_id="g", topics=[OffsetFetchRequestTopic(name="t", partition_indexes=[0])]
            ),
            5,
        )
        assert fetched.topics[0].partitions[0].committed_offset == 1499
    finally:
        c.close()
        bt.close()


def test_describe_configs_reports_the_cleaner_configs_with_sources(tmp_path: Path) -> None:
    from kbroker.wire.messages.describe_configs_request import (
        DescribeConfigsRequest,
        DescribeConfigsResource,
    )

    bt = BrokerThread(tmp_path / "data", {"log.cleaner.threads": "2"})
    bt.start()
    c = RawClient(bt.address)
    try:
        names = ["log.cleaner.threads", "log.cleaner.dedupe.buffer.size", "log.cleaner.enable"]
        req = DescribeConfigsRequest(
            resources=[DescribeConfigsResource(resource_type=4, resource_name="1", configuration_keys=names)]
        )
        [result] = c.request(req, 4).results
        got = {e.name: (e.value, e.config_source) for e in result.configs}
        assert got == {
            "log.cleaner.threads": ("2", 4),  # STATIC_BROKER_CONFIG
            "log.cleaner.dedupe.buffer.size": ("134217728", 5),  # DEFAULT_CONFIG
            "log.cleaner.enable": ("true", 5),
        }
        assert bt.broker is not None and bt.broker.topics.cleaner is not None
        assert bt.broker.topics.cleaner.config.threads == 2
    finally:
        c.close()
        bt.close()


def test_a_worker_whose_broker_died_stops_and_leaves_no_files(tmp_path: Path) -> None:
    import os

    from kbroker.log import LogConfig, PartitionLog
    from kbroker.log.cleaner import plan_clean
    from kbroker.log.cleaner_manager import CleanerConfig

    from kbroker.log_cleaner import build_in_worker

    cfg = LogConfig(segment_bytes=2000, cleanup_policy="compact")
    log = PartitionLog(str(tmp_path / "t-0"), cfg, now_ms=0)
    try:
        for i in range(200):
            log.append(make_batch([b"v%d" % i], [b"k%d" % (i % 5)]), leader_epoch=0, now_ms=0)
        plan = plan_clean(log, 0, 0, force=True)
        assert plan is not None
        # our parent is alive: the pass runs
        outcome = build_in_worker(plan, CleanerConfig(), os.getppid())
        assert outcome is not None and outcome.groups
        for name in os.listdir(log.directory):
            if name.endswith(".cleaned"):
                os.unlink(os.path.join(log.directory, name))
        # a "broker" that is not our parent any more: the pass gives up
        assert build_in_worker(plan, CleanerConfig(), os.getppid() + 1) is None
        assert not [n for n in os.listdir(log.directory) if n.endswith(".cleaned")]
    finally:
        log.close()


def _describe_broker(c: RawClient, name: str, keys: list[str] | None) -> dict[str, tuple[str | None, int, bool]]:
    from kbroker.wire.messages.describe_configs_request import (
        DescribeConfigsRequest,
        DescribeConfigsResource,
    )

    req = DescribeConfigsRequest(
        resources=[DescribeConfigsResource(resource_type=4, resource_name=name, configuration_keys=keys)]
    )
    [result] = c.request(req, 4).results
    assert result.error_code == ErrorCode.NONE
    return {e.name: (e.value, e.config_source, e.read_only) for e in result.configs}


def _incremental(c: RawClient, name: str, ops: list[tuple[str, int, str | None]], version: int = 1) -> int:
    from kbroker.wire.messages.incremental_alter_configs_request import (
        AlterableConfig,
        AlterConfigsResource,
        IncrementalAlterConfigsRequest,
    )

    req = IncrementalAlterConfigsRequest(
        resources=[
            AlterConfigsResource(
                resource_type=4,
                resource_name=name,
                configs=[AlterableConfig(name=n, config_operation=op, value=v) for n, op, v in ops],
            )
        ]
    )
    return c.request(req, version).responses[0].error_code


def test_cleaner_broker_configs_change_live_and_persist(tmp_path: Path) -> None:
    from kbroker.wire.messages.alter_configs_request import (
        AlterableConfig,
        AlterConfigsRequest,
        AlterConfigsResource,
    )

    bt = BrokerThread(tmp_path / "data")
    bt.start()
    c = RawClient(bt.address)
    try:
        assert bt.broker is not None
        service = bt.broker.topics.cleaner
        assert service is not None
        keys = ["log.cleaner.backoff.ms", "log.cleaner.io.max.bytes.per.second", "log.cleaner.threads"]
        assert _incremental(c, "1", [("log.cleaner.backoff.ms", 0, "1234")]) == ErrorCode.NONE
        assert _incremental(c, "", [("log.cleaner.io.max.bytes.per.second", 0, "1000000")]) == ErrorCode.NONE
        assert service.config.backoff_ms == 1234 and service.config.io_max_bytes_per_second == 1e6
        got = _describe_broker(c, "1", keys)
        assert got["log.cleaner.backoff.ms"] == ("1234", 2, False)  # DYNAMIC_BROKER_CONFIG
        assert got["log.cleaner.io.max.bytes.per.second"] == ("1000000", 3, False)  # DYNAMIC_DEFAULT
        assert got["log.cleaner.threads"] == ("1", 5, False)
        assert _describe_broker(c, "", None) == {"log.cleaner.io.max.bytes.per.second": ("1000000", 3, False)}
        # refused: not dynamic here, a bad value, another broker's id
        assert _incremental(c, "1", [("auto.create.topics.enable", 0, "false")]) == ErrorCode.INVALID_REQUEST
        assert _incremental(c, "1", [("log.cleaner.threads", 0, "-1")]) == ErrorCode.INVALID_CONFIG
        assert _incremental(c, "7", [("log.cleaner.threads", 0, "2")]) == ErrorCode.INVALID_REQUEST
        assert service.config.threads == 1
        # a new thread count takes effect for the next pass
        assert _incremental(c, "1", [("log.cleaner.threads", 0, "2")]) == ErrorCode.NONE
        assert service.config.threads == 2
        # AlterConfigs (legacy) replaces the broker's set: backoff and threads go back
        legacy = AlterConfigsRequest(
            resources=[
                AlterConfigsResource(
                    resource_type=4,
                    resource_name="1",
                    configs=[AlterableConfig(name="log.cleaner.dedupe.buffer.size", value="268435456")],
                )
            ]
        )
        assert c.request(legacy, 1).responses[0].error_code == ErrorCode.NONE
        assert (service.config.backoff_ms, service.config.threads) == (15000, 1)
        # persisted: a restart keeps the dynamic values
        c.close()
        bt.restart()
        c = RawClient(bt.address)
        got = _describe_broker(c, "1", ["log.cleaner.dedupe.buffer.size", "log.cleaner.io.max.bytes.per.second"])
        assert got == {
            "log.cleaner.dedupe.buffer.size": ("268435456", 2, False),
            "log.cleaner.io.max.bytes.per.second": ("1000000", 3, False),
        }
        assert bt.broker.topics.cleaner is not None
        assert bt.broker.topics.cleaner.config.dedupe_buffer_size == 268435456
        # DELETE falls back to the static value
        assert _incremental(c, "1", [("log.cleaner.dedupe.buffer.size", 1, None)]) == ErrorCode.NONE
        assert _describe_broker(c, "1", ["log.cleaner.dedupe.buffer.size"]) == {
            "log.cleaner.dedupe.buffer.size": ("134217728", 5, False)
        }
    finally:
        c.close()
        bt.close()


def test_the_swap_file_work_runs_off_the_event_loop(tmp_path: Path, monkeypatch) -> None:
    """The renames, fsyncs and the opening of the cleaned segment (swap_files) run on
    the cleaner's swap thread, not on the broker's event loop."""
    import threading

    from kbroker.log.partition_log import PartitionLog

    threads: list[str] = []
    original = PartitionLog.swap_files

    def recording(self, pending, fault=None):
        threads.append(threading.current_thread().name)
        return original(self, pending, fault)

    monkeypatch.setattr(PartitionLog, "swap_files", recording)
    bt = BrokerThread(tmp_path / "data", {"log.cleaner.backoff.ms": "0"})
    bt.start()
    c = RawClient(bt.address)
    try:
        assert _create(c, "c", COMPACT) == ErrorCode.NONE
        for i in range(300):
            assert _produce(c, "c", make_batch([b"v%d" % i], [b"k%d" % (i % 5)])).error_code == ErrorCode.NONE
        broker = bt.broker
        assert broker is not None and broker.topics.cleaner is not None
        deadline = time.monotonic() + CLEANER_WAIT_S
        while broker.topics.cleaner.passes_completed == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert broker.topics.cleaner.passes_completed >= 1, broker.topics.cleaner.last_error
        assert threads and all(name.startswith("kbroker-cleaner-swap") for name in threads)
    finally:
        c.close()
        bt.close()


def test_dynamic_topic_defaults_apply_live_and_show_as_topic_synonyms(tmp_path: Path) -> None:
    """Kafka: altering a topic config's broker synonym (cluster default "" or this
    broker) changes every topic without its own override, and DescribeConfigs of the
    topic names the dynamic source, with the chain in its synonyms."""
    from kbroker.wire.messages.describe_configs_request import (
        DescribeConfigsRequest,
        DescribeConfigsResource,
    )

    def describe_topic(c: RawClient, name: str, key: str):
        req = DescribeConfigsRequest(
            resources=[DescribeConfigsResource(resource_type=2, resource_name=name, configuration_keys=[key])],
            include_synonyms=True,
        )
        [result] = c.request(req, 4).results
        assert result.error_code == ErrorCode.NONE
        [entry] = result.configs
        return entry.value, entry.config_source, [(s.name, s.value, s.source) for s in entry.synonyms]

    bt = BrokerThread(tmp_path / "data", {})
    bt.start()
    c = RawClient(bt.address)
    try:
        assert _create(c, "plain", COMPACT) == ErrorCode.NONE
        assert _create(c, "own", {**COMPACT, "delete.retention.ms": "5"}) == ErrorCode.NONE
        assert _incremental(c, "", [("log.cleaner.delete.retention.ms", 0, "1234")]) == ErrorCode.NONE
        assert describe_topic(c, "plain", "delete.retention.ms") == (
            "1234",
            3,  # DYNAMIC_DEFAULT_BROKER_CONFIG
            [("log.cleaner.delete.retention.ms", "1234", 3), ("log.cleaner.delete.retention.ms", "86400000", 5)],
        )
        assert _incremental(c, "1", [("log.cleaner.delete.retention.ms", 0, "99")]) == ErrorCode.NONE
        value, source, chain = describe_topic(c, "plain", "delete.retention.ms")
        assert (value, source) == ("99", 2)  # DYNAMIC_BROKER_CONFIG
        assert [(s[1], s[2]) for s in chain] == [("99", 2), ("1234", 3), ("86400000", 5)]
        value, source, chain = describe_topic(c, "own", "delete.retention.ms")
        assert (value, source) == ("5", 1)  # TOPIC_CONFIG wins
        assert [(s[1], s[2]) for s in chain] == [("5", 1), ("99", 2), ("1234", 3), ("86400000", 5)]
        broker = bt.broker
        assert broker is not None
        plain_log = broker.topics.log("plain", 0)
        own_log = broker.topics.log("own", 0)
        assert plain_log is not None and own_log is not None
        assert plain_log.config.delete_retention_ms == 99
        assert own_log.config.delete_retention_ms == 5
        # a restart keeps the dynamic default in force
        bt.restart()
        broker = bt.broker
        assert broker is not None
        plain_log = broker.topics.log("plain", 0)
        assert plain_log is not None and plain_log.config.delete_retention_ms == 99
    finally:
        c.close()
        bt.close()

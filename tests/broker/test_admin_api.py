"""Topic admin and offset APIs over a real socket with raw requests (issue 4).

CreateTopics, DeleteTopics (by name and by id), DeleteRecords, Metadata (auto-creation,
topic ids and leader epochs across restarts), OffsetForLeaderEpoch, DescribeConfigs,
IncrementalAlterConfigs, Produce with acks=0 and LogAppendTime, and the Fetch limits.
Expected answers are Kafka 4.x's.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.create_topics_request import (
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
)
from kbroker.wire.messages.delete_records_request import (
    DeleteRecordsPartition,
    DeleteRecordsRequest,
    DeleteRecordsTopic,
)
from kbroker.wire.messages.delete_topics_request import DeleteTopicsRequest, DeleteTopicState
from kbroker.wire.messages.describe_configs_request import (
    DescribeConfigsRequest,
    DescribeConfigsResource,
)
from kbroker.wire.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from kbroker.wire.messages.incremental_alter_configs_request import (
    AlterableConfig,
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
)
from kbroker.wire.messages.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from kbroker.wire.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from kbroker.wire.messages.offset_for_leader_epoch_request import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.records import (
    RecordBatchView,
    TimestampType,
    decode_records,
    iter_batches,
    make_batch,
)

from kbroker.testing import BrokerThread

ZERO_UUID = uuid.UUID(int=0)
RESOURCE_TOPIC, RESOURCE_BROKER = 2, 4
# DescribeConfigs config_source values (Kafka's ConfigSource ids).
DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5
OP_SET = 0


# -- raw request helpers -------------------------------------------------------------------


def create(
    c: RawClient,
    name: str,
    partitions: int = 1,
    configs: dict[str, str] | None = None,
    *,
    replication_factor: int = -1,
    validate_only: bool = False,
    version: int = 7,
):
    topic = CreatableTopic(
        name=name,
        num_partitions=partitions,
        replication_factor=replication_factor,
        configs=[CreatableTopicConfig(name=k, value=v) for k, v in (configs or {}).items()],
    )
    return c.request(CreateTopicsRequest(topics=[topic], timeout_ms=5000, validate_only=validate_only), version).topics[0]


def metadata(c: RawClient, names: list[str] | None, *, allow_create: bool = False, version: int = 12):
    topics = None if names is None else [MetadataRequestTopic(name=n) for n in names]
    return c.request(MetadataRequest(topics=topics, allow_auto_topic_creation=allow_create), version)


def topic_md(c: RawClient, name: str):
    return metadata(c, [name]).topics[0]


def produce(c: RawClient, name: str, batch: bytes, partition: int = 0, *, acks: int = -1, version: int = 9):
    req = ProduceRequest(
        acks=acks,
        timeout_ms=5000,
        topic_data=[TopicProduceData(name=name, partition_data=[PartitionProduceData(index=partition, records=bytes(batch))])],
    )
    resp = c.request(req, version, expect_response=acks != 0)
    return None if resp is None else resp.responses[0].partition_responses[0]


def fetch_request(
    parts: list[tuple[str, int, int, int]],
    *,
    max_bytes: int = 1 << 20,
    isolation_level: int = 0,
    session_id: int = 0,
    session_epoch: int = -1,
    topic_ids: dict[str, uuid.UUID] | None = None,
) -> FetchRequest:
    """parts: (topic, partition, fetch_offset, partition_max_bytes), grouped by topic in order."""
    topics: list[FetchTopic] = []
    for name, partition, offset, limit in parts:
        if not topics or topics[-1].topic != name:
            tid = (topic_ids or {}).get(name, ZERO_UUID)
            topics.append(FetchTopic(topic=name, topic_id=tid, partitions=[]))
        topics[-1].partitions.append(FetchPartition(partition=partition, fetch_offset=offset, partition_max_bytes=limit))
    return FetchRequest(
        replica_id=-1,
        max_wait_ms=0,
        min_bytes=1,
        max_bytes=max_bytes,
        isolation_level=isolation_level,
        session_id=session_id,
        session_epoch=session_epoch,
        topics=topics,
    )


def batches_of(records: bytes | None) -> list[RecordBatchView]:
    return list(iter_batches(bytes(records or b"")))


def values_of(records: bytes | None) -> list[bytes | None]:
    return [r.value for view in batches_of(records) for r in decode_records(view)]


def list_offset(c: RawClient, name: str, timestamp: int, partition: int = 0) -> int:
    req = ListOffsetsRequest(
        replica_id=-1,
        topics=[ListOffsetsTopic(name=name, partitions=[ListOffsetsPartition(partition_index=partition, timestamp=timestamp)])],
    )
    p = c.request(req, 7).topics[0].partitions[0]
    assert p.error_code == ErrorCode.NONE, p
    return int(p.offset)


def delete_records(c: RawClient, name: str, offset: int, partition: int = 0, version: int = 2):
    req = DeleteRecordsRequest(
        topics=[DeleteRecordsTopic(name=name, partitions=[DeleteRecordsPartition(partition_index=partition, offset=offset)])],
        timeout_ms=5000,
    )
    return c.request(req, version).topics[0].partitions[0]


def end_offset_for(c: RawClient, name: str, leader_epoch: int, current_leader_epoch: int = -1, *, version: int = 4, partition: int = 0):
    req = OffsetForLeaderEpochRequest(
        replica_id=-1,
        topics=[
            OffsetForLeaderTopic(
                topic=name,
                partitions=[OffsetForLeaderPartition(partition=partition, current_leader_epoch=current_leader_epoch, leader_epoch=leader_epoch)],
            )
        ],
    )
    return c.request(req, version).topics[0].partitions[0]


def describe_configs(c: RawClient, resource_type: int, name: str, keys: list[str] | None = None, *, synonyms: bool = True, version: int = 4):
    req = DescribeConfigsRequest(
        resources=[DescribeConfigsResource(resource_type=resource_type, resource_name=name, configuration_keys=keys)],
        include_synonyms=synonyms,
    )
    result = c.request(req, version).results[0]
    assert result.error_code == ErrorCode.NONE, result
    return {e.name: e for e in result.configs}


# -- CreateTopics ----------------------------------------------------------------------------


def test_create_topics_answers_what_the_topic_got(client: RawClient) -> None:
    got = create(client, "made", 4, {"retention.ms": "123456", "cleanup.policy": "compact"})
    assert got.error_code == ErrorCode.NONE, got
    assert (got.num_partitions, got.replication_factor) == (4, 1)
    assert got.topic_id != ZERO_UUID
    configs = {c.name: c for c in got.configs}
    assert (configs["retention.ms"].value, configs["retention.ms"].config_source) == ("123456", DYNAMIC_TOPIC_CONFIG)
    assert (configs["cleanup.policy"].value, configs["cleanup.policy"].config_source) == ("compact", DYNAMIC_TOPIC_CONFIG)
    assert (configs["segment.bytes"].value, configs["segment.bytes"].config_source) == ("1073741824", DEFAULT_CONFIG)
    md = topic_md(client, "made")
    assert md.topic_id == got.topic_id
    assert [p.partition_index for p in md.partitions] == [0, 1, 2, 3]
    # num_partitions -1 takes num.partitions (1 by default).
    assert create(client, "defaults", -1).num_partitions == 1


def test_create_topics_errors(client: RawClient) -> None:
    assert create(client, "rf3", 1, replication_factor=3).error_code == ErrorCode.INVALID_REPLICATION_FACTOR
    assert create(client, "rf1", 1, replication_factor=1).error_code == ErrorCode.NONE
    assert create(client, "rf1", 1).error_code == ErrorCode.TOPIC_ALREADY_EXISTS
    assert create(client, "bad config", 1).error_code == ErrorCode.INVALID_TOPIC_EXCEPTION
    assert create(client, "x" * 250, 1).error_code == ErrorCode.INVALID_TOPIC_EXCEPTION
    assert create(client, "unknown-config", 1, {"no.such.config": "1"}).error_code == ErrorCode.INVALID_CONFIG
    assert create(client, "bad-value", 1, {"retention.ms": "soon"}).error_code == ErrorCode.INVALID_CONFIG
    assert create(client, "zero", 0).error_code == ErrorCode.INVALID_PARTITIONS
    for name in ("rf3", "bad config", "unknown-config", "bad-value", "zero"):
        assert topic_md(client, name).error_code != ErrorCode.NONE, name


def test_create_topics_validate_only_creates_nothing(client: RawClient) -> None:
    got = create(client, "dry", 2, {"retention.ms": "1000"}, validate_only=True)
    assert (got.error_code, got.num_partitions) == (ErrorCode.NONE, 2)
    assert topic_md(client, "dry").error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    # errors are still reported
    assert create(client, "dry", 1, replication_factor=3, validate_only=True).error_code == ErrorCode.INVALID_REPLICATION_FACTOR
    assert create(client, "dry", 1).error_code == ErrorCode.NONE


# -- DeleteTopics ----------------------------------------------------------------------------


def test_delete_topics_by_id_v6_and_by_name(client: RawClient) -> None:
    by_id = create(client, "by-id", 2)
    create(client, "by-name", 1)
    produce(client, "by-id", make_batch([b"gone"]))
    resp = client.request(
        DeleteTopicsRequest(
            topics=[
                DeleteTopicState(name=None, topic_id=by_id.topic_id),
                DeleteTopicState(name="by-name", topic_id=ZERO_UUID),
                DeleteTopicState(name=None, topic_id=uuid.uuid4()),
                DeleteTopicState(name="never-was", topic_id=ZERO_UUID),
            ],
            timeout_ms=5000,
        ),
        6,
    )
    got = [(r.name, r.error_code) for r in resp.responses]
    assert got[0] == ("by-id", ErrorCode.NONE)
    assert resp.responses[0].topic_id == by_id.topic_id
    assert got[1] == ("by-name", ErrorCode.NONE)
    assert got[2][1] == ErrorCode.UNKNOWN_TOPIC_ID
    assert got[3] == ("never-was", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    for name in ("by-id", "by-name"):
        assert topic_md(client, name).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    # a re-created topic of the same name is a new topic: new id, empty log
    again = create(client, "by-id", 1)
    assert again.topic_id != by_id.topic_id
    assert list_offset(client, "by-id", -1) == 0


def test_delete_topics_by_name_v1_v4(client: RawClient) -> None:
    for version in (1, 4):
        name = f"old-{version}"
        create(client, name)
        resp = client.request(DeleteTopicsRequest(topic_names=[name, "missing"], timeout_ms=5000), version)
        assert [(r.name, r.error_code) for r in resp.responses] == [
            (name, ErrorCode.NONE),
            ("missing", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
        ]


# -- DeleteRecords ---------------------------------------------------------------------------


def test_delete_records_moves_the_low_watermark(client: RawClient) -> None:
    create(client, "dr")
    for i in range(5):
        produce(client, "dr", make_batch([f"{i}a".encode(), f"{i}b".encode()]))
    assert list_offset(client, "dr", -1) == 10
    low = delete_records(client, "dr", 4)
    assert (low.error_code, low.low_watermark) == (ErrorCode.NONE, 4)
    assert list_offset(client, "dr", -2) == 4
    part = client.request(fetch_request([("dr", 0, 4, 1 << 20)]), 12).responses[0].partitions[0]
    assert part.log_start_offset == 4
    # offset 4 is inside the batch at 4..5, so that batch comes back whole, starting at offset 4
    assert values_of(part.records)[0] == b"2a"
    below = client.request(fetch_request([("dr", 0, 2, 1 << 20)]), 12).responses[0].partitions[0]
    assert below.error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    # beyond the high watermark
    assert delete_records(client, "dr", 11).error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    # -1 is the high watermark
    high = delete_records(client, "dr", -1, version=1)
    assert (high.error_code, high.low_watermark) == (ErrorCode.NONE, 10)
    assert list_offset(client, "dr", -2) == 10
    # unknown partition
    assert delete_records(client, "dr", 0, partition=7).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


# -- Metadata --------------------------------------------------------------------------------


def test_metadata_auto_creation_follows_the_request_and_the_broker(tmp_path: Path) -> None:
    for enabled in ("true", "false"):
        bt = BrokerThread(tmp_path / enabled, {"auto.create.topics.enable": enabled, "num.partitions": "2"})
        bt.start()
        c = RawClient(bt.address)
        try:
            assert metadata(c, ["no-create"], allow_create=False).topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            assert metadata(c, None).topics == []
            t = metadata(c, ["auto"], allow_create=True).topics[0]
            if enabled == "true":
                assert t.error_code == ErrorCode.NONE
                assert len(t.partitions) == 2 and t.topic_id != ZERO_UUID
                assert [x.name for x in metadata(c, None).topics] == ["auto"]
            else:
                assert t.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                assert metadata(c, None).topics == []
            # an illegal name is never created
            assert metadata(c, ["bad name"], allow_create=True).topics[0].error_code == ErrorCode.INVALID_TOPIC_EXCEPTION
        finally:
            c.close()
            bt.close()


def test_metadata_topic_ids_stable_and_leader_epochs_rise_across_restarts(broker_thread: BrokerThread) -> None:
    c = RawClient(broker_thread.address)
    create(c, "ids", 3)
    first = topic_md(c, "ids")
    c.close()
    assert first.topic_id != ZERO_UUID
    seen = [[p.leader_epoch for p in first.partitions]]
    for _ in range(2):
        broker_thread.restart()
        c = RawClient(broker_thread.address)
        t = topic_md(c, "ids")
        by_id = c.request(MetadataRequest(topics=[MetadataRequestTopic(topic_id=first.topic_id, name=None)]), 12).topics[0]
        c.close()
        assert t.topic_id == first.topic_id
        assert (by_id.name, by_id.error_code) == ("ids", ErrorCode.NONE)
        seen.append([p.leader_epoch for p in t.partitions])
    for before, after in zip(seen, seen[1:]):
        assert all(a > b >= 0 for b, a in zip(before, after)), seen


# -- OffsetForLeaderEpoch --------------------------------------------------------------------


def test_offset_for_leader_epoch_current_epoch_ends_at_the_log_end(client: RawClient) -> None:
    create(client, "ofle")
    epoch = topic_md(client, "ofle").partitions[0].leader_epoch
    for version in (2, 3, 4):
        empty = end_offset_for(client, "ofle", epoch, version=version)
        assert (empty.error_code, empty.leader_epoch, empty.end_offset) == (ErrorCode.NONE, epoch, 0), version
    produce(client, "ofle", make_batch([b"a", b"b", b"c"]))
    for version in (2, 4):
        got = end_offset_for(client, "ofle", epoch, epoch, version=version)
        assert (got.error_code, got.leader_epoch, got.end_offset) == (ErrorCode.NONE, epoch, 3), version
    future = end_offset_for(client, "ofle", epoch + 5)
    assert (future.error_code, future.leader_epoch, future.end_offset) == (ErrorCode.NONE, -1, -1)
    assert end_offset_for(client, "ofle", epoch, epoch + 1).error_code == ErrorCode.UNKNOWN_LEADER_EPOCH
    assert end_offset_for(client, "missing", 0).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_offset_for_leader_epoch_across_restarts(broker_thread: BrokerThread) -> None:
    c = RawClient(broker_thread.address)
    create(c, "epochs")
    old = topic_md(c, "epochs").partitions[0].leader_epoch
    produce(c, "epochs", make_batch([b"a", b"b"]))
    c.close()

    broker_thread.restart()
    c = RawClient(broker_thread.address)
    try:
        new = topic_md(c, "epochs").partitions[0].leader_epoch
        assert new > old
        # nothing written yet in the new epoch: it still ends at the log end
        cur = end_offset_for(c, "epochs", new, new)
        assert (cur.error_code, cur.leader_epoch, cur.end_offset) == (ErrorCode.NONE, new, 2)
        produce(c, "epochs", make_batch([b"c"]))
        # the previous epoch ends where the new one began; the current one at the log end
        prev = end_offset_for(c, "epochs", old, new)
        assert (prev.error_code, prev.leader_epoch, prev.end_offset) == (ErrorCode.NONE, old, 2)
        cur = end_offset_for(c, "epochs", new, new, version=2)
        assert (cur.leader_epoch, cur.end_offset) == (new, 3)
        # the client's epoch is older than the broker's: fenced; newer: unknown
        assert end_offset_for(c, "epochs", old, old).error_code == ErrorCode.FENCED_LEADER_EPOCH
        assert end_offset_for(c, "epochs", old, new + 1).error_code == ErrorCode.UNKNOWN_LEADER_EPOCH
        future = end_offset_for(c, "epochs", new + 1, new)
        assert (future.leader_epoch, future.end_offset) == (-1, -1)
        # the batch written after the restart carries the new epoch
        part = c.request(fetch_request([("epochs", 0, 2, 1 << 20)]), 12).responses[0].partitions[0]
        assert [b.partition_leader_epoch for b in batches_of(part.records)] == [new]
    finally:
        c.close()


# -- Configs ---------------------------------------------------------------------------------


def test_describe_configs_sources_and_synonyms(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "d", {"log.retention.ms": "7200000"})
    bt.start()
    c = RawClient(bt.address)
    try:
        create(c, "cfg", 1, {"max.message.bytes": "4096"})
        topic = describe_configs(c, RESOURCE_TOPIC, "cfg")
        mmb = topic["max.message.bytes"]
        assert (mmb.value, mmb.config_source, mmb.read_only) == ("4096", DYNAMIC_TOPIC_CONFIG, False)
        assert [(s.name, s.value, s.source) for s in mmb.synonyms] == [
            ("max.message.bytes", "4096", DYNAMIC_TOPIC_CONFIG),
            ("message.max.bytes", "1048588", DEFAULT_CONFIG),
        ]
        ret = topic["retention.ms"]
        assert (ret.value, ret.config_source) == ("7200000", STATIC_BROKER_CONFIG)
        assert (ret.synonyms[0].name, ret.synonyms[0].value, ret.synonyms[0].source) == ("log.retention.ms", "7200000", STATIC_BROKER_CONFIG)
        seg = topic["segment.bytes"]
        assert (seg.value, seg.config_source) == ("1073741824", DEFAULT_CONFIG)
        # without synonyms, and only the keys asked for
        only = describe_configs(c, RESOURCE_TOPIC, "cfg", ["cleanup.policy"], synonyms=False)
        assert list(only) == ["cleanup.policy"]
        assert (only["cleanup.policy"].value, only["cleanup.policy"].synonyms) == ("delete", [])

        node = str(bt.broker.config.node_id) if bt.broker else "1"
        brk = describe_configs(c, RESOURCE_BROKER, node, ["log.retention.ms", "num.partitions"])
        assert (brk["log.retention.ms"].value, brk["log.retention.ms"].config_source) == ("7200000", STATIC_BROKER_CONFIG)
        assert brk["num.partitions"].config_source == DEFAULT_CONFIG
        # unknown topic
        req = DescribeConfigsRequest(resources=[DescribeConfigsResource(resource_type=RESOURCE_TOPIC, resource_name="nope", configuration_keys=None)])
        assert c.request(req, 2).results[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    finally:
        c.close()
        bt.close()


def test_incremental_alter_max_message_bytes_reaches_the_log(client: RawClient) -> None:
    create(client, "limit")
    big = make_batch([b"x" * 3000])
    assert produce(client, "limit", big).error_code == ErrorCode.NONE
    req = IncrementalAlterConfigsRequest(
        resources=[
            AlterConfigsResource(
                resource_type=RESOURCE_TOPIC, resource_name="limit", configs=[AlterableConfig(name="max.message.bytes", config_operation=OP_SET, value="1024")]
            )
        ]
    )
    assert client.request(req, 1).responses[0].error_code == ErrorCode.NONE
    assert describe_configs(client, RESOURCE_TOPIC, "limit", ["max.message.bytes"])["max.message.bytes"].value == "1024"
    assert produce(client, "limit", big).error_code == ErrorCode.MESSAGE_TOO_LARGE
    assert produce(client, "limit", make_batch([b"small"])).error_code == ErrorCode.NONE
    assert list_offset(client, "limit", -1) == 2


# -- Produce ---------------------------------------------------------------------------------


def test_produce_acks_0_has_no_response_and_stores_the_data(client: RawClient) -> None:
    create(client, "fire")
    for i in range(3):
        assert produce(client, "fire", make_batch([f"v{i}".encode()]), acks=0) is None
    # the next answer on the connection is for the next request: ListOffsets
    assert list_offset(client, "fire", -1) == 3
    part = client.request(fetch_request([("fire", 0, 0, 1 << 20)]), 12).responses[0].partitions[0]
    assert values_of(part.records) == [b"v0", b"v1", b"v2"]


def test_log_append_time_topic_stamps_the_broker_time(client: RawClient) -> None:
    create(client, "lat", 1, {"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    resp = produce(client, "lat", make_batch([b"a", b"b"], timestamp_ms=1000))
    after = int(time.time() * 1000)
    assert resp.error_code == ErrorCode.NONE
    assert before <= resp.log_append_time_ms <= after
    part = client.request(fetch_request([("lat", 0, 0, 1 << 20)]), 12).responses[0].partitions[0]
    [batch] = batches_of(part.records)
    assert batch.timestamp_type == TimestampType.LOG_APPEND_TIME
    assert batch.max_timestamp == resp.log_append_time_ms
    create(client, "ct")
    ct = produce(client, "ct", make_batch([b"a"], timestamp_ms=1000))
    assert ct.log_append_time_ms == -1


# -- Fetch -----------------------------------------------------------------------------------


def _fill(c: RawClient, name: str, partitions: int, batches: int, value_size: int) -> None:
    for p in range(partitions):
        for i in range(batches):
            produce(c, name, make_batch([bytes([65 + i]) * value_size]), partition=p)


def test_fetch_respects_max_bytes_and_partition_max_bytes(client: RawClient) -> None:
    create(client, "lim", 3)
    _fill(client, "lim", 3, 4, 1000)
    batch_size = len(batches_of(client.request(fetch_request([("lim", 0, 0, 1)]), 12).responses[0].partitions[0].records)[0].buffer())

    def sizes(max_bytes: int, limit: int) -> list[int]:
        req = fetch_request([("lim", p, 0, limit) for p in range(3)], max_bytes=max_bytes)
        return [len(bytes(p.records or b"")) for p in client.request(req, 12).responses[0].partitions]

    # per partition: two batches fit in 2.5 batches' worth
    assert sizes(1 << 20, batch_size * 5 // 2) == [2 * batch_size] * 3
    # the whole response: 3.5 batches -> 3 from partition 0, none from the others
    got = sizes(batch_size * 7 // 2, 1 << 20)
    assert sum(got) <= batch_size * 7 // 2 and got[0] == 3 * batch_size
    # KIP-74: the first batch comes back whole although larger than both limits
    assert sizes(10, 10) == [batch_size, 0, 0]


def test_fetch_session_id_is_not_found(client: RawClient) -> None:
    create(client, "sess")
    resp = client.request(fetch_request([("sess", 0, 0, 1 << 20)], session_id=1234, session_epoch=1), 12)
    assert resp.error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
    full = client.request(fetch_request([("sess", 0, 0, 1 << 20)], session_id=0, session_epoch=0), 12)
    assert (full.error_code, full.session_id) == (ErrorCode.NONE, 0)


def test_fetch_by_topic_id_and_unknown_topic_id(client: RawClient) -> None:
    made = create(client, "ids")
    produce(client, "ids", make_batch([b"by-id"]))
    for version in (13, 16, 17):
        resp = client.request(fetch_request([("", 0, 0, 1 << 20)], topic_ids={"": made.topic_id}), version)
        part = resp.responses[0].partitions[0]
        assert resp.responses[0].topic_id == made.topic_id
        assert (part.error_code, values_of(part.records)) == (ErrorCode.NONE, [b"by-id"]), version
        unknown = client.request(fetch_request([("", 0, 0, 1 << 20)], topic_ids={"": uuid.uuid4()}), version)
        assert unknown.responses[0].partitions[0].error_code == ErrorCode.UNKNOWN_TOPIC_ID, version


def test_fetch_isolation_levels_on_plain_data(client: RawClient) -> None:
    create(client, "iso")
    produce(client, "iso", make_batch([b"a", b"b"]))
    for level in (0, 1):
        part = client.request(fetch_request([("iso", 0, 0, 1 << 20)], isolation_level=level), 12).responses[0].partitions[0]
        assert (part.error_code, part.high_watermark, part.last_stable_offset) == (ErrorCode.NONE, 2, 2)
        assert values_of(part.records) == [b"a", b"b"]
        # read_committed gets the (empty) aborted transaction list, read_uncommitted none
        assert part.aborted_transactions == ([] if level else None)

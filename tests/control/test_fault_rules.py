"""One test per fault rule type (kbroker.control.faults): the effect a client sees on the
wire, and the rule's hit count.  In-process broker, raw Kafka requests over real TCP."""

from __future__ import annotations

import random
import socket
import time
import urllib.request
from pathlib import Path

import pytest
from broker_harness import RawClient
from control_harness import (
    add_rule,
    create,
    fetch,
    high_watermark,
    http,
    produce,
    produce_batch,
    rule_state,
)
from kbroker.wire.codec import decode
from kbroker.wire.errors import ErrorCode
from kbroker.wire.headers import RequestHeader, encode_request
from kbroker.wire.messages.add_partitions_to_txn_request import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnTopic,
)
from kbroker.wire.messages.api_versions_request import ApiVersionsRequest
from kbroker.wire.messages.api_versions_response import ApiVersionsResponse
from kbroker.wire.messages.init_producer_id_request import InitProducerIdRequest
from kbroker.wire.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from kbroker.wire.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from kbroker.wire.messages.offset_fetch_request import OffsetFetchRequest, OffsetFetchRequestTopic
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.records import make_batch

from kbroker.testing import BrokerThread

# How long a blackholed request is waited for before the test calls it unanswered.
SILENT_WAIT_S = 1.5


def _client(broker: BrokerThread) -> RawClient:
    return RawClient(broker.address)


def test_produce_error_count_fails_only_the_topic_and_stores_nothing(broker: BrokerThread) -> None:
    c = _client(broker)
    create(c, "t")
    create(c, "other")
    rule = add_rule(
        broker, {"api": "Produce", "error": "NOT_LEADER_OR_FOLLOWER", "count": 3, "topic": "t"}
    )
    for _ in range(3):
        assert produce(c, "t", {0: b"x"})[0].error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
        assert produce(c, "other", {0: b"y"})[0].error_code == ErrorCode.NONE
    assert high_watermark(c, "t") == 0  # nothing of the failed requests was appended
    assert rule_state(broker, rule)["hits"] == 3
    ok = produce(c, "t", {0: b"z"})[0]
    assert (ok.error_code, ok.base_offset) == (ErrorCode.NONE, 0)
    assert rule_state(broker, rule) | {"rule": None} == {
        "id": rule,
        "rule": None,
        "hits": 3,
        "remaining": 0,
    }
    assert (
        broker.broker is not None and not broker.broker.faults_active
    )  # used up: the hot path is clean again
    # the injected errors count in the errors metric, as the handler's own do
    assert broker.broker.http is not None
    with urllib.request.urlopen(
        f"http://127.0.0.1:{broker.broker.http.port}/metrics", timeout=10
    ) as resp:
        metrics = resp.read().decode()
    assert (
        'kafka_network_requestmetrics_errors_total{error="NOT_LEADER_OR_FOLLOWER",request="Produce"} 3.0'
        in metrics
    )
    c.close()


def test_produce_error_for_one_partition_appends_the_others(broker: BrokerThread) -> None:
    c = _client(broker)
    create(c, "t", partitions=2)
    rule = add_rule(
        broker,
        {
            "api": "Produce",
            "error": "KAFKA_STORAGE_ERROR",
            "partition": 1,
            "error_message": "disk on fire",
        },
    )
    answers = produce(c, "t", {0: b"a", 1: b"b"})
    assert answers[0].error_code == ErrorCode.NONE
    assert (answers[1].error_code, answers[1].base_offset, answers[1].error_message) == (
        ErrorCode.KAFKA_STORAGE_ERROR,
        -1,
        "disk on fire",
    )
    assert (high_watermark(c, "t", 0), high_watermark(c, "t", 1)) == (1, 0)
    assert rule_state(broker, rule)["hits"] == 1
    c.close()


def test_produce_by_topic_id_v13_is_matched_by_name(broker: BrokerThread) -> None:
    c = _client(broker)
    create(c, "t")
    meta = c.request(MetadataRequest(topics=[MetadataRequestTopic(name="t")]), 12)
    topic_id = meta.topics[0].topic_id
    rule = add_rule(
        broker, {"api": "Produce", "error": "NOT_LEADER_OR_FOLLOWER", "topic": "t", "count": 1}
    )
    req = ProduceRequest(
        acks=-1,
        timeout_ms=5000,
        topic_data=[
            TopicProduceData(
                topic_id=topic_id,
                partition_data=[PartitionProduceData(index=0, records=bytes(make_batch([b"v"])))],
            )
        ],
    )
    resp = c.request(req, 13)
    assert resp.responses[0].topic_id == topic_id
    assert resp.responses[0].partition_responses[0].error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert rule_state(broker, rule)["hits"] == 1
    c.close()


def test_fetch_error_goes_to_the_matching_partition(broker: BrokerThread) -> None:
    c = _client(broker)
    create(c, "t", partitions=2)
    produce(c, "t", {0: b"a", 1: b"b"})
    rule = add_rule(
        broker, {"api": "Fetch", "error": "NOT_LEADER_OR_FOLLOWER", "topic": "t", "partition": 0}
    )
    parts = fetch(c, "t", [0, 1])
    assert (parts[0].error_code, parts[0].high_watermark, parts[0].records) == (
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        -1,
        None,
    )
    assert (parts[1].error_code, parts[1].high_watermark) == (ErrorCode.NONE, 1)
    assert rule_state(broker, rule)["hits"] == 1
    c.close()


def test_fetch_delay(broker: BrokerThread) -> None:
    c = _client(broker)
    create(c, "t")
    rule = add_rule(broker, {"api": "Fetch", "delay_ms": 1200})
    started = time.monotonic()
    assert fetch(c, "t", [0])[0].error_code == ErrorCode.NONE
    assert time.monotonic() - started >= 1.2  # a lower bound only: the rule waited
    assert rule_state(broker, rule)["hits"] == 1
    c.close()


def test_metadata_error_goes_to_the_topic(broker: BrokerThread) -> None:
    c = _client(broker)
    create(c, "t")
    create(c, "u")
    rule = add_rule(broker, {"api": "Metadata", "error": "LEADER_NOT_AVAILABLE", "topic": "t"})
    meta = c.request(
        MetadataRequest(topics=[MetadataRequestTopic(name="t"), MetadataRequestTopic(name="u")]), 12
    )
    errors = {t.name: t.error_code for t in meta.topics}
    assert errors == {"t": ErrorCode.LEADER_NOT_AVAILABLE, "u": ErrorCode.NONE}
    everything = c.request(MetadataRequest(topics=None), 12)  # all topics: the rule sees "t" too
    assert {t.name: t.error_code for t in everything.topics} == errors
    assert (
        c.request(MetadataRequest(topics=[MetadataRequestTopic(name="u")]), 12).topics[0].error_code
        == ErrorCode.NONE
    )
    assert rule_state(broker, rule)["hits"] == 2
    c.close()


def test_request_wide_error_skips_the_handler(broker: BrokerThread) -> None:
    c = _client(broker)
    rule = add_rule(
        broker, {"api": "InitProducerId", "error": "CLUSTER_AUTHORIZATION_FAILED", "count": 1}
    )
    failed = c.request(
        InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000), 4
    )
    assert (failed.error_code, failed.producer_id) == (ErrorCode.CLUSTER_AUTHORIZATION_FAILED, -1)
    ok = c.request(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000), 4)
    assert ok.error_code == ErrorCode.NONE and ok.producer_id >= 0
    assert rule_state(broker, rule)["hits"] == 1
    c.close()


def test_offset_commit_error_does_not_commit(broker: BrokerThread) -> None:
    c = _client(broker)
    create(c, "t", partitions=2)
    rule = add_rule(
        broker, {"api": "OffsetCommit", "error": "COORDINATOR_LOAD_IN_PROGRESS", "partition": 1}
    )
    topic = OffsetCommitRequestTopic(
        name="t",
        partitions=[
            OffsetCommitRequestPartition(partition_index=p, committed_offset=5) for p in (0, 1)
        ],
    )
    resp = c.request(
        OffsetCommitRequest(
            group_id="g", generation_id_or_member_epoch=-1, member_id="", topics=[topic]
        ),
        8,
    )
    assert {p.partition_index: p.error_code for p in resp.topics[0].partitions} == {
        0: ErrorCode.NONE,
        1: ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
    }
    fetched = c.request(
        OffsetFetchRequest(
            group_id="g", topics=[OffsetFetchRequestTopic(name="t", partition_indexes=[0, 1])]
        ),
        7,
    )
    assert {p.partition_index: p.committed_offset for p in fetched.topics[0].partitions} == {
        0: 5,
        1: -1,
    }
    assert rule_state(broker, rule)["hits"] == 1
    c.close()


def test_after_append_stores_then_fails_and_the_retry_is_a_duplicate(broker: BrokerThread) -> None:
    c = _client(broker)
    create(c, "t")
    rule = add_rule(
        broker,
        {
            "api": "Produce",
            "error": "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
            "after_append": True,
            "every": 2,
        },
    )
    pid = c.request(
        InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000), 4
    ).producer_id

    def send(seq: int) -> tuple[int, int]:
        batch = make_batch([b"v%d" % seq], producer_id=pid, producer_epoch=0, base_sequence=seq)
        p = produce_batch(c, "t", batch)
        return p.error_code, p.base_offset

    assert send(0) == (ErrorCode.NONE, 0)
    assert send(1)[0] == ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND  # stored, answered as failed
    assert high_watermark(c, "t") == 2
    assert send(1) == (ErrorCode.NONE, 1)  # the retry: a duplicate, not a third record
    assert high_watermark(c, "t") == 2
    assert rule_state(broker, rule)["hits"] == 1
    c.close()


def test_close_connection(broker: BrokerThread) -> None:
    rule = add_rule(broker, {"api": "ApiVersions", "close_connection": True, "count": 1})
    c = _client(broker)
    c.send_raw(
        encode_request(
            RequestHeader(
                request_api_key=18, request_api_version=3, correlation_id=1, client_id="x"
            ),
            ApiVersionsRequest(),
        )
    )
    assert c.recv_frame() is None  # closed without an answer
    c.close()
    again = _client(broker)
    assert again.request(ApiVersionsRequest(), 3).error_code == ErrorCode.NONE
    again.close()
    assert rule_state(broker, rule)["hits"] == 1


def test_probability_with_a_seed_is_repeatable(broker: BrokerThread) -> None:
    rule = add_rule(broker, {"api": "*", "close_connection": True, "probability": 0.5, "seed": 7})
    closed = []
    for _ in range(20):
        c = _client(broker)
        c.send_raw(
            encode_request(
                RequestHeader(
                    request_api_key=18, request_api_version=3, correlation_id=1, client_id="x"
                ),
                ApiVersionsRequest(),
            )
        )
        closed.append(c.recv_frame() is None)
        c.close()
    rng = random.Random(7)
    assert closed == [rng.random() < 0.5 for _ in range(20)]
    assert 0 < sum(closed) < 20
    assert rule_state(broker, rule)["hits"] == sum(closed)


def test_blackhole_node_accepts_and_never_answers(broker: BrokerThread) -> None:
    assert broker.broker is not None
    other = add_rule(broker, {"node": broker.broker.node_id + 1, "blackhole": True})
    rule = add_rule(broker, {"node": broker.broker.node_id, "blackhole": True})
    c = _client(broker)
    c.sock.settimeout(SILENT_WAIT_S)
    c.send_raw(
        encode_request(
            RequestHeader(
                request_api_key=18, request_api_version=3, correlation_id=1, client_id="x"
            ),
            ApiVersionsRequest(),
        )
    )
    with pytest.raises(socket.timeout):
        c.sock.recv(1)  # no answer, and no end of stream either
    assert rule_state(broker, rule)["hits"] == 1
    assert rule_state(broker, other)["hits"] == 0
    http(broker, "DELETE", f"/faults/{rule}")
    c.send_raw(
        encode_request(
            RequestHeader(
                request_api_key=18, request_api_version=3, correlation_id=2, client_id="x"
            ),
            ApiVersionsRequest(),
        )
    )
    with pytest.raises(socket.timeout):
        c.sock.recv(1)  # the blackholed connection stays silent
    c.close()
    fresh = _client(broker)
    assert fresh.request(ApiVersionsRequest(), 3).error_code == ErrorCode.NONE
    fresh.close()


def test_throttle_time(broker: BrokerThread) -> None:
    c = _client(broker)
    rule = add_rule(broker, {"api": "Metadata", "throttle_time_ms": 1234})
    assert c.request(MetadataRequest(topics=[]), 12).throttle_time_ms == 1234
    assert c.request(ApiVersionsRequest(), 3).throttle_time_ms == 0
    assert rule_state(broker, rule)["hits"] == 1
    c.close()


def test_after_skips_the_first_matches(broker: BrokerThread) -> None:
    c = _client(broker)
    rule = add_rule(broker, {"api": 3, "throttle_time_ms": 7, "after": 2, "count": 1})
    assert [c.request(MetadataRequest(topics=[]), 12).throttle_time_ms for _ in range(4)] == [
        0,
        0,
        7,
        0,
    ]
    assert rule_state(broker, rule) | {"rule": None} == {
        "id": rule,
        "rule": None,
        "hits": 1,
        "remaining": 0,
    }
    c.close()


def test_client_id_matcher(broker: BrokerThread) -> None:
    rule = add_rule(broker, {"api": "ApiVersions", "client_id": "victim", "throttle_time_ms": 9})

    def ask(client_id: str) -> int:
        c = _client(broker)
        c.send_raw(
            encode_request(
                RequestHeader(
                    request_api_key=18, request_api_version=3, correlation_id=1, client_id=client_id
                ),
                ApiVersionsRequest(),
            )
        )
        frame = c.recv_frame()
        c.close()
        assert frame is not None
        return decode(ApiVersionsResponse, 3, memoryview(frame)[4:]).throttle_time_ms

    assert (ask("bystander"), ask("victim")) == (0, 9)
    assert rule_state(broker, rule)["hits"] == 1


def test_old_config_is_an_after_append_rule(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data", {"kbroker.test.fail.produce.after.append.every": "3"})
    bt.start()
    try:
        [rule] = bt.faults()
        assert rule["rule"] == {
            "api": "Produce",
            "error": "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
            "after_append": True,
            "every": 3,
        }
        c = _client(bt)
        create(c, "t")
        codes = [produce(c, "t", {0: b"x"})[0].error_code for _ in range(6)]
        assert codes == [0, 0, 20, 0, 0, 20]
        assert high_watermark(c, "t") == 6
        assert bt.faults()[0]["hits"] == 2
        c.close()
    finally:
        bt.close()


def test_add_partitions_to_txn_v3_error_goes_to_the_partition(broker: BrokerThread) -> None:
    c = _client(broker)
    create(c, "t")
    pid = c.request(InitProducerIdRequest(transactional_id="tx", transaction_timeout_ms=60000), 4)
    assert pid.error_code == ErrorCode.NONE
    rule = add_rule(
        broker,
        {"api": "AddPartitionsToTxn", "error": "CONCURRENT_TRANSACTIONS", "topic": "t", "count": 1},
    )
    req = AddPartitionsToTxnRequest(
        v3_and_below_transactional_id="tx", v3_and_below_producer_id=pid.producer_id,
        v3_and_below_producer_epoch=pid.producer_epoch, v3_and_below_topics=[AddPartitionsToTxnTopic(name="t", partitions=[0])],
    )  # fmt: skip

    def answer() -> int:
        code: int = (
            c.request(req, 3)
            .results_by_topic_v3_and_below[0]
            .results_by_partition[0]
            .partition_error_code
        )
        return code

    assert answer() == ErrorCode.CONCURRENT_TRANSACTIONS  # the retriable error a client retries
    assert answer() == ErrorCode.NONE
    assert rule_state(broker, rule)["hits"] == 1
    # Without a topic the rule fails the whole request: v0-3 have no request-wide error
    # code, so the error still goes to every partition.
    whole = add_rule(
        broker, {"api": "AddPartitionsToTxn", "error": "COORDINATOR_LOAD_IN_PROGRESS", "count": 1}
    )
    assert answer() == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    assert rule_state(broker, whole)["hits"] == 1
    c.close()

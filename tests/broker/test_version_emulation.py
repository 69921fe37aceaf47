"""Version emulation (kbroker.emulate.version) over the raw protocol: ApiVersions advertises
the release's ranges narrowed to what kbroker serves, other keys and versions are refused as
that release refused them, features are the release's, and the behaviour that no version
number gates follows the release.  Also the versions kbroker serves beyond Kafka 4.0's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker_harness import RawClient
from kbroker.wire.api import ApiKey
from kbroker.wire.codec import decode
from kbroker.wire.errors import ErrorCode
from kbroker.wire.headers import RequestHeader, decode_response_header, encode_request
from kbroker.wire.messages.add_partitions_to_txn_request import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnTopic,
    AddPartitionsToTxnTransaction,
)
from kbroker.wire.messages.api_versions_request import ApiVersionsRequest
from kbroker.wire.messages.api_versions_response import ApiVersionsResponse
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from kbroker.wire.messages.describe_topic_partitions_request import (
    DescribeTopicPartitionsRequest,
    TopicRequest,
)
from kbroker.wire.messages.end_txn_request import EndTxnRequest
from kbroker.wire.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from kbroker.wire.messages.find_coordinator_request import FindCoordinatorRequest
from kbroker.wire.messages.init_producer_id_request import InitProducerIdRequest
from kbroker.wire.messages.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from kbroker.wire.messages.list_transactions_request import ListTransactionsRequest
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.records import build_record_batch, make_batch

from kbroker.config import ConfigError, build_config
from kbroker.emulation import _capped_max, emulation_for
from kbroker.registry import API_TABLE, served_ranges
from kbroker.release_versions import API_RANGES, FINALIZED_FEATURES, NEWEST, RELEASES
from kbroker.testing import BrokerThread


def _start(tmp_path: Path, release: str | None) -> BrokerThread:
    bt = BrokerThread(tmp_path / "data", {"kbroker.emulate.version": release} if release else None)
    bt.start()
    return bt


@pytest.fixture
def emulated(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RawClient]:
    bt = _start(tmp_path, request.param)
    c = RawClient(bt.address)
    try:
        yield c
    finally:
        c.close()
        bt.close()


def _ranges(c: RawClient, version: int = 3) -> dict[int, tuple[int, int]]:
    resp = c.request(ApiVersionsRequest(client_software_name="raw", client_software_version="1"), version)
    assert resp.error_code == ErrorCode.NONE
    return {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}


def _create(c: RawClient, name: str, partitions: int = 1) -> None:
    topic = CreatableTopic(name=name, num_partitions=partitions, replication_factor=-1)
    assert c.request(CreateTopicsRequest(topics=[topic], timeout_ms=5000), 5).topics[0].error_code == ErrorCode.NONE


# -- the table -----------------------------------------------------------------------------


@pytest.mark.parametrize("release", RELEASES)
def test_each_release_advertises_its_ranges_narrowed_to_what_kbroker_serves(release: str) -> None:
    ranges = emulation_for(release).api_ranges
    theirs = API_RANGES[release]
    for key, (lo, hi) in ranges.items():
        assert key in theirs, (release, key)
        ours = API_TABLE[key][1:]
        assert (lo, hi) == (max(ours[0], theirs[key][0]), min(ours[1], theirs[key][1])), (release, key)
    # a key both have is left out only when the ranges do not meet
    for key in set(theirs) & set(API_TABLE):
        if key not in ranges:
            assert theirs[key][1] < API_TABLE[key][1] or theirs[key][0] > API_TABLE[key][2], (release, key)


def test_the_default_is_the_newest_release_and_serves_the_whole_table() -> None:
    assert emulation_for(None).release == NEWEST
    newest = API_RANGES[NEWEST]
    # KIP-714's APIs only with a telemetry receiver, as a Kafka broker advertises them
    telemetry = {ApiKey.GET_TELEMETRY_SUBSCRIPTIONS, ApiKey.PUSH_TELEMETRY}
    whole = served_ranges(None)
    assert emulation_for(None).api_ranges == {k: r for k, r in whole.items() if k not in telemetry}
    assert emulation_for(None, client_telemetry=True).api_ranges == whole
    for key, (_module, lo, hi) in API_TABLE.items():
        if key not in telemetry:
            assert newest[key][0] <= lo and hi <= newest[key][1], key


def test_telemetry_apis_are_advertised_with_a_receiver_from_3_7_on() -> None:
    for release in RELEASES:
        ranges = emulation_for(release, client_telemetry=True).api_ranges
        has = tuple(map(int, release.split("."))) >= (3, 7)
        assert (ranges.get(ApiKey.GET_TELEMETRY_SUBSCRIPTIONS), ranges.get(ApiKey.PUSH_TELEMETRY)) == (((0, 0), (0, 0)) if has else (None, None)), release
        assert ApiKey.PUSH_TELEMETRY not in emulation_for(release).api_ranges
    # the KIP-890 part 1 and 2 and topic-id versions Kafka 4.1 serves
    for key, hi in (
        (ApiKey.PRODUCE, 13),
        (ApiKey.FETCH, 18),
        (ApiKey.ADD_PARTITIONS_TO_TXN, 5),
        (ApiKey.TXN_OFFSET_COMMIT, 5),
        (ApiKey.INIT_PRODUCER_ID, 5),
        (ApiKey.END_TXN, 5),
    ):
        assert API_TABLE[key][2] == hi, key


def test_features_are_capped_to_the_levels_kbroker_implements() -> None:
    e = emulation_for("4.1")
    # EndTxn v5 (epoch bump per transaction, KIP-890 part 2) is served: transaction.version 2
    assert e.api_ranges[ApiKey.END_TXN] == (0, 5)
    assert FINALIZED_FEATURES["4.1"]["transaction.version"] == 2
    assert e.finalized_features["transaction.version"] == 2
    assert e.supported_features["transaction.version"] == (0, 2)
    # the KIP-890 part 2 cap still holds: a registry without EndTxn v5 offers TV_1 at most
    no_v5 = {**e.api_ranges, ApiKey.END_TXN: (0, 4)}
    assert _capped_max("transaction.version", 2, no_v5) == 1
    # no ConsumerGroupHeartbeat yet: group.version stays 0 (KIP-848 not offered)
    if ApiKey.CONSUMER_GROUP_HEARTBEAT not in API_TABLE:
        assert "group.version" not in e.finalized_features
        assert e.supported_features["group.version"] == (0, 0)
    assert e.finalized_features["metadata.version"] == 27
    assert e.supported_features["metadata.version"] == (7, 27)
    assert emulation_for("3.6").finalized_features == {} and emulation_for("3.6").supported_features == {}


def test_an_unknown_release_is_refused_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kbroker.emulate.version"):
        build_config(data_dir=str(tmp_path), overrides=["kbroker.emulate.version=2.0"], environ={})
    with pytest.raises(ValueError, match="unknown Kafka release"):
        emulation_for("1.1")


# -- over the wire ---------------------------------------------------------------------------


@pytest.mark.parametrize("emulated", ["2.1"], indirect=True)
def test_2_1_answers_api_versions_v3_unsupported_with_its_ranges(emulated: RawClient) -> None:
    # the answer to an unsupported ApiVersions version is a v0 body (KIP-511)
    header = RequestHeader(request_api_key=ApiKey.API_VERSIONS, request_api_version=3, correlation_id=5, client_id="raw")
    emulated.send_raw(encode_request(header, ApiVersionsRequest()))
    frame = emulated.recv_frame()
    assert frame is not None
    _header, offset = decode_response_header(frame, ApiKey.API_VERSIONS, 0)
    resp = decode(ApiVersionsResponse, 0, memoryview(frame)[offset:])
    assert resp.error_code == ErrorCode.UNSUPPORTED_VERSION
    got = {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}
    assert got == emulation_for("2.1").api_ranges
    assert got[ApiKey.API_VERSIONS] == (0, 2)
    assert got[ApiKey.FETCH] == (4, 10)  # Fetch v0-3 (message format v0/v1) are not served
    assert got[ApiKey.PRODUCE] == (0, 7)
    assert _ranges(emulated, 2) == got


@pytest.mark.parametrize("emulated", ["2.8"], indirect=True)
def test_2_8_refuses_later_versions_and_keys_by_closing(emulated: RawClient, tmp_path: Path) -> None:
    got = _ranges(emulated)
    assert got[ApiKey.METADATA] == (0, 11) and got[ApiKey.FETCH] == (4, 12)
    assert ApiKey.DESCRIBE_TOPIC_PARTITIONS not in got
    # Fetch v13 (topic ids in fetches) came in 3.1: 2.8 closes the connection
    fetch = FetchRequest(max_wait_ms=0, min_bytes=1, topics=[FetchTopic(topic_id=uuid.uuid4(), partitions=[FetchPartition(partition=0)])])
    emulated.request(fetch, 13, expect_response=False)
    assert emulated.recv_frame() is None


@pytest.mark.parametrize("emulated", ["3.6"], indirect=True)
def test_3_6_does_not_know_describe_topic_partitions(emulated: RawClient) -> None:
    got = _ranges(emulated)
    assert got[ApiKey.ADD_PARTITIONS_TO_TXN] == (0, 4)  # kafka-python's mark of 3.6
    assert got[ApiKey.PRODUCE] == (0, 9) and got[ApiKey.END_TXN] == (0, 3)
    emulated.request(DescribeTopicPartitionsRequest(topics=[TopicRequest(name="t")], response_partition_limit=10), 0, expect_response=False)
    assert emulated.recv_frame() is None


@pytest.mark.parametrize("emulated", ["3.6"], indirect=True)
def test_features_before_kraft_default_are_empty(emulated: RawClient) -> None:
    resp = emulated.request(ApiVersionsRequest(client_software_name="raw", client_software_version="1"), 3)
    assert resp.supported_features == [] and resp.finalized_features == []
    assert resp.finalized_features_epoch == -1


@pytest.mark.parametrize("emulated", ["4.1"], indirect=True)
def test_4_1_reports_its_features_and_hides_min_zero_ones_below_v4(emulated: RawClient) -> None:
    v4 = emulated.request(ApiVersionsRequest(client_software_name="raw", client_software_version="1"), 4)
    supported = {f.name: (f.min_version, f.max_version) for f in v4.supported_features}
    assert supported == emulation_for("4.1").supported_features
    assert supported["metadata.version"] == (7, 27) and supported["kraft.version"] == (0, 1)
    finalized = {f.name: (f.min_version_level, f.max_version_level) for f in v4.finalized_features}
    assert finalized["metadata.version"] == (27, 27)
    assert v4.finalized_features_epoch >= 0
    v3 = emulated.request(ApiVersionsRequest(client_software_name="raw", client_software_version="1"), 3)
    assert [f.name for f in v3.supported_features] == ["metadata.version"]  # KAFKA-17492
    assert {k.api_key: (k.min_version, k.max_version) for k in v3.api_keys}[ApiKey.PRODUCE] == (0, 13)


def _transactional_produce_to_an_unadded_partition(c: RawClient) -> int:
    _create(c, "t")
    assert c.request(FindCoordinatorRequest(key="tx", key_type=1), 3).error_code == ErrorCode.NONE
    pid = c.request(InitProducerIdRequest(transactional_id="tx", transaction_timeout_ms=60000), 3)
    assert pid.error_code == ErrorCode.NONE
    batch = build_record_batch(
        [(b"k", b"v", [], 1)], producer_id=pid.producer_id, producer_epoch=pid.producer_epoch, base_sequence=0, is_transactional=True
    )
    req = ProduceRequest(
        transactional_id="tx",
        acks=-1,
        timeout_ms=5000,
        topic_data=[TopicProduceData(name="t", partition_data=[PartitionProduceData(index=0, records=bytes(batch))])],
    )
    code: int = c.request(req, 8).responses[0].partition_responses[0].error_code
    return code


@pytest.mark.parametrize("emulated", ["3.5"], indirect=True)
def test_before_3_6_a_transactional_produce_is_not_verified(emulated: RawClient) -> None:
    assert _transactional_produce_to_an_unadded_partition(emulated) == ErrorCode.NONE


@pytest.mark.parametrize("emulated", ["3.6"], indirect=True)
def test_from_3_6_a_transactional_produce_is_verified(emulated: RawClient) -> None:
    assert _transactional_produce_to_an_unadded_partition(emulated) == ErrorCode.INVALID_TXN_STATE


# -- versions beyond Kafka 4.0's (the default, newest release) -----------------------------------


@pytest.mark.parametrize("emulated", [None], indirect=True)
def test_produce_v13_names_topics_by_id(emulated: RawClient) -> None:
    _create(emulated, "ids", 2)
    from kbroker.wire.messages.metadata_request import MetadataRequest, MetadataRequestTopic

    topic_id = emulated.request(MetadataRequest(topics=[MetadataRequestTopic(name="ids")]), 12).topics[0].topic_id
    stranger = uuid.uuid4()
    req = ProduceRequest(
        acks=-1,
        timeout_ms=5000,
        topic_data=[
            TopicProduceData(topic_id=topic_id, partition_data=[PartitionProduceData(index=1, records=bytes(make_batch([b"a", b"b"])))]),
            TopicProduceData(topic_id=stranger, partition_data=[PartitionProduceData(index=0, records=bytes(make_batch([b"c"])))]),
        ],
    )
    resp = emulated.request(req, 13)
    answers = {t.topic_id: [(p.index, p.error_code, p.base_offset) for p in t.partition_responses] for t in resp.responses}
    assert answers == {topic_id: [(1, ErrorCode.NONE, 0)], stranger: [(0, ErrorCode.UNKNOWN_TOPIC_ID, -1)]}
    # and Fetch v18 reads it back by id
    fetch = FetchRequest(
        max_wait_ms=0, min_bytes=1, topics=[FetchTopic(topic_id=topic_id, partitions=[FetchPartition(partition=1, partition_max_bytes=1 << 20)])]
    )
    part = emulated.request(fetch, 18).responses[0].partitions[0]
    assert part.error_code == ErrorCode.NONE and part.high_watermark == 2


@pytest.mark.parametrize("emulated", [None], indirect=True)
def test_list_offsets_v11_earliest_pending_upload_has_no_offset(emulated: RawClient) -> None:
    _create(emulated, "lo")
    produced = ProduceRequest(
        acks=-1, timeout_ms=5000, topic_data=[TopicProduceData(name="lo", partition_data=[PartitionProduceData(index=0, records=bytes(make_batch([b"x"])))])]
    )
    assert emulated.request(produced, 9).responses[0].partition_responses[0].error_code == ErrorCode.NONE
    for ts in (-5, -6):
        req = ListOffsetsRequest(replica_id=-1, topics=[ListOffsetsTopic(name="lo", partitions=[ListOffsetsPartition(partition_index=0, timestamp=ts)])])
        p = emulated.request(req, 11).topics[0].partitions[0]
        assert (p.error_code, p.offset, p.timestamp, p.leader_epoch) == (ErrorCode.NONE, -1, -1, -1), ts
    latest = ListOffsetsRequest(replica_id=-1, topics=[ListOffsetsTopic(name="lo", partitions=[ListOffsetsPartition(partition_index=0, timestamp=-1)])])
    assert emulated.request(latest, 11).topics[0].partitions[0].offset == 1


@pytest.mark.parametrize("emulated", [None], indirect=True)
def test_add_partitions_to_txn_v4_batches_and_verifies(emulated: RawClient) -> None:
    _create(emulated, "b", 2)
    assert emulated.request(FindCoordinatorRequest(key="tx", key_type=1), 3).error_code == ErrorCode.NONE
    pid = emulated.request(InitProducerIdRequest(transactional_id="tx", transaction_timeout_ms=60000), 5)

    def txn(verify_only: bool, partitions: list[int]) -> AddPartitionsToTxnRequest:
        t = AddPartitionsToTxnTransaction(
            transactional_id="tx",
            producer_id=pid.producer_id,
            producer_epoch=pid.producer_epoch,
            verify_only=verify_only,
            topics=[AddPartitionsToTxnTopic(name="b", partitions=partitions)],
        )
        return AddPartitionsToTxnRequest(transactions=[t])

    def codes(resp) -> dict[int, int]:  # type: ignore[no-untyped-def]
        [result] = resp.results_by_transaction
        return {p.partition_index: p.partition_error_code for t in result.topic_results for p in t.results_by_partition}

    for version in (4, 5):
        assert codes(emulated.request(txn(True, [0]), version)) == {0: ErrorCode.INVALID_TXN_STATE}, version
    assert codes(emulated.request(txn(False, [0]), 5)) == {0: ErrorCode.NONE}
    assert codes(emulated.request(txn(True, [0, 1]), 4)) == {0: ErrorCode.NONE, 1: ErrorCode.INVALID_TXN_STATE}
    listed = emulated.request(ListTransactionsRequest(transactional_id_pattern="t.", duration_filter=-1), 2)
    assert [t.transactional_id for t in listed.transaction_states] == ["tx"]
    listed = emulated.request(ListTransactionsRequest(transactional_id_pattern="t", duration_filter=-1), 2)
    assert listed.transaction_states == []


@pytest.mark.parametrize("emulated", [None], indirect=True)
def test_produce_v0_to_2_are_advertised_and_refused(emulated: RawClient) -> None:
    assert _ranges(emulated)[ApiKey.PRODUCE] == (0, 13)
    # v0-2 have no schema in Kafka 4's specs: the header alone (v1) is enough to be refused
    header = RequestHeader(request_api_key=ApiKey.PRODUCE, request_api_version=2, correlation_id=7, client_id="raw")
    frame = encode_request(header, ProduceRequest(acks=1, timeout_ms=1000, topic_data=[]))
    emulated.send_raw(frame)
    answer = emulated.recv_frame()
    assert answer is not None and int.from_bytes(answer[:4], "big") == 7


# kafka-python tells releases apart by one API's max version each; these releases' marks are
# keys kbroker does not serve, so it reads them as the release before.
KAFKA_PYTHON_MARK_NOT_SERVED = {"3.4": 4}  # 4: LeaderAndIsr (inter-broker, gone in Kafka 4)


@pytest.mark.parametrize("release", RELEASES)
def test_kafka_python_infers_each_emulated_release(release: str) -> None:
    broker_version_data = pytest.importorskip("kafka.protocol.broker_version_data")
    inferred = broker_version_data.infer_broker_version_from_api_versions(emulation_for(release).api_ranges)
    got = ".".join(str(part) for part in inferred[:2])
    mark = KAFKA_PYTHON_MARK_NOT_SERVED.get(release)
    if mark is None:
        assert got == release
    else:
        assert mark not in API_TABLE, f"{mark!r} is served now: kafka-python should read {release}"
        assert tuple(map(int, got.split("."))) < tuple(map(int, release.split(".")))


@pytest.mark.parametrize("emulated", [None], indirect=True)
def test_the_default_finalizes_transaction_version_2_and_serves_end_txn_v5(emulated: RawClient) -> None:
    # Kafka 4.2 finalizes transaction.version 2, whose clients (the Java producer from 4.0)
    # skip AddPartitionsToTxn and expect EndTxn v5's epoch bump; kbroker serves both.
    assert FINALIZED_FEATURES[NEWEST]["transaction.version"] == 2
    v4 = emulated.request(ApiVersionsRequest(client_software_name="raw", client_software_version="1"), 4)
    ranges = {k.api_key: (k.min_version, k.max_version) for k in v4.api_keys}
    supported = {f.name: (f.min_version, f.max_version) for f in v4.supported_features}
    finalized = {f.name: f.max_version_level for f in v4.finalized_features}
    assert ranges[ApiKey.END_TXN] == (0, 5)
    assert supported["transaction.version"] == (0, 2) and finalized["transaction.version"] == 2
    answer = emulated.request(EndTxnRequest(transactional_id="t", producer_id=1, producer_epoch=0, committed=True), 5)
    assert answer.error_code == ErrorCode.INVALID_PRODUCER_ID_MAPPING  # answered, not refused


@pytest.mark.parametrize("emulated", ["3.9"], indirect=True)
def test_an_emulated_3_x_keeps_transaction_version_0_and_refuses_end_txn_v5(emulated: RawClient) -> None:
    v3 = emulated.request(ApiVersionsRequest(client_software_name="raw", client_software_version="1"), 3)
    ranges = {k.api_key: (k.min_version, k.max_version) for k in v3.api_keys}
    assert ranges[ApiKey.END_TXN] == (0, 4) and ranges[ApiKey.PRODUCE][1] == 11
    assert not v3.finalized_features and not v3.supported_features  # ZooKeeper-mode 3.9
    header = RequestHeader(request_api_key=ApiKey.END_TXN, request_api_version=5, correlation_id=9, client_id="raw")
    emulated.send_raw(encode_request(header, EndTxnRequest(transactional_id="t", producer_id=1, producer_epoch=0, committed=True)))
    assert emulated.recv_frame() is None

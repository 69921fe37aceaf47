"""DescribeClientQuotas (48) / AlterClientQuotas (49) over the raw protocol, every version,
and the throttling they configure (throttle_time_ms, the muted connection, KIP-219)."""

from __future__ import annotations

import select
import time
from typing import Any

import pytest
from broker_harness import RawClient
from kbroker.wire.codec import decode
from kbroker.wire.errors import ErrorCode
from kbroker.wire.headers import RequestHeader, decode_response_header, encode_request
from kbroker.wire.messages import RESPONSES
from kbroker.wire.messages.alter_client_quotas_request import (
    AlterClientQuotasRequest,
    EntityData,
    EntryData,
    OpData,
)
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from kbroker.wire.messages.describe_client_quotas_request import (
    ComponentData,
    DescribeClientQuotasRequest,
)
from kbroker.wire.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from kbroker.wire.messages.metadata_request import MetadataRequest
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.records import make_batch

from kbroker.testing import BrokerThread

VERSIONS = [0, 1]
EXACT, DEFAULT, SPECIFIED = 0, 1, 2
Entity = dict[str, str | None]


def alter(
    c: RawClient,
    version: int,
    *entries: tuple[Entity, dict[str, float | None]],
    validate_only: bool = False,
) -> list[tuple[Entity, int]]:
    req = AlterClientQuotasRequest(
        entries=[
            EntryData(
                entity=[EntityData(entity_type=k, entity_name=n) for k, n in entity.items()],
                ops=[
                    OpData(key=key, value=0.0 if v is None else v, remove=v is None)
                    for key, v in ops.items()
                ],
            )
            for entity, ops in entries
        ],
        validate_only=validate_only,
    )
    resp = c.request(req, version)
    assert resp.throttle_time_ms == 0
    return [({e.entity_type: e.entity_name for e in r.entity}, r.error_code) for r in resp.entries]


def describe(
    c: RawClient, version: int, *components: tuple[str, int, str | None], strict: bool = False
) -> Any:
    req = DescribeClientQuotasRequest(
        components=[ComponentData(entity_type=k, match_type=m, match=n) for k, m, n in components],
        strict=strict,
    )
    return c.request(req, version)


def described(
    c: RawClient, version: int, *components: tuple[str, int, str | None], strict: bool = False
) -> dict[tuple, dict[str, float]]:
    resp = describe(c, version, *components, strict=strict)
    assert resp.error_code == ErrorCode.NONE and resp.error_message is None, resp
    return {
        tuple(sorted((e.entity_type, e.entity_name) for e in entry.entity)): {
            v.key: v.value for v in entry.values
        }
        for entry in resp.entries
    }


SEEDED: list[tuple[Entity, dict[str, float | None]]] = [
    ({"user": "alice"}, {"producer_byte_rate": 1024.0, "request_percentage": 50.5}),
    ({"user": None}, {"consumer_byte_rate": 2048.0}),
    ({"client-id": "app"}, {"producer_byte_rate": 4096.0}),
    ({"client-id": None}, {"producer_byte_rate": 8192.0}),
    ({"user": "alice", "client-id": "app"}, {"controller_mutation_rate": 3.5}),
    ({"user": None, "client-id": None}, {"consumer_byte_rate": 100.0}),
]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_entity_shape_is_set_and_described_with_the_filters(
    client: RawClient, version: int
) -> None:
    assert described(client, version) == {}
    results = alter(client, version, *SEEDED)
    assert [code for _, code in results] == [ErrorCode.NONE] * len(SEEDED)
    assert [entity for entity, _ in results] == [entity for entity, _ in SEEDED]
    everything = described(client, version)
    assert len(everything) == len(SEEDED)
    assert everything[(("user", "alice"),)] == {
        "producer_byte_rate": 1024.0,
        "request_percentage": 50.5,
    }
    assert everything[(("client-id", None), ("user", None))] == {"consumer_byte_rate": 100.0}
    # exact name; the default; any named or default entity of a type
    assert set(described(client, version, ("user", EXACT, "alice"))) == {
        (("user", "alice"),),
        (("client-id", "app"), ("user", "alice")),
    }
    assert set(described(client, version, ("user", EXACT, "alice"), strict=True)) == {
        (("user", "alice"),)
    }
    assert set(described(client, version, ("user", DEFAULT, None))) == {
        (("user", None),),
        (("client-id", None), ("user", None)),
    }
    assert set(described(client, version, ("client-id", SPECIFIED, None), strict=True)) == {
        (("client-id", "app"),),
        (("client-id", None),),
    }
    assert set(
        described(client, version, ("user", SPECIFIED, None), ("client-id", SPECIFIED, None))
    ) == {
        (("client-id", "app"), ("user", "alice")),
        (("client-id", None), ("user", None)),
    }
    assert described(client, version, ("user", EXACT, "bob")) == {}
    assert described(client, version, ("ip", SPECIFIED, None)) == {}


@pytest.mark.parametrize("version", VERSIONS)
def test_remove_validate_only_and_unchanged_values(client: RawClient, version: int) -> None:
    alice = {"user": "alice"}
    assert (
        alter(
            client, version, (alice, {"producer_byte_rate": 1000.0, "consumer_byte_rate": 2000.0})
        )[0][1]
        == ErrorCode.NONE
    )
    # validate_only answers as a real change would and changes nothing
    assert alter(client, version, (alice, {"producer_byte_rate": 5.0}), validate_only=True) == [
        (alice, ErrorCode.NONE)
    ]
    assert alter(client, version, (alice, {"producer_byte_rate": -5.0}), validate_only=True) == [
        (alice, ErrorCode.INVALID_REQUEST)
    ]
    assert described(client, version)[(("user", "alice"),)] == {
        "producer_byte_rate": 1000.0,
        "consumer_byte_rate": 2000.0,
    }
    # removing a key (its value ignored), and one that is not set
    assert alter(
        client, version, (alice, {"producer_byte_rate": None, "request_percentage": None})
    ) == [(alice, ErrorCode.NONE)]
    assert described(client, version)[(("user", "alice"),)] == {"consumer_byte_rate": 2000.0}
    # an unknown key may be "removed": Kafka does not check keys it removes
    assert alter(client, version, (alice, {"no_such_key": None})) == [(alice, ErrorCode.NONE)]
    # the last key removed: the entity is gone
    assert alter(client, version, (alice, {"consumer_byte_rate": None})) == [
        (alice, ErrorCode.NONE)
    ]
    assert described(client, version) == {}
    # removal under validate_only keeps the value
    alter(client, version, (alice, {"request_percentage": 12.5}))
    alter(client, version, (alice, {"request_percentage": None}), validate_only=True)
    assert described(client, version) == {(("user", "alice"),): {"request_percentage": 12.5}}


REFUSED_ALTERATIONS: list[tuple[str, Entity, dict[str, float | None], ErrorCode]] = [
    (
        "unknown entity type",
        {"group": "g"},
        {"producer_byte_rate": 1.0},
        ErrorCode.UNSUPPORTED_VERSION,
    ),
    ("empty entity", {}, {"producer_byte_rate": 1.0}, ErrorCode.INVALID_REQUEST),
    ("empty name", {"user": ""}, {"producer_byte_rate": 1.0}, ErrorCode.INVALID_REQUEST),
    (
        "ip with user",
        {"ip": "127.0.0.1", "user": "a"},
        {"connection_creation_rate": 1.0},
        ErrorCode.INVALID_REQUEST,
    ),
    (
        "not an ip",
        {"ip": "not an address"},
        {"connection_creation_rate": 1.0},
        ErrorCode.INVALID_REQUEST,
    ),
    ("unknown key", {"user": "a"}, {"no_such_quota": 1.0}, ErrorCode.INVALID_REQUEST),
    (
        "ip key on a user",
        {"user": "a"},
        {"connection_creation_rate": 1.0},
        ErrorCode.INVALID_REQUEST,
    ),
    (
        "user key on an ip",
        {"ip": "127.0.0.1"},
        {"producer_byte_rate": 1.0},
        ErrorCode.INVALID_REQUEST,
    ),
    ("zero", {"client-id": "c"}, {"producer_byte_rate": 0.0}, ErrorCode.INVALID_REQUEST),
    ("negative", {"client-id": "c"}, {"request_percentage": -1.0}, ErrorCode.INVALID_REQUEST),
    (
        "fraction of a LONG key",
        {"client-id": "c"},
        {"consumer_byte_rate": 10.5},
        ErrorCode.INVALID_REQUEST,
    ),
    (
        "beyond an INT key",
        {"ip": None},
        {"connection_creation_rate": 2.0**31},
        ErrorCode.INVALID_REQUEST,
    ),
    (
        "not a number",
        {"user": "a"},
        {"request_percentage": float("nan")},
        ErrorCode.INVALID_REQUEST,
    ),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("why", "entity", "ops", "code"), REFUSED_ALTERATIONS, ids=[r[0] for r in REFUSED_ALTERATIONS]
)
def test_refused_alterations_fail_their_entry_only(
    client: RawClient, version: int, why: str, entity: Entity, ops: dict, code: ErrorCode
) -> None:
    good = {"user": "fine"}
    results = alter(client, version, (entity, ops), (good, {"producer_byte_rate": 1.0}))
    assert results == [(entity, code), (good, ErrorCode.NONE)], why
    assert described(client, version) == {(("user", "fine"),): {"producer_byte_rate": 1.0}}


@pytest.mark.parametrize("version", VERSIONS)
def test_ip_entities_and_duplicates(client: RawClient, version: int) -> None:
    ip, default_ip = {"ip": "127.0.0.1"}, {"ip": None}
    assert alter(
        client,
        version,
        (ip, {"connection_creation_rate": 10.0}),
        (default_ip, {"connection_creation_rate": 20.0}),
    ) == [(ip, ErrorCode.NONE), (default_ip, ErrorCode.NONE)]
    assert set(described(client, version, ("ip", SPECIFIED, None))) == {
        (("ip", "127.0.0.1"),),
        (("ip", None),),
    }
    # a key twice for one entity fails that entity
    a = {"user": "a"}
    req = AlterClientQuotasRequest(
        entries=[
            EntryData(
                entity=[EntityData(entity_type="user", entity_name="a")],
                ops=[OpData(key="producer_byte_rate", value=1.0)] * 2,
            )
        ]
    )
    assert [r.error_code for r in client.request(req, version).entries] == [
        ErrorCode.INVALID_REQUEST
    ]
    assert described(client, version, ("user", EXACT, "a")) == {}
    # an entity twice: one answer, INVALID_REQUEST, and (as Kafka's controller) the first applied
    assert alter(
        client, version, (a, {"producer_byte_rate": 7.0}), (a, {"producer_byte_rate": 9.0})
    ) == [(a, ErrorCode.INVALID_REQUEST)]
    assert described(client, version, ("user", EXACT, "a")) == {
        (("user", "a"),): {"producer_byte_rate": 7.0}
    }


REFUSED_FILTERS: list[tuple[str, list[tuple[str, int, str | None]], ErrorCode]] = [
    ("empty entity type", [("", SPECIFIED, None)], ErrorCode.INVALID_REQUEST),
    ("type twice", [("user", EXACT, "a"), ("user", DEFAULT, None)], ErrorCode.INVALID_REQUEST),
    ("unknown entity type", [("group", SPECIFIED, None)], ErrorCode.UNSUPPORTED_VERSION),
    ("exact without a name", [("user", EXACT, None)], ErrorCode.INVALID_REQUEST),
    ("default with a name", [("user", DEFAULT, "a")], ErrorCode.INVALID_REQUEST),
    ("specified with a name", [("user", SPECIFIED, "a")], ErrorCode.INVALID_REQUEST),
    ("unknown match type", [("user", 3, None)], ErrorCode.UNSUPPORTED_VERSION),
    (
        "ip with client-id",
        [("ip", SPECIFIED, None), ("client-id", SPECIFIED, None)],
        ErrorCode.INVALID_REQUEST,
    ),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("why", "components", "code"), REFUSED_FILTERS, ids=[r[0] for r in REFUSED_FILTERS]
)
def test_refused_filters(
    client: RawClient, version: int, why: str, components: list, code: ErrorCode
) -> None:
    alter(client, version, ({"user": "a"}, {"producer_byte_rate": 1.0}))
    resp = describe(client, version, *components)
    assert resp.error_code == code, why
    assert resp.error_message and resp.entries is None


def test_quotas_survive_a_restart(broker_thread: BrokerThread) -> None:
    c = RawClient(broker_thread.address)
    alter(c, 1, *SEEDED)
    before = described(c, 1)
    c.close()
    broker_thread.restart()
    c = RawClient(broker_thread.address)
    try:
        assert described(c, 1) == before and len(before) == len(SEEDED)
    finally:
        c.close()


# -- throttling ------------------------------------------------------------------------------


def call(c: RawClient, msg: Any, version: int, client_id: str) -> Any:
    send(c, msg, version, client_id)
    return receive(c, msg, version)


def send(c: RawClient, msg: Any, version: int, client_id: str) -> None:
    c.correlation_id += 1
    header = RequestHeader(
        request_api_key=msg.API_KEY,
        request_api_version=version,
        correlation_id=c.correlation_id,
        client_id=client_id,
    )
    c.send_raw(encode_request(header, msg))


def receive(c: RawClient, msg: Any, version: int) -> Any:
    frame = c.recv_frame()
    assert frame is not None, "broker closed the connection"
    header, offset = decode_response_header(frame, msg.API_KEY, version)
    assert header.correlation_id == c.correlation_id
    return decode(RESPONSES[msg.API_KEY], version, memoryview(frame)[offset:])


def produce_request(topic: str, value_bytes: int) -> ProduceRequest:
    batch = make_batch([b"x" * value_bytes])
    return ProduceRequest(
        acks=-1,
        timeout_ms=5000,
        topic_data=[
            TopicProduceData(
                name=topic, partition_data=[PartitionProduceData(index=0, records=bytes(batch))]
            )
        ],
    )


def create_topic(c: RawClient, name: str) -> None:
    resp = c.request(
        CreateTopicsRequest(
            topics=[CreatableTopic(name=name, num_partitions=1, replication_factor=-1)]
        ),
        7,
    )
    assert resp.topics[0].error_code == ErrorCode.NONE


def test_a_produce_over_its_quota_gets_kafkas_throttle_time_and_a_muted_connection(
    broker_thread: BrokerThread,
) -> None:
    """producer_byte_rate 1000 B/s on client-id "slow", Kafka's windows (11 x 1 s): a first
    Produce of ~12,000 bytes is measured over the 10 s a new sensor is granted, 1,200 B/s,
    so the throttle is (1200 - 1000) / 1000 x 10 s = about 2 s."""
    admin, slow, free = (RawClient(broker_thread.address) for _ in range(3))
    try:
        create_topic(admin, "q")
        assert alter(admin, 1, ({"client-id": "slow"}, {"producer_byte_rate": 1000.0})) == [
            ({"client-id": "slow"}, ErrorCode.NONE)
        ]
        req = produce_request("q", 11_900)
        request_bytes = (
            len(
                encode_request(
                    RequestHeader(
                        request_api_key=0, request_api_version=9, correlation_id=1, client_id="slow"
                    ),
                    req,
                )
            )
            - 4
        )
        resp = call(slow, req, 9, "slow")
        assert (
            resp.responses[0].partition_responses[0].error_code == ErrorCode.NONE
        )  # answered at once, and stored
        expected_ms = (request_bytes / 10 - 1000) / 1000 * 10_000
        assert abs(resp.throttle_time_ms - expected_ms) <= 20, (resp.throttle_time_ms, expected_ms)
        # muted: the next request on that connection waits; another client is answered meanwhile
        started = time.monotonic()
        send(slow, MetadataRequest(topics=[]), 12, "slow")
        free_resp = call(free, produce_request("q", 11_900), 9, "free")
        assert (
            free_resp.throttle_time_ms == 0
            and free_resp.responses[0].partition_responses[0].error_code == ErrorCode.NONE
        )
        assert select.select([slow.sock], [], [], 0)[0] == [], (
            "the throttled connection was answered while muted"
        )
        receive(slow, MetadataRequest(topics=[]), 12)
        assert time.monotonic() - started >= (resp.throttle_time_ms - 100) / 1000
    finally:
        for c in (admin, slow, free):
            c.close()


def test_a_throttled_fetch_is_answered_empty_with_its_throttle_time(
    broker_thread: BrokerThread,
) -> None:
    c = RawClient(broker_thread.address)
    try:
        create_topic(c, "f")
        # one batch larger than the quota's cap on max_bytes: returned whole all the same (KIP-74)
        produced = call(c, produce_request("f", 15_000), 9, "writer")
        assert produced.responses[0].partition_responses[0].error_code == ErrorCode.NONE
        alter(c, 1, ({"user": None, "client-id": "reader"}, {"consumer_byte_rate": 1000.0}))
        fetch = FetchRequest(
            replica_id=-1,
            max_wait_ms=0,
            min_bytes=1,
            max_bytes=1 << 20,
            isolation_level=0,
            topics=[
                FetchTopic(
                    topic="f",
                    partitions=[
                        FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)
                    ],
                )
            ],
        )
        # ~15,000 bytes over 10 s is 1,500 B/s > 1,000: throttled, so answered without records
        throttled = call(c, fetch, 12, "reader")
        assert throttled.error_code == ErrorCode.NONE and throttled.responses == []
        assert 4_000 <= throttled.throttle_time_ms <= 6_000
        # another client id (no quota) gets the records on another connection meanwhile
        other = RawClient(broker_thread.address)
        try:
            answer = call(other, fetch, 12, "other")
            assert (
                answer.throttle_time_ms == 0
                and len(answer.responses[0].partitions[0].records) >= 15_000
            )
        finally:
            other.close()
    finally:
        c.close()


def test_quotas_of_another_client_cost_an_unquoted_client_nothing(
    broker_thread: BrokerThread,
) -> None:
    """A client no quota covers records nothing: its requests are never throttled, however many."""
    c = RawClient(broker_thread.address)
    try:
        create_topic(c, "u")
        alter(
            c,
            1,
            ({"user": "someone-else"}, {"producer_byte_rate": 1.0, "request_percentage": 0.001}),
        )
        for _ in range(20):
            assert call(c, produce_request("u", 20_000), 9, "free").throttle_time_ms == 0
        quotas = broker_thread.broker.quotas  # type: ignore[union-attr]
        assert (
            quotas is not None
            and quotas.active
            and quotas.resolve("producer_byte_rate", "ANONYMOUS", "free") is None
        )
    finally:
        c.close()


def test_throttle_time_and_measured_rates_are_on_metrics(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    bt = BrokerThread(tmp_path / "data", {"kbroker.http.listen": "127.0.0.1:0"})
    bt.start()
    c = RawClient(bt.address)
    try:
        create_topic(c, "m")
        alter(c, 1, ({"client-id": "slow"}, {"producer_byte_rate": 1000.0}))
        throttles = [call(c, produce_request("m", 11_900), 9, "slow").throttle_time_ms]
        throttles.append(
            call(c, produce_request("m", 100), 9, "slow").throttle_time_ms
        )  # after the mute
        assert throttles[0] > 0 and throttles[1] > 0
        assert bt.broker is not None and bt.broker.http is not None
        with urllib.request.urlopen(bt.broker.http.url + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
        samples = {
            (s.name, s.labels.get("user"), s.labels.get("client_id")): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        # a client-id quota's sensor is tagged user "" (Kafka's tags)
        assert samples[("kafka_server_produce_throttle_time_ms_total", "", "slow")] == sum(
            throttles
        )
        assert samples[("kafka_server_produce_throttled_requests_total", "", "slow")] == 2
        assert samples[("kafka_server_produce_byte_rate", "", "slow")] > 1000.0
        assert not [k for k in samples if k[0] == "kafka_server_fetch_throttle_time_ms_total"]
    finally:
        c.close()
        bt.close()


def test_a_fetch_under_a_consumer_quota_is_capped_at_what_the_windows_allow(
    broker_thread: BrokerThread,
) -> None:
    """consumer_byte_rate 1000 B/s, 11 windows of 1 s: one Fetch returns at most about 10,000
    bytes beyond its first batch (Kafka's maxValueInQuotaWindow), whatever its max_bytes."""
    c = RawClient(broker_thread.address)
    try:
        create_topic(c, "cap")
        for _ in range(5):
            call(c, produce_request("cap", 4_000), 9, "writer")
        alter(c, 1, ({"client-id": "capped"}, {"consumer_byte_rate": 1000.0}))
        fetch = FetchRequest(
            replica_id=-1,
            max_wait_ms=0,
            min_bytes=1,
            max_bytes=1 << 20,
            isolation_level=0,
            topics=[
                FetchTopic(
                    topic="cap",
                    partitions=[
                        FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)
                    ],
                )
            ],
        )
        uncapped = call(c, fetch, 12, "uncapped").responses[0].partitions[0].records
        capped = call(c, fetch, 12, "capped")
        records = capped.responses[0].partitions[0].records
        assert len(uncapped) > 20_000 and 4_000 < len(records) <= 10_000 + 4_100
        assert capped.throttle_time_ms == 0  # ~10,000 bytes over 10 s is within 1000 B/s
    finally:
        c.close()


def test_a_muted_connection_does_not_hold_up_shutdown(broker_thread: BrokerThread) -> None:
    """Throttled for ~10 s, the connection is idle in Kafka's sense: shutdown closes it at
    once instead of waiting out the throttle or the 5 s grace period."""
    c = RawClient(broker_thread.address)
    try:
        create_topic(c, "s")
        alter(c, 1, ({"client-id": "slow"}, {"producer_byte_rate": 1000.0}))
        assert call(c, produce_request("s", 19_900), 9, "slow").throttle_time_ms >= 9_000
        send(c, MetadataRequest(topics=[]), 12, "slow")  # waits, unread, behind the mute
        started = time.monotonic()
        broker_thread.stop()
        assert time.monotonic() - started < 4.0
        assert c.recv_frame() is None  # closed, the waiting request unanswered
    finally:
        c.close()

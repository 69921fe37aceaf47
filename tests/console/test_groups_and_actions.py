"""Consumer groups in the console (members, assignments, lag as page and JSON), the
throughput endpoint, and the write forms (read-only by default, CSRF, same origin)."""

from __future__ import annotations

import json
import re

from broker_harness import RawClient
from console_helpers import ConsoleBroker
from kbroker.wire.codec import encode
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.consumer_protocol_assignment import (
    ConsumerProtocolAssignment,
    TopicPartition,
)
from kbroker.wire.messages.join_group_request import JoinGroupRequest, JoinGroupRequestProtocol
from kbroker.wire.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.messages.sync_group_request import SyncGroupRequest, SyncGroupRequestAssignment
from kbroker.wire.records import make_batch

WRITABLE = {"kbroker.console.read.only": "false"}


def _produce(c: RawClient, topic: str, partition: int, values: list[bytes]) -> None:
    data = TopicProduceData(name=topic, partition_data=[PartitionProduceData(index=partition, records=make_batch(values))])
    resp = c.request(ProduceRequest(acks=-1, timeout_ms=5000, topic_data=[data]), 9)
    assert resp.responses[0].partition_responses[0].error_code == ErrorCode.NONE


def _commit(c: RawClient, group: str, topic: str, offsets: dict[int, int]) -> None:
    parts = [OffsetCommitRequestPartition(partition_index=p, committed_offset=o) for p, o in offsets.items()]
    resp = c.request(OffsetCommitRequest(group_id=group, topics=[OffsetCommitRequestTopic(name=topic, partitions=parts)]), 8)
    assert all(p.error_code == ErrorCode.NONE for t in resp.topics for p in t.partitions), resp


def _lags(body: str) -> dict[tuple[str, int], str]:
    rows = re.finditer(
        r'<tr data-topic="([^"]+)" data-partition="(\d+)">.*?<td class="lag">([^<]*)</td>', body, re.S
    )
    return {(m.group(1), int(m.group(2))): m.group(3) for m in rows}


def _token(body: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', body)
    assert m is not None, "no CSRF token in the form"
    return m.group(1)


def test_group_lag_is_a_plain_number_on_the_page_and_in_json(console: ConsoleBroker) -> None:
    console.create_topic("events", 2)
    c = RawClient(console.bt.address)
    try:
        _produce(c, "events", 0, [b"a", b"b", b"c", b"d"])
        _produce(c, "events", 1, [b"e", b"f"])
        _commit(c, "billing", "events", {0: 1, 1: 2})
        groups = console.page("/groups")
        assert 'href="/group?id=billing">billing</a>' in groups
        assert re.search(r">billing</a></td>\s*<td>Empty</td>\s*<td>0</td>\s*<td>2</td>\s*<td>3</td>", groups)
        body = console.page("/group", id="billing")
        assert _lags(body) == {("events", 0): "3", ("events", 1): "0"}
        assert '<td id="total-lag">3</td>' in body
        assert 'data-poll-ms="2000"' in body  # the script refreshes it

        _produce(c, "events", 1, [b"g", b"h", b"i"])
        status, raw = console.get("/api/group", id="billing")
        assert status == 200
        data = json.loads(raw)
        assert data["total_lag"] == 6 and data["state"] == "Empty" and data["members"] == 0
        assert {(p["partition"], p["committed_offset"], p["high_watermark"], p["lag"]) for p in data["partitions"]} == {
            (0, 1, 4, 3),
            (1, 2, 5, 3),
        }
        assert console.get("/api/group", id="nobody")[0] == 404
        assert console.get("/group", id="nobody")[0] == 404
    finally:
        c.close()


def test_members_and_their_assignments_are_shown(console_factory) -> None:
    console = console_factory(WRITABLE)
    console.create_topic("work", 3)
    c = RawClient(console.bt.address)
    try:
        join = JoinGroupRequest(
            group_id="workers", session_timeout_ms=30000, rebalance_timeout_ms=30000, member_id="",
            protocol_type="consumer", protocols=[JoinGroupRequestProtocol(name="range", metadata=b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")],
        )  # fmt: skip
        joined = c.request(join, 3)
        assert joined.error_code == ErrorCode.NONE, joined
        assignment = encode(ConsumerProtocolAssignment(assigned_partitions=[TopicPartition(topic="work", partitions=[2, 0])]), 0)
        sync = SyncGroupRequest(
            group_id="workers", generation_id=joined.generation_id, member_id=joined.member_id,
            assignments=[SyncGroupRequestAssignment(member_id=joined.member_id, assignment=b"\x00\x00" + assignment)],
        )  # fmt: skip
        assert c.request(sync, 2).error_code == ErrorCode.NONE
        body = console.page("/group", id="workers")
        assert '<td id="group-state">Stable</td>' in body
        assert joined.member_id in body and "raw-test" in body  # client id
        assert 'href="/topic?name=work">work</a>: 0, 2' in body
        # a group with an active member cannot have its offsets reset
        status, _, text = console.post(
            "/group/reset-offsets", {"csrf_token": _token(console.page("/topics")), "group": "workers", "to": "earliest"}
        )
        assert status == 400 and "stop its consumers" in text
    finally:
        c.close()


def test_throughput_endpoint_counts_what_was_produced(console: ConsoleBroker) -> None:
    console.create_topic("flow", 1)
    before = json.loads(console.get("/api/throughput")[1])
    c = RawClient(console.bt.address)
    try:
        _produce(c, "flow", 0, [b"x"] * 7)
        _produce(c, "flow", 0, [b"y"] * 5)
    finally:
        c.close()
    after = json.loads(console.get("/api/throughput")[1])
    assert after["messages_in"] - before["messages_in"] == 12
    assert after["bytes_in"] > before["bytes_in"]
    assert after["requests"] - before["requests"] >= 2
    home = console.page("/")
    assert 'id="throughput"' in home and home.count('<figure class="chart"') == 4


def test_read_only_by_default_no_forms_and_posts_refused(console: ConsoleBroker) -> None:
    console.create_topic("keep", 1)
    for body in (console.page("/topics"), console.page("/topic", name="keep")):
        assert '<form method="post"' not in body and "csrf_token" not in body
    assert "read-only" in console.page("/")
    status, _, text = console.post("/topics/delete", {"name": "keep"})
    assert status == 403 and "read-only" in text
    status, _, _ = console.post("/topics/create", {"name": "new-one"})
    assert status == 403
    assert console.on_loop(lambda: console.broker.metadata.get("keep")) is not None
    assert console.on_loop(lambda: console.broker.metadata.get("new-one")) is None
    assert console.get("/topics/create")[0] == 405  # GET on a form's target


def test_writable_console_creates_and_deletes_topics(console_factory) -> None:
    console = console_factory(WRITABLE)
    token = _token(console.page("/topics"))
    status, location, _ = console.post(
        "/topics/create", {"csrf_token": token, "name": "made", "partitions": "3", "configs": "retention.ms=60000\n"}
    )
    assert status == 303 and location == "/topic?name=made"
    topic = console.on_loop(lambda: console.broker.metadata.get("made"))
    assert topic is not None and topic.num_partitions == 3 and topic.configs == {"retention.ms": "60000"}

    bad = {"csrf_token": token, "name": "made", "partitions": "1"}
    status, _, text = console.post("/topics/create", bad)
    assert status == 400 and "TOPIC_ALREADY_EXISTS" in text
    status, _, text = console.post("/topics/create", {**bad, "name": "odd", "configs": "no.such.config=1"})
    assert status == 400 and "INVALID_CONFIG" in text
    console.on_loop(lambda: console.broker.groups.ensure_offsets_topic())
    status, _, text = console.post("/topics/delete", {"csrf_token": token, "name": "__consumer_offsets"})
    assert status == 400 and "Internal topic __consumer_offsets cannot be deleted" in text

    status, location, _ = console.post("/topics/delete", {"csrf_token": token, "name": "made"})
    assert status == 303 and location.startswith("/topics?")
    assert console.on_loop(lambda: console.broker.metadata.get("made")) is None


def test_posts_need_the_token_and_the_same_origin(console_factory) -> None:
    console = console_factory(WRITABLE)
    console.create_topic("guarded", 1)
    token = _token(console.page("/topics"))
    form = {"csrf_token": token, "name": "guarded"}
    assert console.post("/topics/delete", {"name": "guarded"})[0] == 403
    assert console.post("/topics/delete", {**form, "csrf_token": "x" + token})[0] == 403
    assert console.post("/topics/delete", form, {"Origin": "http://attacker.example"})[0] == 403
    assert console.post("/topics/delete", form, {"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert console.on_loop(lambda: console.broker.metadata.get("guarded")) is not None
    host = console.url.removeprefix("http://")
    assert console.post("/topics/delete", form, {"Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"})[0] == 303
    assert console.on_loop(lambda: console.broker.metadata.get("guarded")) is None


def test_reset_offsets_of_an_empty_group(console_factory) -> None:
    console = console_factory(WRITABLE)
    console.create_topic("ledger", 2)
    c = RawClient(console.bt.address)
    try:
        _produce(c, "ledger", 0, [b"1", b"2", b"3"])
        _produce(c, "ledger", 1, [b"4", b"5"])
        _commit(c, "audit", "ledger", {0: 1, 1: 1})
        body = console.page("/group", id="audit")
        token = _token(body)
        status, location, _ = console.post("/group/reset-offsets", {"csrf_token": token, "group": "audit", "topic": "ledger", "to": "latest"})
        assert status == 303 and location.startswith("/group?id=audit")
        assert _lags(console.page("/group", id="audit")) == {("ledger", 0): "0", ("ledger", 1): "0"}
        status, _, _ = console.post("/group/reset-offsets", {"csrf_token": token, "group": "audit", "to": "offset", "offset": "2"})
        assert status == 303
        data = json.loads(console.get("/api/group", id="audit")[1])
        assert {(p["partition"], p["committed_offset"]) for p in data["partitions"]} == {(0, 2), (1, 2)}
        status, _, _ = console.post("/group/reset-offsets", {"csrf_token": token, "group": "audit", "to": "earliest"})
        assert status == 303
        assert json.loads(console.get("/api/group", id="audit")[1])["total_lag"] == 5
        status, _, text = console.post("/group/reset-offsets", {"csrf_token": token, "group": "audit", "to": "offset", "offset": "x"})
        assert status == 400 and "whole number" in text
    finally:
        c.close()

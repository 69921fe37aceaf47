"""The console's pages against an in-process broker: navigation, escaping, the message
browser (newest by default, offset and time seeks, bounds, transaction markers)."""

from __future__ import annotations

import re

import pytest
from console_helpers import ConsoleBroker
from kbroker.wire.records import (
    ControlRecordType,
    build_control_batch,
    build_record_batch,
    make_batch,
)

from kbroker.console import records as console_records
from kbroker.console.records import MAX_RECORDS_PER_PAGE

BASE_TS = 1_700_000_000_000


def _offsets(body: str) -> list[int]:
    return [int(o) for o in re.findall(r'data-offset="(\d+)"', body)]


def _fill(c: ConsoleBroker, topic: str, count: int, partition: int = 0) -> None:
    """``count`` records, one batch each, value "v<i>", timestamps BASE_TS + 1000 * i."""
    for i in range(count):
        batch = make_batch([f"v{i}".encode()], [f"k{i}".encode()], timestamp_ms=BASE_TS + 1000 * i)
        c.append(topic, partition, batch)


def test_every_page_is_linked_from_the_navigation(console: ConsoleBroker) -> None:
    console.create_topic("orders", 2)
    home = console.page("/")
    for href, label in (("/topics", "Topics"), ("/groups", "Consumer Groups")):
        assert f'<a href="{href}"' in home and f">{label}</a>" in home
    topics = console.page("/topics")
    assert 'href="/topic?name=orders">orders</a>' in topics
    topic = console.page("/topic", name="orders")
    assert 'href="/messages?topic=orders&amp;partition=1">Partition 1</a>' in topic
    assert ">Messages</a>" in topic
    assert 'src="/static/console.js"' in home
    status, script = console.get("/static/console.js")
    assert status == 200 and "api/group" in script and "api/throughput" in script


def test_topic_page_shows_offsets_sizes_and_configs_with_their_source(console: ConsoleBroker) -> None:
    console.create_topic("sized", 1, {"retention.ms": "123456"})
    _fill(console, "sized", 3)
    body = console.page("/topic", name="sized")
    row = re.search(r"<tr>\s*<td><a class=\"partition-link\"[^>]*>Partition 0</a></td>(.*?)</tr>", body, re.S)
    assert row is not None
    cells = re.findall(r"<td>(.*?)</td>", row.group(1))
    assert cells[:3] == ["0", "3", "3"]  # log start, high watermark, last stable offset
    assert re.search(r'<tr class="override"><td>retention.ms</td><td>123456</td><td>topic</td></tr>', body)
    assert re.search(r"<tr><td>cleanup.policy</td><td>delete</td><td>default config</td></tr>", body)


def test_client_data_is_escaped_everywhere(console: ConsoleBroker) -> None:
    console.create_topic("xss", 1)
    evil = b"<script>alert(1)</script>"
    batch = build_record_batch([(b"<i>k</i>", evil, [("<h>", b"<b>hv</b>")], BASE_TS)])
    console.append("xss", 0, batch)
    for fmt in ("auto", "text", "json"):
        body = console.page("/messages", topic="xss", partition=0, format=fmt)
        assert "<script>alert" not in body and "<i>k</i>" not in body and "<b>hv" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
        assert "&lt;i&gt;k&lt;/i&gt;" in body and "&lt;h&gt;" in body
    status, body = console.get("/topic", name="<script>")
    assert status == 404 and "<script>" not in body
    headers_ok = console.get("/")
    assert headers_ok[0] == 200


def test_newest_records_by_default_then_seek_by_offset_and_time(console: ConsoleBroker) -> None:
    total = MAX_RECORDS_PER_PAGE + 30
    console.create_topic("many", 1)
    _fill(console, "many", total)
    newest = console.page("/messages", topic="many", partition=0)
    assert _offsets(newest) == list(range(total - MAX_RECORDS_PER_PAGE, total))
    assert f"<pre>v{total - 1}</pre>" in newest
    assert "Showing the newest records." in newest
    older = re.search(r'href="/messages\?topic=many&amp;partition=0&amp;offset=(\d+)[^"]*">Older</a>', newest)
    assert older is not None and int(older.group(1)) == max(0, total - 2 * MAX_RECORDS_PER_PAGE)

    from_5 = console.page("/messages", topic="many", partition=0, offset=5)
    assert _offsets(from_5) == list(range(5, 5 + MAX_RECORDS_PER_PAGE))
    newer = re.search(r'offset=(\d+)&amp;format=auto">Newer</a>', from_5)
    assert newer is not None and int(newer.group(1)) == 5 + MAX_RECORDS_PER_PAGE

    # the first record at or after a time (ListOffsets' rule), in ms or ISO 8601
    at_ms = console.page("/messages", topic="many", partition=0, timestamp=BASE_TS + 30_500)
    assert _offsets(at_ms)[0] == 31
    iso = "2023-11-14T22:13:40Z"  # BASE_TS + 20 s
    at_iso = console.page("/messages", topic="many", partition=0, timestamp=iso)
    assert _offsets(at_iso)[0] == 20
    after_all = console.page("/messages", topic="many", partition=0, timestamp=BASE_TS + 10**9)
    assert _offsets(after_all) == []

    # out-of-range offsets are clamped to the log, nonsense is a 400
    assert _offsets(console.page("/messages", topic="many", partition=0, offset=-7))[0] == 0
    assert console.get("/messages", topic="many", partition=0, offset="abc")[0] == 400
    assert console.get("/messages", topic="many", partition=9)[0] == 404
    assert console.get("/messages", topic="nope", partition=0)[0] == 404


def test_a_page_stops_at_its_byte_bound(console: ConsoleBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    console.create_topic("big", 1)
    for i in range(6):
        console.append("big", 0, make_batch([bytes([65 + i]) * 3000], timestamp_ms=BASE_TS))
    monkeypatch.setattr(console_records, "MAX_READ_BYTES", 7000)
    monkeypatch.setattr(console_records, "READ_CHUNK_BYTES", 3500)
    body = console.page("/messages", topic="big", partition=0, offset=0)
    shown = _offsets(body)
    assert 0 < len(shown) < 6 and shown == list(range(len(shown)))
    assert "This page stopped after reading" in body
    assert "(first part of 2.9 KiB)" not in body  # 3000 bytes fit MAX_SHOWN_BYTES whole


def test_transaction_markers_and_aborted_records_are_labelled(console: ConsoleBroker) -> None:
    console.create_topic("txn", 1)
    pid, epoch = 4000, 0

    def txn_batch(value: bytes, seq: int) -> bytearray:
        return build_record_batch(
            [(None, value, [], BASE_TS)], producer_id=pid, producer_epoch=epoch, base_sequence=seq, is_transactional=True
        )

    def marker(kind: ControlRecordType) -> bytearray:
        return build_control_batch(kind, producer_id=pid, producer_epoch=epoch, coordinator_epoch=7, timestamp_ms=BASE_TS)

    console.append("txn", 0, make_batch([b"plain"], timestamp_ms=BASE_TS))  # 0
    console.append("txn", 0, txn_batch(b"kept", 0))  # 1
    console.append("txn", 0, marker(ControlRecordType.COMMIT), coordinator=True)  # 2
    console.append("txn", 0, txn_batch(b"dropped-1", 1))  # 3
    console.append("txn", 0, txn_batch(b"dropped-2", 2))  # 4
    console.append("txn", 0, marker(ControlRecordType.ABORT), coordinator=True)  # 5
    console.append("txn", 0, txn_batch(b"pending", 3))  # 6: transaction still open

    body = console.page("/messages", topic="txn", partition=0)
    rows = {int(m.group(2)): m.group(1) for m in re.finditer(r'<tr class="record([^"]*)" data-offset="(\d+)"', body)}
    assert rows == {0: "", 1: "", 2: " marker", 3: " aborted", 4: " aborted", 5: " marker", 6: " open"}
    assert "COMMIT marker (producer 4000, coordinator epoch 7)" in body
    assert "ABORT marker (producer 4000, coordinator epoch 7)" in body
    assert "last stable offset 6" in body
    # a page starting inside the aborted transaction still knows it was aborted
    mid = console.page("/messages", topic="txn", partition=0, offset=4)
    assert re.search(r'<tr class="record aborted" data-offset="4"', mid)

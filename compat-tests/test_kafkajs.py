"""kafkajs 2.2.4 (Node.js) against a real broker process.

pytest drives ``js/driver.js`` through ``node``, one command per subprocess, with JSON
on stdin/stdout.  kafkajs has no manual partition assignment, so its consumer reads
through a fresh consumer group (the other clients read by assignment).  Its built-in
codecs are none and gzip only.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from clients import JS_DIR, kafkajs_node_modules
from helpers import (
    PARTITIONS,
    Got,
    Sent,
    check_roundtrip,
    check_time_answers,
    make_messages,
    time_queries,
    unique_topic,
    wait_until,
)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

DRIVER = JS_DIR / "driver.js"
NODE_TIMEOUT_S = 60


@pytest.fixture(scope="session")
def kafkajs() -> Path:
    """node_modules with the pinned kafkajs (skips locally, fails in CI when it cannot be had)."""
    kafkajs_node_modules()
    return JS_DIR


def run_js(command: str, request: dict) -> dict:
    proc = subprocess.run(
        ["node", str(DRIVER), command],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
        cwd=JS_DIR,
        env={**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1"},
    )
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    assert proc.returncode == 0 and "error" not in result, (
        f"kafkajs {command} failed (exit {proc.returncode}): {result.get('error')}\n"
        f"--- node stderr (tail) ---\n{proc.stderr[-4000:]}"
    )
    return result


def to_js(s: Sent) -> dict:
    enc = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return {
        "key": enc(s.key),
        "value": enc(s.value),
        "headers": [[k, enc(v)] for k, v in s.headers],
        "timestamp": s.timestamp,
    }


def from_js(r: dict) -> Got:
    dec = lambda s: None if s is None else base64.b64decode(s)  # noqa: E731
    return Got(
        r["partition"],
        r["offset"],
        dec(r["key"]),
        dec(r["value"]),
        tuple((k, dec(v)) for k, v in r["headers"]),
        r["timestamp"],
    )


@pytest.mark.parametrize("codec", ["none", "gzip"])
@pytest.mark.feature("produce", "consume", "admin", "compression:{codec}", client="kafkajs")
def test_admin_produce_consume_list_offsets_delete(kafkajs, broker, codec: str) -> None:
    base = {"bootstrap": broker.bootstrap}
    topic = unique_topic(f"js-{codec}")

    created = run_js("create", {**base, "topic": topic, "partitions": PARTITIONS})
    assert created["partitions"] == list(range(PARTITIONS)), created
    assert topic in run_js("list", base)["topics"]

    sent = make_messages(f"js-{codec}")
    produced = run_js(
        "produce", {**base, "topic": topic, "codec": codec, "messages": [to_js(s) for s in sent]}
    )
    assert all(r["errorCode"] == 0 for r in produced["results"]), produced

    consumed = run_js(
        "consume",
        {
            **base,
            "topic": topic,
            "group": f"compat-js-{uuid.uuid4().hex[:8]}",
            "want": len(sent),
            "timeoutMs": 30_000,
        },
    )
    by_partition = check_roundtrip(sent, [from_js(r) for r in consumed["records"]])

    # Every produce ack's base offset is the offset of a record in that partition.
    for r in produced["results"]:
        assert r["baseOffset"] < len(by_partition[r["partition"]]), r

    offsets = run_js("offsets", {**base, "topic": topic})["offsets"]
    assert {o["partition"]: int(o["high"]) for o in offsets} == {
        p: len(by_partition.get(p, [])) for p in range(PARTITIONS)
    }, f"high watermarks: {offsets}"
    assert all(int(o["low"]) == 0 for o in offsets), offsets

    # fetchTopicOffsetsByTimestamp asks every partition for one timestamp.
    queries = time_queries(by_partition)
    stamps = sorted({q.timestamp for q in queries})
    answers = run_js("offsets-by-time", {**base, "topic": topic, "timestamps": stamps})["answers"]
    table = {
        (a["timestamp"], p["partition"]): p["offset"] for a in answers for p in a["partitions"]
    }
    high = {p: len(recs) for p, recs in by_partition.items()}

    def answer(q):
        got = table[q.timestamp, q.partition]
        # kafkajs replaces "no such record" (-1) by the partition's high watermark.
        return None if q.expected is None and got == high[q.partition] else got

    check_time_answers(queries, answer)

    run_js("delete", {**base, "topic": topic})
    wait_until(
        lambda: topic not in run_js("list", base)["topics"], 10, f"{topic} gone from the topic list"
    )

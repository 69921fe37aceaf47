"""Exactly-once consume-transform-produce with each client, killed midway and restarted.

A worker process (``txn_helpers.py`` in ``ctp`` mode) reads the input topic read_committed
in a consumer group and, per poll batch, writes ``T(<value>)`` to the output topic and
sends the consumer's positions with ``send_offsets_to_transaction`` inside one
transaction.  The first worker stops inside its fourth transaction (output flushed,
offsets sent, no commit) and is SIGKILLed by pid; a second worker with the same
transactional id and group takes over (its InitProducerId aborts the open transaction)
and runs until the group's committed offsets reach the end of the input.

A read_committed reader of the output must then see each input record's transform exactly
once, and the group's committed offsets must equal the input's high watermarks.  The
aborted batch stays visible to read_uncommitted readers, which shows the kill really
happened inside a transaction whose records had reached the broker.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Producer
from txn_helpers import (
    PARTITIONS,
    TXN_BROKER_SETTINGS,
    Child,
    check_exactly,
    ck_common,
    ck_read,
    group_offsets,
    lso_and_hwm,
    values,
)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

INPUT_RECORDS = 60
BATCH = 5
SETTLE_S = 60.0


def produce_input(bootstrap: str, topic: str, pairs: list[tuple[bytes, bytes]]) -> None:
    p = Producer({**ck_common(bootstrap), "acks": "all", "linger.ms": 5})
    for k, v in pairs:
        p.produce(topic, key=k, value=v)
    assert p.flush(15) == 0, "input not delivered"


@pytest.mark.parametrize("client", ["confluent", "kafka-python", "aiokafka"])
@pytest.mark.feature("transactions", client="{client}")
def test_consume_transform_produce_killed_midway(broker_factory, tmp_path, client) -> None:
    broker = broker_factory(settings=TXN_BROKER_SETTINGS)
    bootstrap = broker.bootstrap
    tag = uuid.uuid4().hex[:8]
    src, dst, group, txn_id = (f"ctp-{x}-{tag}" for x in ("in", "out", "group", "txn"))
    inputs = values("ctp", "in", INPUT_RECORDS)
    produce_input(bootstrap, src, inputs)
    _, input_ends = lso_and_hwm(bootstrap, src)
    assert sum(input_ends) == INPUT_RECORDS, f"input high watermarks {input_ends}"

    cfg = {
        "mode": "ctp" if client == "confluent" else f"ctp-{client}",
        "bootstrap": bootstrap,
        "input": src,
        "output": dst,
        "group": group,
        "txn_id": txn_id,
        "batch": BATCH,
    }
    first = Child({**cfg, "pause_after": 3}, tmp_path, "ctp-first")
    second = None
    try:
        first.wait_for("paused", timeout=SETTLE_S)
        assert first.count("committed") == 3
        first.kill()

        second = Child(cfg, tmp_path, "ctp-second")
        last: list[list[int]] = []

        def done() -> bool:
            last[:] = [group_offsets(bootstrap, group, src)]
            return last[0] == input_ends

        deadline = time.monotonic() + SETTLE_S
        while not done():
            problem = second.crashed()
            assert problem is None, f"second worker failed: {problem}"
            assert time.monotonic() < deadline, (
                f"group offsets {last[0]} never reached the input ends {input_ends} within "
                f"{SETTLE_S} s; second worker events {second.snapshot()[-5:]}\n"
                f"{second.stderr_tail()}"
            )
            time.sleep(0.3)
        assert second.stop() == 0, f"second worker exit\n{second.stderr_tail()}"
    finally:
        first.cleanup()
        if second is not None:
            second.cleanup()

    want = [b"T(" + v + b")" for _, v in inputs]
    check_exactly(ck_read(bootstrap, dst, "read_committed"), want, "output, read_committed")
    uncommitted = ck_read(bootstrap, dst, "read_uncommitted")
    assert len(uncommitted) > len(want), (
        "read_uncommitted shows no aborted output: the kill did not leave an open transaction"
    )
    assert {r.value for r in uncommitted} == set(want), "read_uncommitted: unknown values"
    lso, hwm = lso_and_hwm(bootstrap, dst)
    assert lso == hwm, f"output: LSO {lso} != high watermark {hwm}"
    assert group_offsets(bootstrap, group, src) == input_ends
    assert len(input_ends) == PARTITIONS

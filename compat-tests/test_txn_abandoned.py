"""Open transactions that nobody finishes, and open transactions across broker restarts.

A confluent-kafka producer process writes records in a transaction, flushes them and then
either dies (SIGKILL by pid) or just stops doing anything.  While the transaction is open
the last stable offset (LSO) stays at its first record; the coordinator must abort it once
its ``transaction.timeout.ms`` (3 s here; the broker's sweep runs every 500 ms) has passed.
After that the LSO reaches the high watermark again and read_committed consumers get data
committed later.  Across a broker restart (SIGTERM or SIGKILL) the open transaction must
neither be forgotten (the LSO still holds) nor stick: it ends by its timeout, or when a
new producer with the same transactional id initialises (which aborts it).
"""

from __future__ import annotations

import time
import uuid

import pytest
from txn_helpers import (
    PARTITIONS,
    TXN_BROKER_SETTINGS,
    TXN_TIMEOUT_MS,
    Child,
    check_exactly,
    ck_commit,
    ck_read,
    ck_send,
    ck_txn_producer,
    lso_and_hwm,
    values,
    wait_lso_at_end,
)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

# The timeout sweep may start up to one interval late; allow generous slack on a busy host.
ABORT_WITHIN_S = TXN_TIMEOUT_MS / 1000 + 15.0


@pytest.fixture
def txn_broker(broker_factory):
    return broker_factory(settings=TXN_BROKER_SETTINGS)


def open_transaction(bootstrap: str, topic: str, tmp_path, timeout_ms: int, tag: str):
    """A producer process holding an open transaction over every partition of ``topic``."""
    pairs = values(tag, "open", 18)
    txn_id = f"txn-open-{uuid.uuid4().hex[:8]}"
    child = Child(
        {
            "mode": "open",
            "bootstrap": bootstrap,
            "topic": topic,
            "txn_id": txn_id,
            "timeout_ms": timeout_ms,
            "pairs": [[k.decode(), v.decode()] for k, v in pairs],
        },
        tmp_path,
        f"open-{tag}",
    )
    return child, pairs, txn_id


def check_after(bootstrap: str, topic: str, committed, aborted, markers: int) -> None:
    """Exactly ``committed`` for read_committed, everything for read_uncommitted; no open txn."""
    check_exactly(ck_read(bootstrap, topic, "read_committed"), committed, "read_committed")
    by_p = check_exactly(
        ck_read(bootstrap, topic, "read_uncommitted"), committed + aborted, "read_uncommitted"
    )
    lso, hwm = lso_and_hwm(bootstrap, topic)
    assert lso == hwm, f"LSO {lso} != high watermark {hwm}"
    want = [len(by_p.get(p, [])) + markers for p in range(PARTITIONS)]
    assert hwm == want, f"high watermarks {hwm}, want data + {markers} markers = {want}"


@pytest.mark.parametrize("how", ["killed", "idle"])
def test_abandoned_transaction_is_aborted_after_its_timeout(txn_broker, tmp_path, how) -> None:
    bootstrap = txn_broker.bootstrap
    topic = f"txn-abandon-{how}-{uuid.uuid4().hex[:8]}"
    before = values(how, "before", 18)
    after = values(how, "after", 18)
    ck_commit(bootstrap, f"txn-before-{uuid.uuid4().hex[:8]}", topic, before)
    _, hwm_before = lso_and_hwm(bootstrap, topic)

    spawned = time.monotonic()
    child, open_pairs, _ = open_transaction(bootstrap, topic, tmp_path, TXN_TIMEOUT_MS, how)
    try:
        child.wait_for("open")
        lso, hwm = lso_and_hwm(bootstrap, topic)
        # Kafka: the LSO is the first offset of the earliest open transaction.
        assert lso == hwm_before, f"open transaction: LSO {lso}, want {hwm_before} (hwm {hwm})"
        assert hwm != hwm_before, "the open transaction's records did not reach the log"
        if how == "killed":
            child.kill()

        wait_lso_at_end(bootstrap, topic, ABORT_WITHIN_S, f"{how} transaction's timeout")
        took = time.monotonic() - spawned
        assert took >= TXN_TIMEOUT_MS / 1000, (
            f"the transaction was ended {took:.1f} s after its producer started, "
            f"before its {TXN_TIMEOUT_MS} ms timeout"
        )
        ck_commit(bootstrap, f"txn-after-{uuid.uuid4().hex[:8]}", topic, after)
    finally:
        child.cleanup()

    check_after(
        bootstrap,
        topic,
        [v for _, v in before + after],
        [v for _, v in open_pairs],
        markers=3,  # commit, abort (by the coordinator), commit
    )


@pytest.mark.parametrize("end", ["timeout", "reinit"])
@pytest.mark.parametrize("restart", ["sigterm", "sigkill"])
def test_open_transaction_across_broker_restart(txn_broker, tmp_path, restart, end) -> None:
    bootstrap = txn_broker.bootstrap
    topic = f"txn-restart-{restart}-{end}-{uuid.uuid4().hex[:8]}"
    before = values(restart, "before", 18)
    after = values(restart, "after", 18)
    ck_commit(bootstrap, f"txn-before-{uuid.uuid4().hex[:8]}", topic, before)
    _, hwm_before = lso_and_hwm(bootstrap, topic)

    # "reinit": a timeout far beyond the test, so only the new producer can end it.
    timeout_ms = TXN_TIMEOUT_MS if end == "timeout" else 600_000
    child, open_pairs, txn_id = open_transaction(bootstrap, topic, tmp_path, timeout_ms, restart)
    try:
        child.wait_for("open")
        if end == "reinit":
            child.kill()  # the producer is gone for good; its successor takes over
        if restart == "sigterm":
            txn_broker.stop()
        else:
            txn_broker.kill()
        txn_broker.start()

        lso, hwm = lso_and_hwm(bootstrap, topic)
        if end == "reinit":
            # Not forgotten: the transaction is still open after the restart.
            assert lso == hwm_before, f"after restart: LSO {lso}, want {hwm_before} (hwm {hwm})"
            successor = ck_txn_producer(bootstrap, txn_id)  # aborts the open transaction
            successor.begin_transaction()
            ck_send(successor, topic, after)
            successor.commit_transaction(15)
            wait_lso_at_end(bootstrap, topic, 10.0, "the successor's commit")
        else:
            wait_lso_at_end(bootstrap, topic, ABORT_WITHIN_S, "the transaction's timeout")
            ck_commit(bootstrap, f"txn-after-{uuid.uuid4().hex[:8]}", topic, after)
    finally:
        child.cleanup()

    check_after(
        bootstrap,
        topic,
        [v for _, v in before + after],
        [v for _, v in open_pairs],
        markers=3,
    )

"""What observers see of an open transaction, and of its end by the coordinator's timeout.

A confluent-kafka producer process holds a transaction open over every partition, then is
SIGKILLed.  While it is open:

* kafka-python's admin DescribeTransactions reports it Ongoing with its timeout and its
  partitions, ListTransactions lists it (and filters by state), DescribeProducers shows
  the producer with the transaction's first offset on each partition;
* ListOffsets latest answers the LSO (the transaction's first offset) for read_committed
  and the high watermark for read_uncommitted, with kafka-python and aiokafka;
* a running read_committed consumer (librdkafka) has read the earlier committed records
  and nothing of the open transaction.

After its timeout the coordinator aborts it: DescribeTransactions says CompleteAbort with
no partitions, DescribeProducers no open transaction, and the same running consumer goes
on to receive records committed afterwards (the LSO moved on), never the aborted ones.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from kafka import KafkaAdminClient
from kafka import TopicPartition as KpTopicPartition
from kafka.errors import TransactionalIdNotFoundError
from txn_helpers import (
    PARTITIONS,
    TXN_BROKER_SETTINGS,
    Child,
    Rec,
    check_exactly,
    ck_commit,
    ck_common,
    lso_and_hwm,
    values,
    wait_lso_at_end,
)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

# The observations below (admin calls, clients started for ListOffsets) must all happen
# while the transaction is still open; on a loaded machine they take several seconds, so
# this transaction gets a longer timeout than the other tests' (the broker then aborts it).
OBSERVE_TXN_TIMEOUT_MS = 15_000


class LiveReader:
    """A read_committed librdkafka consumer that keeps running across the whole test."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.c = Consumer(
            {
                **ck_common(bootstrap),
                "group.id": f"txn-live-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 100,
            }
        )
        self.c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        self.got: list[Rec] = []

    def read_until(self, want: set[bytes], timeout: float, what: str) -> None:
        """Consume until every value in ``want`` arrived and each partition hit its end."""
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout
        while not (want <= {r.value for r in self.got} and len(at_end) == PARTITIONS):
            assert time.monotonic() < deadline, (
                f"live read_committed consumer, {what}: after {timeout} s it has "
                f"{len(self.got)} records, partitions at end {sorted(at_end)}"
            )
            for m in self.c.consume(num_messages=500, timeout=0.3):
                err = m.error()
                if err is not None:
                    assert err.code() == KafkaError._PARTITION_EOF, f"consume error: {err}"
                    at_end.add(m.partition())
                    continue
                at_end.discard(m.partition())
                self.got.append(Rec(m.partition(), m.offset(), m.key(), m.value()))

    def close(self) -> None:
        self.c.close()


def python_end_offsets(bootstrap: str, topic: str) -> dict[str, list[int]]:
    import asyncio

    from aiokafka import AIOKafkaConsumer
    from kafka import KafkaConsumer

    tps = [KpTopicPartition(topic, p) for p in range(PARTITIONS)]
    out: dict[str, list[int]] = {}
    for isolation in ("read_committed", "read_uncommitted"):
        c = KafkaConsumer(
            bootstrap_servers=bootstrap, isolation_level=isolation, request_timeout_ms=10_000
        )
        try:
            ends = c.end_offsets(tps)
        finally:
            c.close()
        out[f"kafka-python {isolation}"] = [ends[tp] for tp in tps]

        async def aio(isolation: str = isolation) -> list[int]:
            ac = AIOKafkaConsumer(
                bootstrap_servers=bootstrap, isolation_level=isolation, request_timeout_ms=10_000
            )
            await ac.start()
            try:
                ends = await ac.end_offsets(tps)
            finally:
                await ac.stop()
            return [ends[tp] for tp in tps]

        out[f"aiokafka {isolation}"] = asyncio.run(aio())
    return out


def test_open_transaction_seen_by_admin_and_live_consumer(broker_factory, tmp_path) -> None:
    broker = broker_factory(settings=TXN_BROKER_SETTINGS)
    bootstrap = broker.bootstrap
    topic = f"txn-observe-{uuid.uuid4().hex[:8]}"
    txn_id = f"txn-observe-{uuid.uuid4().hex[:8]}"
    before, opened, after = (values("obs", phase, 18) for phase in ("before", "open", "after"))
    ck_commit(bootstrap, f"txn-before-{uuid.uuid4().hex[:8]}", topic, before)
    _, first_open = lso_and_hwm(bootstrap, topic)  # where the open transaction starts

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    live = LiveReader(bootstrap, topic)
    child = Child(
        {
            "mode": "open",
            "bootstrap": bootstrap,
            "topic": topic,
            "txn_id": txn_id,
            "timeout_ms": OBSERVE_TXN_TIMEOUT_MS,
            "pairs": [[k.decode(), v.decode()] for k, v in opened],
        },
        tmp_path,
        "observe-open",
    )
    tps = [KpTopicPartition(topic, p) for p in range(PARTITIONS)]
    try:
        child.wait_for("open")
        [desc] = admin.describe_transactions([txn_id]).values()
        assert str(getattr(desc.state, "value", desc.state)) == "Ongoing", desc
        assert desc.transaction_timeout_ms == OBSERVE_TXN_TIMEOUT_MS, desc
        assert desc.producer_id >= 0 and desc.transaction_start_time_ms > 0, desc
        assert {(tp.topic, tp.partition) for tp in desc.topic_partitions} == {
            (topic, p) for p in range(PARTITIONS)
        }, desc
        listed = [
            t
            for ts in admin.list_transactions().values()
            for t in ts
            if t.transactional_id == txn_id
        ]
        assert len(listed) == 1 and listed[0].producer_id == desc.producer_id, listed
        assert str(getattr(listed[0].state, "value", listed[0].state)) == "Ongoing", listed
        by_state = admin.list_transactions(state_filters=["CompleteCommit"])
        assert txn_id not in {t.transactional_id for ts in by_state.values() for t in ts}
        producers = admin.describe_producers(tps)
        for tp in tps:
            mine = [s for s in producers[tp].active_producers if s.producer_id == desc.producer_id]
            assert len(mine) == 1, f"{tp}: {producers[tp]}"
            assert mine[0].current_transaction_start_offset == first_open[tp.partition], mine
        # ListOffsets latest per isolation level from the Python clients too (kafka-python
        # up to v11, aiokafka up to v3): the LSO for read_committed, else the high watermark.
        _, hwm_open = lso_and_hwm(bootstrap, topic)
        assert python_end_offsets(bootstrap, topic) == {
            "kafka-python read_committed": first_open,
            "kafka-python read_uncommitted": hwm_open,
            "aiokafka read_committed": first_open,
            "aiokafka read_uncommitted": hwm_open,
        }
        with pytest.raises(TransactionalIdNotFoundError):
            admin.describe_transactions([f"never-used-{uuid.uuid4().hex[:8]}"])

        live.read_until({v for _, v in before}, 20.0, "while the transaction is open")
        check_exactly(list(live.got), [v for _, v in before], "live reader, transaction open")

        child.kill()
        wait_lso_at_end(bootstrap, topic, OBSERVE_TXN_TIMEOUT_MS / 1000 + 15.0, "the timeout abort")
        [desc] = admin.describe_transactions([txn_id]).values()
        assert str(getattr(desc.state, "value", desc.state)) == "CompleteAbort", desc
        assert not desc.topic_partitions, desc
        producers = admin.describe_producers(tps)
        for tp in tps:
            for s in producers[tp].active_producers:
                assert s.current_transaction_start_offset == -1, f"{tp}: {s}"

        ck_commit(bootstrap, f"txn-after-{uuid.uuid4().hex[:8]}", topic, after)
        live.read_until({v for _, v in after}, 20.0, "after the abort and a later commit")
        check_exactly(
            list(live.got), [v for _, v in before + after], "live reader, after the timeout"
        )
    finally:
        child.cleanup()
        live.close()
        admin.close()

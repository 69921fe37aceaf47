"""Transactions with confluent-kafka, aiokafka and kafka-python, each against a real broker.

* commit, abort, commit again, each transaction over every partition: read_committed
  consumers (the client's own and librdkafka's) see exactly the committed records,
  read_uncommitted consumers see every data record, aborted ones included; each
  transaction leaves one control record per partition and no open transaction (LSO = high
  watermark);
* fencing: a second producer with the same transactional id fences the first, whose
  commit then fails with a fenced error; its records are aborted, the second's committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest
from txn_helpers import (
    CLIENT_TIMEOUT_S,
    PARTITIONS,
    READ_TIMEOUT_S,
    TXN_BROKER_SETTINGS,
    Rec,
    check_exactly,
    ck_read,
    ck_send,
    ck_txn_producer,
    lso_and_hwm,
    values,
)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

CLIENTS = ("confluent", "aiokafka", "kafka-python")


# -- one transactional producer per client, behind the same small surface ---------------------


class ConfluentTxn:
    def __init__(self, bootstrap: str, txn_id: str) -> None:
        self.p = ck_txn_producer(bootstrap, txn_id)

    def begin(self) -> None:
        self.p.begin_transaction()

    def send(self, topic: str, pairs: list[tuple[bytes, bytes]]) -> None:
        ck_send(self.p, topic, pairs)

    def commit(self) -> None:
        self.p.commit_transaction(CLIENT_TIMEOUT_S)

    def abort(self) -> None:
        self.p.abort_transaction(CLIENT_TIMEOUT_S)

    def close(self) -> None:
        self.p.flush(1)


class KafkaPythonTxn:
    def __init__(self, bootstrap: str, txn_id: str) -> None:
        from kafka import KafkaProducer

        self.p = KafkaProducer(
            bootstrap_servers=bootstrap,
            transactional_id=txn_id,
            request_timeout_ms=10_000,
        )
        self.p.init_transactions()

    def begin(self) -> None:
        self.p.begin_transaction()

    def send(self, topic: str, pairs: list[tuple[bytes, bytes]]) -> None:
        futures = [self.p.send(topic, key=k, value=v) for k, v in pairs]
        self.p.flush(CLIENT_TIMEOUT_S)
        for f in futures:
            f.get(CLIENT_TIMEOUT_S)

    def commit(self) -> None:
        self.p.commit_transaction()

    def abort(self) -> None:
        self.p.abort_transaction()

    def close(self) -> None:
        self.p.close(timeout=2)


class AiokafkaTxn:
    """aiokafka is asyncio-only: this wrapper owns a loop and runs each step on it."""

    def __init__(self, bootstrap: str, txn_id: str) -> None:
        from aiokafka import AIOKafkaProducer

        self.loop = asyncio.new_event_loop()

        async def make() -> Any:
            p = AIOKafkaProducer(
                bootstrap_servers=bootstrap,
                transactional_id=txn_id,
                enable_idempotence=True,
                request_timeout_ms=10_000,
            )
            await p.start()  # InitProducerId for the transactional id
            return p

        self.p = self.run(make())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, CLIENT_TIMEOUT_S))

    def begin(self) -> None:
        self.run(self.p.begin_transaction())

    def send(self, topic: str, pairs: list[tuple[bytes, bytes]]) -> None:
        async def go() -> None:
            futures = [await self.p.send(topic, key=k, value=v) for k, v in pairs]
            await asyncio.gather(*futures)

        self.run(go())

    def commit(self) -> None:
        self.run(self.p.commit_transaction())

    def abort(self) -> None:
        self.run(self.p.abort_transaction())

    def close(self) -> None:
        try:
            self.run(self.p.stop())
        finally:
            self.loop.close()


def make_producer(client: str, bootstrap: str, txn_id: str) -> Any:
    return {"confluent": ConfluentTxn, "kafka-python": KafkaPythonTxn, "aiokafka": AiokafkaTxn}[
        client
    ](bootstrap, txn_id)


# -- readers: each client's own consumer, to the end its isolation level allows ---------------


def kafka_python_read(bootstrap: str, topic: str, isolation: str) -> list[Rec]:
    import time

    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level=isolation,
        enable_auto_commit=False,
        group_id=None,
        fetch_max_wait_ms=100,
        request_timeout_ms=10_000,
    )
    out: list[Rec] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        end = c.end_offsets(tps)  # ListOffsets with the consumer's isolation level
        deadline = time.monotonic() + READ_TIMEOUT_S
        while any(c.position(tp) < end[tp] for tp in tps):
            assert time.monotonic() < deadline, (
                f"kafka-python {isolation}: positions {[c.position(tp) for tp in tps]} "
                f"never reached {[end[tp] for tp in tps]}"
            )
            for recs in c.poll(timeout_ms=300).values():
                out.extend(Rec(r.partition, r.offset, r.key, r.value) for r in recs)
    finally:
        c.close()
    return out


def aiokafka_read(bootstrap: str, topic: str, isolation: str) -> list[Rec]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def go() -> list[Rec]:
        c = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            isolation_level=isolation,
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
            request_timeout_ms=10_000,
        )
        await c.start()
        out: list[Rec] = []
        try:
            tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            c.assign(tps)
            await c.seek_to_beginning(*tps)
            end = await c.end_offsets(tps)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + READ_TIMEOUT_S
            while True:
                positions = [await c.position(tp) for tp in tps]
                if all(pos >= end[tp] for pos, tp in zip(positions, tps)):
                    break
                assert loop.time() < deadline, (
                    f"aiokafka {isolation}: positions {positions} "
                    f"never reached {[end[tp] for tp in tps]}"
                )
                batches = await c.getmany(timeout_ms=300)
                for recs in batches.values():
                    out.extend(Rec(r.partition, r.offset, r.key, r.value) for r in recs)
        finally:
            await c.stop()
        return out

    return asyncio.run(go())


def read(client: str, bootstrap: str, topic: str, isolation: str) -> list[Rec]:
    if client == "kafka-python":
        return kafka_python_read(bootstrap, topic, isolation)
    if client == "aiokafka":
        return aiokafka_read(bootstrap, topic, isolation)
    return ck_read(bootstrap, topic, isolation)


@pytest.fixture
def txn_broker(broker_factory):
    return broker_factory(settings=TXN_BROKER_SETTINGS)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.feature("transactions", client="{client}")
def test_commit_abort_commit(txn_broker, client: str) -> None:
    bootstrap = txn_broker.bootstrap
    topic = f"txn-cac-{client}-{uuid.uuid4().hex[:8]}"
    first, aborted, second = (values(client, phase, 27) for phase in ("c1", "a2", "c3"))

    producer = make_producer(client, bootstrap, f"txn-{client}-{uuid.uuid4().hex[:8]}")
    try:
        producer.begin()
        producer.send(topic, first)
        producer.commit()
        producer.begin()
        producer.send(topic, aborted)  # acknowledged: on the broker before the abort
        producer.abort()
        producer.begin()
        producer.send(topic, second)
        producer.commit()
    finally:
        producer.close()

    committed = [v for _, v in first + second]
    everything = committed + [v for _, v in aborted]
    for reader in dict.fromkeys((client, "confluent")):
        check_exactly(
            read(reader, bootstrap, topic, "read_committed"),
            committed,
            f"{reader} read_committed after {client} transactions",
        )
    by_p = check_exactly(
        read(client, bootstrap, topic, "read_uncommitted"),
        everything,
        f"{client} read_uncommitted",
    )
    assert len(by_p) == PARTITIONS, f"records in partitions {sorted(by_p)} only"

    lso, hwm = lso_and_hwm(bootstrap, topic)
    assert lso == hwm, f"no transaction is open, yet LSO {lso} != high watermark {hwm}"
    # Three transactions, each over every partition: one control record each.
    want_hwm = [len(by_p[p]) + 3 for p in range(PARTITIONS)]
    assert hwm == want_hwm, f"high watermarks {hwm}, want data + 3 markers = {want_hwm}"


def is_fenced(client: str, exc: BaseException) -> bool:
    if client == "confluent":
        from confluent_kafka import KafkaError, KafkaException

        if not isinstance(exc, KafkaException):
            return False
        err = exc.args[0]
        return err.code() in (
            KafkaError._FENCED,
            KafkaError.PRODUCER_FENCED,
            KafkaError.INVALID_PRODUCER_EPOCH,
        )
    if client == "aiokafka":
        from aiokafka.errors import InvalidProducerEpoch, ProducerFenced

        return isinstance(exc, ProducerFenced | InvalidProducerEpoch)
    from kafka.errors import InvalidProducerEpochError, ProducerFencedError

    return isinstance(exc, ProducerFencedError | InvalidProducerEpochError)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.feature("transactions", client="{client}")
def test_second_producer_fences_first(txn_broker, client: str) -> None:
    bootstrap = txn_broker.bootstrap
    topic = f"txn-fence-{client}-{uuid.uuid4().hex[:8]}"
    txn_id = f"txn-fence-{client}-{uuid.uuid4().hex[:8]}"
    zombie_pairs = values(client, "zombie", 18)
    new_pairs = values(client, "new", 18)

    zombie = make_producer(client, bootstrap, txn_id)
    newer = None
    try:
        zombie.begin()
        zombie.send(topic, zombie_pairs)
        # Same transactional id: the coordinator aborts the open transaction, bumps the epoch.
        newer = make_producer(client, bootstrap, txn_id)
        with pytest.raises(Exception) as caught:
            zombie.commit()
        assert is_fenced(client, caught.value), (
            f"the fenced producer's commit failed with {caught.value!r}, not a fenced error"
        )
        newer.begin()
        newer.send(topic, new_pairs)
        newer.commit()
    finally:
        for p in (zombie, newer):
            if p is not None:
                with contextlib.suppress(Exception):  # a fenced producer may complain
                    p.close()

    check_exactly(
        ck_read(bootstrap, topic, "read_committed"),
        [v for _, v in new_pairs],
        "read_committed after fencing",
    )
    check_exactly(
        ck_read(bootstrap, topic, "read_uncommitted"),
        [v for _, v in zombie_pairs + new_pairs],
        "read_uncommitted after fencing",
    )
    lso, hwm = lso_and_hwm(bootstrap, topic)
    assert lso == hwm, f"LSO {lso} != high watermark {hwm} after fencing"

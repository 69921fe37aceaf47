"""The transaction coordinator's runtime: ``__transaction_state``, markers, timers.

``coordinator.TransactionCoordinator`` is pure; each call returns a ``TxnResult``.  This
module runs its contract (``coordinator.txn_result``) synchronously on the event loop:

1. append ``txn_records`` to ``__transaction_state`` (created on first use, compacted,
   ``transaction.state.log.num.partitions`` partitions);
2. write one COMMIT/ABORT control batch per marker to its partition; a marker on
   ``__consumer_offsets`` also settles the group coordinator's pending transactional
   offsets of that producer;
3. tell the coordinator the markers are written (``markers_written``), which completes
   the transaction with one more record;
4. answer.

At start-up ``__transaction_state`` is replayed and ``on_loaded`` re-emits the markers of
transactions that were prepared but not completed before the stop, and arms the timeout
sweep that aborts transactions older than their ``transaction.timeout.ms``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any, TypeVar

from kbroker.clock import now_ms
from kbroker.coordinator.records import partition_for as group_partition_for
from kbroker.coordinator.result import Result
from kbroker.coordinator.timer import CallLaterTimer
from kbroker.coordinator.txn_config import TransactionConfig
from kbroker.coordinator.txn_coordinator import TransactionCoordinator
from kbroker.coordinator.txn_records import TxnRecord, txn_partition_for
from kbroker.coordinator.txn_result import TxnMarker, TxnResult, apply_txn_result
from kbroker.coordinator.txn_state import TopicPartition
from kbroker.internal_topics import append_records, ensure_topic, replay_topic, write_marker
from kbroker.metadata import OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC
from kbroker.wire.records import RecordBatchView, decode_records

if TYPE_CHECKING:
    from kbroker.server import Broker

logger = logging.getLogger(__name__)

R = TypeVar("R")


class TransactionRuntime:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        config = broker.config
        self.num_partitions = config.get_int("transaction.state.log.num.partitions")
        self.txn_config = TransactionConfig(
            transaction_max_timeout_ms=config.get_int("transaction.max.timeout.ms"),
            transactional_id_expiration_ms=config.get_int("transactional.id.expiration.ms"),
            transaction_abort_timed_out_transaction_cleanup_interval_ms=config.get_int(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms"
            ),
            transaction_state_log_num_partitions=self.num_partitions,
            offsets_topic_num_partitions=config.get_int("offsets.topic.num.partitions"),
        )
        self.coordinator: TransactionCoordinator | None = None

    def start(self) -> None:
        broker = self.broker
        timer = CallLaterTimer(asyncio.get_running_loop().call_later, sink=self._finish_timeout)

        def partition_exists(topic: str, partition: int) -> bool:
            t = broker.metadata.get(topic)
            return t is not None and 0 <= partition < t.num_partitions

        coordinator = TransactionCoordinator(
            now_ms=now_ms,
            timer=timer,
            allocate_producer_id=broker.metadata.allocate_producer_id,
            config=self.txn_config,
            partition_exists=partition_exists,
            group_partition_for=group_partition_for,
        )

        def on_batch(view: RecordBatchView, from_offset: int) -> None:
            for record in decode_records(view):
                if view.base_offset + record.offset_delta >= from_offset and record.key is not None:
                    coordinator.replay(record.key, record.value)

        replay_topic(broker, TRANSACTION_STATE_TOPIC, on_batch)
        self.coordinator = coordinator
        self.finish(coordinator.on_loaded())

    def close(self) -> None:
        if self.coordinator is not None:
            self.finish(self.coordinator.on_unloaded())

    # -- the contract ----------------------------------------------------------------------

    def finish(self, result: TxnResult[R]) -> R | None:
        assert self.coordinator is not None
        return apply_txn_result(
            result,
            append=self._append,
            write_marker=self._write_marker,
            markers_written=self.coordinator.markers_written,
        )

    def _finish_timeout(self, result: Result[Any]) -> None:
        assert isinstance(result, TxnResult), "transaction timeouts return TxnResult"
        self.finish(result)

    def _append(self, records: list[TxnRecord]) -> None:
        now = now_ms()
        ensure_topic(
            self.broker,
            TRANSACTION_STATE_TOPIC,
            self.num_partitions,
            {
                "cleanup.policy": "compact",
                "segment.bytes": self.broker.config.get("transaction.state.log.segment.bytes") or "104857600",
                "min.insync.replicas": "1",
            },
            now,
        )
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = defaultdict(list)
        for r in records:
            by_partition[txn_partition_for(r.transactional_id, self.num_partitions)].append((r.key, r.value))
        for partition, recs in by_partition.items():
            append_records(self.broker, TRANSACTION_STATE_TOPIC, partition, recs, now)

    def _write_marker(self, m: TxnMarker) -> None:
        written = write_marker(
            self.broker,
            m.topic,
            m.partition,
            producer_id=m.producer_id,
            producer_epoch=m.producer_epoch,
            commit=m.commit,
            coordinator_epoch=m.coordinator_epoch,
            now_ms=now_ms(),
        )
        if written and m.topic == OFFSETS_TOPIC and self.broker.groups.coordinator is not None:
            self.broker.groups.coordinator.replay_end_transaction(m.producer_id, m.commit)

    # -- checks other handlers need ----------------------------------------------------------

    def add_partition_implicitly(self, transactional_id: str, producer_id: int, producer_epoch: int, topic: str, partition: int) -> Any:
        """TV_2 (KIP-890 part 2): add ``topic``/``partition`` to the producer's transaction,
        as a Kafka partition leader's AddPartitionsToTxn v5 does for a transactional
        Produce v12+ or TxnOffsetCommit v5+; the coordinator's error code."""
        assert self.coordinator is not None
        return self.finish(
            self.coordinator.add_partitions_implicitly(
                transactional_id, producer_id, producer_epoch, [TopicPartition(topic, partition)]
            )
        )

    def verify_partition(self, transactional_id: str, producer_id: int, producer_epoch: int, topic: str, partition: int) -> Any:
        """The error code for a transactional write to ``topic``/``partition`` (NONE if it
        is part of the producer's ongoing transaction)."""
        assert self.coordinator is not None
        return self.coordinator.verify_partition(
            transactional_id, producer_id, producer_epoch, TopicPartition(topic, partition)
        )

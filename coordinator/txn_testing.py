"""A deterministic harness around ``TransactionCoordinator``: fake clock and timer, an
in-memory ``__transaction_state`` log and marker sink.

``finish`` runs the ``txn_result`` contract: records go to ``log``, markers to
``markers``, and (unless ``hold_markers`` is set) ``markers_written`` follows at once, as
kbroker's synchronous marker writes do. With ``hold_markers`` the completions wait in
``pending`` until ``release_markers()``, which is how tests observe Prepare* states.
``replayed()`` rebuilds a fresh coordinator from ``log``.
"""

from __future__ import annotations

import itertools
from typing import Any, TypeVar

from kbroker.coordinator.result import Result
from kbroker.coordinator.timer import FakeTimer, ManualClock
from kbroker.coordinator.txn_config import TransactionConfig
from kbroker.coordinator.txn_coordinator import TransactionCoordinator
from kbroker.coordinator.txn_records import TxnRecord
from kbroker.coordinator.txn_result import TxnCompletion, TxnMarker, TxnResult
from kbroker.coordinator.txn_state import TopicPartition, TransactionState
from kbroker.wire.messages.add_offsets_to_txn_request import AddOffsetsToTxnRequest
from kbroker.wire.messages.add_partitions_to_txn_request import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnTopic,
)
from kbroker.wire.messages.end_txn_request import EndTxnRequest
from kbroker.wire.messages.init_producer_id_request import InitProducerIdRequest
from kbroker.wire.messages.init_producer_id_response import InitProducerIdResponse

__all__ = ["TxnTestContext"]

T = TypeVar("T")


class TxnTestContext:
    def __init__(self, *, first_producer_id: int = 1000, **config: Any) -> None:
        self.clock = ManualClock()
        self.config = TransactionConfig(**config)
        self.log: list[TxnRecord] = []
        self.markers: list[TxnMarker] = []
        self.pending: list[TxnCompletion] = []
        self.hold_markers = False
        self.transitions: list[tuple[TransactionState, TransactionState]] = []
        self.timer = FakeTimer(self.clock, sink=self.finish)
        self._ids = itertools.count(first_producer_id)
        self.coord = self.new_coordinator(self.timer)
        self.coord.on_transition = lambda a, b: self.transitions.append((a, b))
        self.finish(self.coord.on_loaded())

    def new_coordinator(self, timer: FakeTimer) -> TransactionCoordinator:
        return TransactionCoordinator(
            now_ms=timer.clock.now_ms,
            timer=timer,
            allocate_producer_id=lambda: next(self._ids),
            config=self.config,
        )

    # -- plumbing ------------------------------------------------------------------------
    def finish(self, result: Result[T]) -> T | None:
        assert isinstance(result, TxnResult)
        assert not result.records, "the transaction coordinator writes no __consumer_offsets"
        self.log.extend(result.txn_records)
        self.markers.extend(result.markers)
        self.pending.extend(c for c in result.completions if c not in self.pending)
        if not self.hold_markers:
            self.release_markers()
        return result.response

    def release_markers(self) -> None:
        while self.pending:
            done = self.pending.pop(0)
            self.finish(
                self.coord.markers_written(
                    done.transactional_id, done.producer_id, done.producer_epoch
                )
            )

    def sleep(self, ms: int) -> None:
        self.timer.advance(ms)

    def state(self, txn_id: str) -> TransactionState | None:
        meta = self.coord.get(txn_id)
        return None if meta is None else meta.state

    def replayed(self) -> TransactionCoordinator:
        """A fresh coordinator rebuilt from every record appended so far (not loaded)."""
        fresh = self.new_coordinator(FakeTimer(ManualClock(self.clock.ms)))
        for record in self.log:
            fresh.replay(record.key, record.value)
        return fresh

    # -- requests ------------------------------------------------------------------------
    def init(
        self,
        txn_id: str,
        *,
        timeout_ms: int = 60_000,
        version: int = 4,
        producer_id: int = -1,
        producer_epoch: int = -1,
    ) -> InitProducerIdResponse:
        request = InitProducerIdRequest(
            transactional_id=txn_id,
            transaction_timeout_ms=timeout_ms,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
        )
        response = self.finish(self.coord.init_producer_id(request, api_version=version))
        assert response is not None
        return response

    def init_ok(self, txn_id: str, **kwargs: Any) -> tuple[int, int]:
        response = self.init(txn_id, **kwargs)
        assert response.error_code == 0, response
        return response.producer_id, response.producer_epoch

    def add(
        self,
        txn_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: dict[str, list[int]] | None = None,
        *,
        version: int = 3,
    ) -> int:
        """AddPartitionsToTxn (v0-v3 form); returns the single error code of all partitions."""
        partitions = partitions if partitions is not None else {"topic": [0]}
        request = AddPartitionsToTxnRequest(
            v3_and_below_transactional_id=txn_id,
            v3_and_below_producer_id=producer_id,
            v3_and_below_producer_epoch=producer_epoch,
            v3_and_below_topics=[
                AddPartitionsToTxnTopic(name=t, partitions=ps) for t, ps in partitions.items()
            ],
        )
        response = self.finish(self.coord.add_partitions_to_txn(request, api_version=version))
        assert response is not None
        codes = {
            p.partition_error_code
            for t in response.results_by_topic_v3_and_below
            for p in t.results_by_partition
        }
        assert len(codes) == 1, codes
        return codes.pop()

    def add_offsets(
        self, txn_id: str, producer_id: int, producer_epoch: int, group_id: str, *, version: int = 3
    ) -> int:
        request = AddOffsetsToTxnRequest(
            transactional_id=txn_id,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            group_id=group_id,
        )
        response = self.finish(self.coord.add_offsets_to_txn(request, api_version=version))
        assert response is not None
        return response.error_code

    def add_implicitly(
        self,
        txn_id: str,
        producer_id: int,
        producer_epoch: int,
        topic: str = "topic",
        partition: int = 0,
    ) -> int:
        """TV_2's implicit add (a transactional Produce v12+ / TxnOffsetCommit v5+)."""
        code = self.finish(
            self.coord.add_partitions_implicitly(
                txn_id, producer_id, producer_epoch, [TopicPartition(topic, partition)]
            )
        )
        assert code is not None
        return int(code)

    def end_v2(
        self, txn_id: str, producer_id: int, producer_epoch: int, commit: bool = True
    ) -> tuple[int, int, int]:
        """EndTxn v5: (error code, producer id, producer epoch) of the answer."""
        request = EndTxnRequest(
            transactional_id=txn_id,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            committed=commit,
        )
        response = self.finish(self.coord.end_txn(request, api_version=5))
        assert response is not None
        return response.error_code, response.producer_id, response.producer_epoch

    def end(
        self,
        txn_id: str,
        producer_id: int,
        producer_epoch: int,
        commit: bool = True,
        *,
        version: int = 3,
    ) -> int:
        request = EndTxnRequest(
            transactional_id=txn_id,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            committed=commit,
        )
        response = self.finish(self.coord.end_txn(request, api_version=version))
        assert response is not None
        return response.error_code

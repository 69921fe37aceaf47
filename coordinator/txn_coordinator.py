"""``TransactionCoordinator``: the one object kbroker talks to for transactions.

Usage by the runtime (see ``coordinator.txn_result`` for the TxnResult contract)::

    def finish(result):                       # append, markers, markers_written, reply
        return apply_txn_result(result, append=append_to_transaction_state,
                                write_marker=write_control_batch,
                                markers_written=coord.markers_written)

    timer = CallLaterTimer(loop.call_later, sink=finish)   # its own timer and sink
    coord = TransactionCoordinator(now_ms=wall_clock_ms, timer=timer,
                                   allocate_producer_id=metadata.allocate_producer_id,
                                   config=txn_cfg, coordinator_epoch=leader_epoch,
                                   partition_exists=metadata.has_partition)
    for key, value in records_of("__transaction_state"):   # start-up, every partition
        coord.replay(key, value)
    finish(coord.on_loaded())                 # re-sends pending markers, arms sweeps
    ...
    response = finish(coord.end_txn(req, api_version=v))   # never None: nothing parks
    ...
    finish(coord.on_unloaded())               # shutdown

``write_control_batch(m)`` appends ``build_control_batch`` to ``m.topic``/``m.partition``
(origin COORDINATOR) and, for ``__consumer_offsets``, then calls
``group_coordinator.replay_end_transaction(m.producer_id, committed=m.commit)``.

Theory of operation
-------------------
Kafka 4.x semantics for transaction versions 0/1 and, per request version, 2 (KIP-890
part 2: the epoch bumped at every EndTxn v5+, partitions added implicitly by Produce
v12+ / TxnOffsetCommit v5+; ``coordinator.txn_v2`` has its table). Each transactional id has one ``TransactionMetadata`` value (producer id,
epoch, timeout, state, partitions, timestamps); the state machine is the table in
``txn_state``. Every change is a *transition*: a new metadata value, checked against the
table, stored in memory and returned as one ``__transaction_state`` record in the
``TxnResult``. ``replay`` decodes those same records at start-up, so a replayed
coordinator equals the live one (except ``last_producer_epoch``, which Kafka does not
log either). Everything runs on one thread; nothing here blocks or does I/O.

A transaction's life::

    InitProducerId          -> Empty (epoch bumped; new producer id on exhaustion)
    AddPartitions/Offsets   -> Ongoing (start time set by the first one)
      (TV_2: add_partitions_implicitly, called by kbroker for Produce/TxnOffsetCommit)
    EndTxn(commit|abort)    -> PrepareCommit|PrepareAbort   + markers in the result
      (v5+: epoch + 1 first, and a next producer id when that exhausts the epoch)
    markers_written(...)    -> CompleteCommit|CompleteAbort (partitions cleared; TV_2
                               rotation: the next producer id with epoch 0)

The two-step end: a Prepare* record makes the decision durable and the result carries
one ``TxnMarker`` per partition; kbroker writes the control batches and then calls
``markers_written`` (see ``txn_result`` for the exact runtime contract). Until then the
transaction answers CONCURRENT_TRANSACTIONS (retriable). If the call never comes, a keyed
timer (``markers-<id>``) emits the markers again; ``on_loaded`` does the same for every
Prepare* transaction found in the log.

Fencing: InitProducerId on a transactional id bumps the epoch, so requests carrying the
old epoch get PRODUCER_FENCED (INVALID_PRODUCER_EPOCH for versions that predate
PRODUCER_FENCED: AddPartitionsToTxn/AddOffsetsToTxn/EndTxn < 2, InitProducerId < 4, as
Kafka's KafkaApis down-converts). If a transaction is Ongoing, InitProducerId and the
timeout sweep first *fence*: the epoch is bumped by one (PrepareEpochFence, transient),
the transaction aborts under that new epoch (PrepareAbort record + ABORT markers), and
InitProducerId answers CONCURRENT_TRANSACTIONS; the client's retry then finds
CompleteAbort and gets a second bump. A wrong producer id gets INVALID_PRODUCER_ID_MAPPING.
A TV_2 transaction (its last add or end came from a TV_2 request) is fenced with that
same single bump, counted as its end-of-transaction bump (next producer id when it
exhausts the epoch), so its client's late EndTxn(abort) v5 is a retry answered NONE.
Kafka picks the fence's rules by the finalized transaction.version instead; kbroker
picks them by the transaction's own client version, so a TV_0 client's transactions
are fenced exactly as before whatever is finalized.

Periodic timers (armed by ``on_loaded``): ``abort-timed-out-transactions`` (Ongoing
transactions whose start + transaction.timeout.ms has passed are fenced and aborted) and
``remove-expired-transactional-ids`` (idle ids past transactional.id.expiration.ms get a
tombstone). Requests without a transactional id (idempotent producers) stay in kbroker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from kbroker.coordinator.records import partition_for as consumer_offsets_partition_for
from kbroker.coordinator.timer import Timer
from kbroker.coordinator.txn_admin import describe_transactions, list_transactions
from kbroker.coordinator.txn_config import TransactionConfig
from kbroker.coordinator.txn_records import TxnRecord, decode_txn_record, txn_record, txn_tombstone
from kbroker.coordinator.txn_result import TxnMarker, TxnResult
from kbroker.coordinator.txn_state import (
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    TV_0,
    TV_2,
    TopicPartition,
    TransactionMetadata,
    TransactionState,
    assert_valid_transition,
    is_epoch_exhausted,
    supports_epoch_bump,
)
from kbroker.coordinator.txn_v2 import complete, completed_ids, end_txn_v2_outcome, prepare_end_v2
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.add_offsets_to_txn_request import AddOffsetsToTxnRequest
from kbroker.wire.messages.add_offsets_to_txn_response import AddOffsetsToTxnResponse
from kbroker.wire.messages.add_partitions_to_txn_request import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnTopic,
)
from kbroker.wire.messages.add_partitions_to_txn_response import (
    AddPartitionsToTxnPartitionResult,
    AddPartitionsToTxnResponse,
    AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
)
from kbroker.wire.messages.describe_transactions_request import DescribeTransactionsRequest
from kbroker.wire.messages.describe_transactions_response import DescribeTransactionsResponse
from kbroker.wire.messages.end_txn_request import EndTxnRequest
from kbroker.wire.messages.end_txn_response import EndTxnResponse
from kbroker.wire.messages.init_producer_id_request import InitProducerIdRequest
from kbroker.wire.messages.init_producer_id_response import InitProducerIdResponse
from kbroker.wire.messages.list_transactions_request import ListTransactionsRequest
from kbroker.wire.messages.list_transactions_response import ListTransactionsResponse

__all__ = [
    "ABORT_TIMED_OUT_KEY",
    "CONSUMER_OFFSETS_TOPIC",
    "REMOVE_EXPIRED_KEY",
    "TransactionCoordinator",
    "markers_key",
]

R = TypeVar("R")
S = TransactionState
E = ErrorCode
CONSUMER_OFFSETS_TOPIC = "__consumer_offsets"
ABORT_TIMED_OUT_KEY = "abort-timed-out-transactions"
REMOVE_EXPIRED_KEY = "remove-expired-transactional-ids"

# The first version of each API that knows PRODUCER_FENCED; older ones get
# INVALID_PRODUCER_EPOCH instead (KafkaApis does the same down-conversion).
PRODUCER_FENCED_SINCE = {
    "InitProducerId": 4,
    "AddPartitionsToTxn": 2,
    "AddOffsetsToTxn": 2,
    "EndTxn": 2,
}


def markers_key(transactional_id: str) -> str:
    """Timer key of the marker retry of one transaction."""
    return f"markers-{transactional_id}"


def _client_error(code: ErrorCode, api: str, api_version: int) -> ErrorCode:
    if code is E.PRODUCER_FENCED and api_version < PRODUCER_FENCED_SINCE[api]:
        return E.INVALID_PRODUCER_EPOCH
    return code


class _Effects:
    """Records and markers collected while one handler or timeout runs."""

    __slots__ = ("markers", "records")

    def __init__(self) -> None:
        self.records: list[TxnRecord] = []
        self.markers: list[TxnMarker] = []

    def result(self, response: R | None) -> TxnResult[R]:
        return TxnResult(response=response, txn_records=self.records, markers=self.markers)


class TransactionCoordinator:
    """Owns every transactional id's metadata; single-threaded (the event loop).

    ``allocate_producer_id`` returns a fresh, never reused producer id (kbroker's
    metadata store; shared with idempotent producers). ``partition_exists`` (optional)
    lets AddPartitionsToTxn answer UNKNOWN_TOPIC_OR_PARTITION as Kafka does;
    ``group_partition_for`` must be the group coordinator's own partition function.
    """

    def __init__(
        self,
        *,
        now_ms: Callable[[], int],
        timer: Timer,
        allocate_producer_id: Callable[[], int],
        config: TransactionConfig | None = None,
        coordinator_epoch: int = 0,
        partition_exists: Callable[[str, int], bool] | None = None,
        group_partition_for: Callable[[str, int], int] = consumer_offsets_partition_for,
    ) -> None:
        self.config = config or TransactionConfig()
        self.now_ms = now_ms
        self.timer = timer
        self.allocate_producer_id = allocate_producer_id
        self.coordinator_epoch = coordinator_epoch
        self.partition_exists = partition_exists
        self.group_partition_for = group_partition_for
        self.transactions: dict[str, TransactionMetadata] = {}
        self.on_transition: Callable[[TransactionState, TransactionState], None] | None = None

    # -- durability ------------------------------------------------------------------------
    def replay(self, key: bytes, value: bytes | None) -> None:
        """Apply one ``__transaction_state`` record (start-up load)."""
        txn_id, meta = decode_txn_record(key, value)
        if meta is None:
            self.transactions.pop(txn_id, None)
        else:
            self.transactions[txn_id] = meta

    def on_loaded(self) -> TxnResult[None]:
        """Call once after the last ``replay`` (also with an empty log): re-emits the
        markers of every PrepareCommit/PrepareAbort transaction and arms the periodic
        timeout and expiration timers."""
        fx = _Effects()
        for meta in sorted(self.transactions.values(), key=lambda m: m.transactional_id):
            if meta.state.is_prepared:
                self._emit_markers(meta, fx)
        self._schedule_abort_timed_out()
        self._schedule_remove_expired()
        return fx.result(None)

    def on_unloaded(self) -> TxnResult[None]:
        """Shutdown: every timer (sweeps, marker retries) is cancelled and the in-memory
        state dropped; unfinished Prepare* transactions complete after the next load."""
        self.timer.cancel(ABORT_TIMED_OUT_KEY)
        self.timer.cancel(REMOVE_EXPIRED_KEY)
        for txn_id in self.transactions:
            self.timer.cancel(markers_key(txn_id))
        self.transactions.clear()
        return TxnResult()

    def get(self, transactional_id: str) -> TransactionMetadata | None:
        return self.transactions.get(transactional_id)

    def snapshot(self) -> dict[str, TransactionMetadata]:
        """The durable part of every transactional id (what a replay must rebuild)."""
        return {k: m.durable() for k, m in sorted(self.transactions.items())}

    def _write(
        self, old: TransactionMetadata | None, new: TransactionMetadata, fx: _Effects
    ) -> None:
        """Make ``new`` current: the record, the markers of a Prepare*, the retry timer."""
        self.transactions[new.transactional_id] = new
        fx.records.append(txn_record(new))
        if old is not None and self.on_transition is not None:
            self.on_transition(old.state, new.state)
        if new.state.is_prepared:
            self._emit_markers(new, fx)
        elif old is not None and old.state.is_prepared:
            self.timer.cancel(markers_key(new.transactional_id))

    def _emit_markers(self, meta: TransactionMetadata, fx: _Effects) -> None:
        """One marker per partition, and the retry timer; a transaction without
        partitions (a TV_2 abort of nothing) has none to wait for and completes at once,
        as Kafka's marker manager completes an empty marker set."""
        if not meta.partitions:
            target = S.COMPLETE_COMMIT if meta.state is S.PREPARE_COMMIT else S.COMPLETE_ABORT
            self._write(meta, complete(meta, target, self.now_ms()), fx)
            return
        commit = meta.state is S.PREPARE_COMMIT
        for tp in sorted(meta.partitions):
            fx.markers.append(
                TxnMarker(
                    transactional_id=meta.transactional_id,
                    topic=tp.topic,
                    partition=tp.partition,
                    producer_id=meta.producer_id,
                    producer_epoch=meta.producer_epoch,
                    commit=commit,
                    coordinator_epoch=self.coordinator_epoch,
                )
            )
        txn_id = meta.transactional_id
        self.timer.schedule(
            markers_key(txn_id),
            self.config.transaction_marker_retry_backoff_ms,
            lambda: self.resend_markers(txn_id),
        )

    def resend_markers(self, transactional_id: str) -> TxnResult[None]:
        """Timer callback: markers still unconfirmed after the backoff are emitted again."""
        fx = _Effects()
        meta = self.transactions.get(transactional_id)
        if meta is not None and meta.state.is_prepared:
            self._emit_markers(meta, fx)
        return fx.result(None)

    def markers_written(
        self, transactional_id: str, producer_id: int, producer_epoch: int
    ) -> TxnResult[None]:
        """kbroker's call once every marker of the transaction is in its partition:
        PrepareCommit -> CompleteCommit, PrepareAbort -> CompleteAbort. A stale call (the
        transaction moved on, e.g. a retry after a completion) changes nothing."""
        fx = _Effects()
        meta = self.transactions.get(transactional_id)
        if (
            meta is None
            or not meta.state.is_prepared
            or meta.producer_id != producer_id
            or meta.producer_epoch != producer_epoch
        ):
            return fx.result(None)
        target = S.COMPLETE_COMMIT if meta.state is S.PREPARE_COMMIT else S.COMPLETE_ABORT
        self._write(meta, complete(meta, target, self.now_ms()), fx)
        return fx.result(None)

    # -- InitProducerId ----------------------------------------------------------------------
    def init_producer_id(
        self, request: InitProducerIdRequest, *, api_version: int
    ) -> TxnResult[InitProducerIdResponse]:
        """InitProducerId with a transactional id (v0-v5; KIP-360 fields from v3)."""
        fx = _Effects()
        code, meta = self._init_producer_id(request, api_version, fx)
        if code is not E.NONE or meta is None:
            return fx.result(
                InitProducerIdResponse(
                    error_code=_client_error(code, "InitProducerId", api_version),
                    producer_id=NO_PRODUCER_ID,
                    producer_epoch=NO_PRODUCER_EPOCH,
                )
            )
        return fx.result(
            InitProducerIdResponse(
                error_code=E.NONE, producer_id=meta.producer_id, producer_epoch=meta.producer_epoch
            )
        )

    def _init_producer_id(
        self, request: InitProducerIdRequest, api_version: int, fx: _Effects
    ) -> tuple[ErrorCode, TransactionMetadata | None]:
        txn_id = request.transactional_id
        if txn_id is None:
            raise ValueError("InitProducerId without a transactional id is kbroker's job")
        if txn_id == "":
            return E.INVALID_REQUEST, None
        timeout_ms = request.transaction_timeout_ms
        if timeout_ms <= 0 or timeout_ms > self.config.transaction_max_timeout_ms:
            return E.INVALID_TRANSACTION_TIMEOUT, None
        expected: tuple[int, int] | None = None
        if api_version >= 3:
            pid, epoch = request.producer_id, request.producer_epoch
            if (pid == NO_PRODUCER_ID) != (epoch == NO_PRODUCER_EPOCH):
                return E.INVALID_REQUEST, None
            if pid != NO_PRODUCER_ID:
                expected = (pid, epoch)
        now_ms = self.now_ms()
        stored = self.transactions.get(txn_id)
        meta = stored
        if meta is None:  # a new id: epoch -1 until the first bump makes it 0
            meta = TransactionMetadata(
                transactional_id=txn_id,
                producer_id=self.allocate_producer_id(),
                producer_epoch=NO_PRODUCER_EPOCH,
                txn_timeout_ms=timeout_ms,
                state=S.EMPTY,
            )
        if expected is not None and not _is_valid_producer_id(meta, *expected):
            return E.PRODUCER_FENCED, None
        if meta.state.is_prepared:
            return E.CONCURRENT_TRANSACTIONS, None
        if meta.state is S.ONGOING:
            self._fence_and_abort(meta, fx)
            return E.CONCURRENT_TRANSACTIONS, None
        if not meta.state.can_start_transaction:  # Dead / PrepareEpochFence: never stored
            raise AssertionError(f"{txn_id} found in {meta.state}")
        changes: dict[str, object] = {
            "txn_timeout_ms": timeout_ms,
            "partitions": frozenset(),
            "txn_start_timestamp_ms": -1,
            "txn_last_update_timestamp_ms": now_ms,
        }
        if meta.is_epoch_exhausted and (expected is None or expected[1] == meta.producer_epoch):
            new_epoch = 0  # rotate: a new producer id
            changes["producer_id"] = self.allocate_producer_id()
            changes["last_producer_epoch"] = (
                meta.producer_epoch if expected is not None else NO_PRODUCER_EPOCH
            )
        elif expected is None:  # a first start or an old client: bump to fence the others
            new_epoch = meta.producer_epoch + 1
            changes["last_producer_epoch"] = NO_PRODUCER_EPOCH
        elif expected[1] == meta.producer_epoch or meta.producer_epoch == NO_PRODUCER_EPOCH:
            new_epoch = meta.producer_epoch + 1  # KIP-360 recovery; nobody else initialised
            changes["last_producer_epoch"] = meta.producer_epoch
        elif expected[1] == meta.last_producer_epoch:
            new_epoch = meta.producer_epoch  # a retry of a bump whose answer was lost
        else:
            return E.PRODUCER_FENCED, None
        new = meta.transit(S.EMPTY, producer_epoch=new_epoch, **changes)
        self._write(stored, new, fx)
        return E.NONE, new

    def _fence_and_abort(self, meta: TransactionMetadata, fx: _Effects) -> None:
        """Ongoing -> PrepareEpochFence (epoch + 1, in memory) -> PrepareAbort (logged).
        A TV_2 transaction's PrepareAbort counts that bump as its end-of-transaction bump
        (``prepare_end_v2``: a next producer id if it exhausts the epoch)."""
        if meta.producer_epoch >= 32767:
            raise AssertionError(
                f"cannot fence {meta.transactional_id}: epoch {meta.producer_epoch}"
            )
        if supports_epoch_bump(meta.client_transaction_version):
            fenced = meta.transit(S.PREPARE_EPOCH_FENCE)
            if self.on_transition is not None:
                self.on_transition(meta.state, fenced.state)
            next_id = self.allocate_producer_id() if meta.is_epoch_exhausted else NO_PRODUCER_ID
            aborting = prepare_end_v2(
                fenced,
                S.PREPARE_ABORT,
                now_ms=self.now_ms(),
                next_producer_id=next_id,
                no_partition_added=False,
            )
            self._write(fenced, aborting, fx)
            return
        fenced = meta.transit(
            S.PREPARE_EPOCH_FENCE,
            producer_epoch=meta.producer_epoch + 1,
            last_producer_epoch=NO_PRODUCER_EPOCH,
        )
        if self.on_transition is not None:
            self.on_transition(meta.state, fenced.state)
        aborting = fenced.transit(S.PREPARE_ABORT, txn_last_update_timestamp_ms=self.now_ms())
        self._write(fenced, aborting, fx)

    # -- AddPartitionsToTxn / AddOffsetsToTxn -------------------------------------------------
    def add_partitions_to_txn(
        self, request: AddPartitionsToTxnRequest, *, api_version: int
    ) -> TxnResult[AddPartitionsToTxnResponse]:
        """v0-v3: one transaction (the client form, TV_0); v4+: batched (sent by brokers),
        with VerifyOnly; a v4+ add is TV_2's implicit add (Kafka: ``version > 3``)."""
        fx = _Effects()
        response = AddPartitionsToTxnResponse()
        if api_version <= 3:
            response.results_by_topic_v3_and_below = self._add_partitions_for_one(
                request.v3_and_below_transactional_id,
                request.v3_and_below_producer_id,
                request.v3_and_below_producer_epoch,
                request.v3_and_below_topics,
                api_version,
                fx,
                TV_0,
            )
            return fx.result(response)
        for txn in request.transactions:
            if txn.verify_only:
                topic_results = self._verify_partitions(
                    txn.transactional_id, txn.producer_id, txn.producer_epoch, txn.topics
                )
            else:
                topic_results = self._add_partitions_for_one(
                    txn.transactional_id,
                    txn.producer_id,
                    txn.producer_epoch,
                    txn.topics,
                    api_version,
                    fx,
                    TV_2,
                )
            response.results_by_transaction.append(
                AddPartitionsToTxnResult(
                    transactional_id=txn.transactional_id, topic_results=topic_results
                )
            )
        return fx.result(response)

    def _add_partitions_for_one(
        self,
        txn_id: str,
        producer_id: int,
        producer_epoch: int,
        topics: list[AddPartitionsToTxnTopic],
        api_version: int,
        fx: _Effects,
        client_transaction_version: int,
    ) -> list[AddPartitionsToTxnTopicResult]:
        wanted = [TopicPartition(t.name, p) for t in topics for p in t.partitions]
        unknown = set()
        if self.partition_exists is not None:
            unknown = {tp for tp in wanted if not self.partition_exists(tp.topic, tp.partition)}
        if unknown:  # nothing is added; the known partitions were not attempted
            codes = {
                tp: E.UNKNOWN_TOPIC_OR_PARTITION if tp in unknown else E.OPERATION_NOT_ATTEMPTED
                for tp in wanted
            }
        else:
            code = self._add_partitions(
                txn_id, producer_id, producer_epoch, wanted, fx, client_transaction_version
            )
            code = _client_error(code, "AddPartitionsToTxn", api_version)
            codes = dict.fromkeys(wanted, code)
        return _topic_results(topics, codes)

    def _verify_partitions(
        self,
        txn_id: str,
        producer_id: int,
        producer_epoch: int,
        topics: list[AddPartitionsToTxnTopic],
    ) -> list[AddPartitionsToTxnTopicResult]:
        """VerifyOnly (v4+, sent by brokers): is each partition already in the transaction?"""
        codes = {
            TopicPartition(t.name, p): self.verify_partition(
                txn_id, producer_id, producer_epoch, TopicPartition(t.name, p)
            )
            for t in topics
            for p in t.partitions
        }
        return _topic_results(topics, codes)

    def verify_partition(
        self, transactional_id: str, producer_id: int, producer_epoch: int, tp: TopicPartition
    ) -> ErrorCode:
        """Is ``tp`` part of this producer's Ongoing transaction? (KIP-890 part 1's check;
        kbroker calls it before a TxnOffsetCommit with the group's ``__consumer_offsets``
        partition, and may call it before transactional Produce.) NONE, or
        INVALID_PRODUCER_ID_MAPPING / PRODUCER_FENCED / INVALID_TXN_STATE."""
        meta = self.transactions.get(transactional_id)
        code = self._check_producer(meta, producer_id, producer_epoch)
        if code is not E.NONE or meta is None:
            return code
        if meta.state is not S.ONGOING or tp not in meta.partitions:
            return E.INVALID_TXN_STATE
        return E.NONE

    def add_offsets_to_txn(
        self, request: AddOffsetsToTxnRequest, *, api_version: int
    ) -> TxnResult[AddOffsetsToTxnResponse]:
        """Adds the group's ``__consumer_offsets`` partition to the transaction."""
        fx = _Effects()
        partition = self.group_partition_for(
            request.group_id, self.config.offsets_topic_num_partitions
        )
        code = self._add_partitions(
            request.transactional_id,
            request.producer_id,
            request.producer_epoch,
            [TopicPartition(CONSUMER_OFFSETS_TOPIC, partition)],
            fx,
            TV_0,  # Kafka passes TV_0 for AddOffsetsToTxn whatever its version
        )
        return fx.result(
            AddOffsetsToTxnResponse(error_code=_client_error(code, "AddOffsetsToTxn", api_version))
        )

    def add_partitions_implicitly(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[TopicPartition],
    ) -> TxnResult[ErrorCode]:
        """TV_2's implicit add (KIP-890 part 2): what a partition leader's AddPartitionsToTxn
        v5 (not VerifyOnly) does for a transactional Produce v12+ or a TxnOffsetCommit v5+.
        The response is the coordinator's code: NONE, INVALID_PRODUCER_ID_MAPPING,
        PRODUCER_FENCED, CONCURRENT_TRANSACTIONS (the previous transaction's markers are
        pending) or INVALID_REQUEST; the caller maps it to its API's codes."""
        fx = _Effects()
        code = self._add_partitions(
            transactional_id, producer_id, producer_epoch, list(partitions), fx, TV_2
        )
        return fx.result(code)

    def _check_producer(
        self, meta: TransactionMetadata | None, producer_id: int, producer_epoch: int
    ) -> ErrorCode:
        if meta is None or meta.producer_id != producer_id:
            return E.INVALID_PRODUCER_ID_MAPPING
        if meta.producer_epoch != producer_epoch:
            return E.PRODUCER_FENCED
        return E.NONE

    def _add_partitions(
        self,
        txn_id: str,
        producer_id: int,
        producer_epoch: int,
        wanted: Iterable[TopicPartition],
        fx: _Effects,
        client_transaction_version: int,
    ) -> ErrorCode:
        if not txn_id:
            return E.INVALID_REQUEST
        meta = self.transactions.get(txn_id)
        code = self._check_producer(meta, producer_id, producer_epoch)
        if code is not E.NONE or meta is None:
            return code
        added = frozenset(wanted)
        if meta.state.is_prepared:
            return E.CONCURRENT_TRANSACTIONS
        if meta.state is S.ONGOING and added <= meta.partitions:
            return E.NONE  # already in: answered without a write
        now_ms = self.now_ms()
        start_ms = now_ms if meta.state.can_start_transaction else meta.txn_start_timestamp_ms
        new = meta.transit(
            S.ONGOING,
            partitions=meta.partitions | added,
            txn_start_timestamp_ms=start_ms,
            txn_last_update_timestamp_ms=now_ms,
            client_transaction_version=client_transaction_version,
        )
        self._write(meta, new, fx)
        return E.NONE

    # -- EndTxn ------------------------------------------------------------------------------
    def end_txn(self, request: EndTxnRequest, *, api_version: int) -> TxnResult[EndTxnResponse]:
        """EndTxn v0-v4 (TV_0: the epoch stays) and v5+ (TV_2: ``coordinator.txn_v2``; the
        answer carries the producer id and epoch the client continues with)."""
        fx = _Effects()
        if api_version >= 5:
            return self._end_txn_v2(request, fx)
        code = self._end_txn(
            request.transactional_id,
            request.producer_id,
            request.producer_epoch,
            request.committed,
            fx,
        )
        return fx.result(EndTxnResponse(error_code=_client_error(code, "EndTxn", api_version)))

    def _end_txn_v2(self, request: EndTxnRequest, fx: _Effects) -> TxnResult[EndTxnResponse]:
        response = EndTxnResponse(error_code=E.NONE)
        meta = self.transactions.get(request.transactional_id)
        if not request.transactional_id:
            response.error_code = E.INVALID_REQUEST
        elif meta is None:
            response.error_code = E.INVALID_PRODUCER_ID_MAPPING
        else:
            outcome = end_txn_v2_outcome(
                meta, request.producer_id, request.producer_epoch, request.committed
            )
            if isinstance(outcome, TransactionState):
                next_id = self.allocate_producer_id() if meta.is_epoch_exhausted else NO_PRODUCER_ID
                new = prepare_end_v2(
                    meta,
                    outcome,
                    now_ms=self.now_ms(),
                    next_producer_id=next_id,
                    no_partition_added=meta.state is not S.ONGOING,
                )
                self._write(meta, new, fx)
                # kbroker answers after the markers: the ids of the completed state
                response.producer_id, response.producer_epoch = completed_ids(new)
            elif outcome is E.NONE:  # a retry of an answered end: the current ids
                response.producer_id, response.producer_epoch = (
                    meta.producer_id,
                    meta.producer_epoch,
                )
            else:
                response.error_code = outcome
        return fx.result(response)

    def _end_txn(
        self, txn_id: str, producer_id: int, producer_epoch: int, commit: bool, fx: _Effects
    ) -> ErrorCode:
        if not txn_id:
            return E.INVALID_REQUEST
        meta = self.transactions.get(txn_id)
        code = self._check_producer(meta, producer_id, producer_epoch)
        if code is not E.NONE or meta is None:
            return code
        match meta.state:
            case S.ONGOING:
                target = S.PREPARE_COMMIT if commit else S.PREPARE_ABORT
                new = meta.transit(target, txn_last_update_timestamp_ms=self.now_ms())
                self._write(meta, new, fx)
                return E.NONE
            case S.COMPLETE_COMMIT:
                return E.NONE if commit else E.INVALID_TXN_STATE
            case S.COMPLETE_ABORT:
                return E.INVALID_TXN_STATE if commit else E.NONE
            case S.PREPARE_COMMIT:
                return E.CONCURRENT_TRANSACTIONS if commit else E.INVALID_TXN_STATE
            case S.PREPARE_ABORT:
                return E.INVALID_TXN_STATE if commit else E.CONCURRENT_TRANSACTIONS
            case S.EMPTY:
                return E.INVALID_TXN_STATE
            case _:
                raise AssertionError(f"{txn_id} found in {meta.state}")

    # -- timers ------------------------------------------------------------------------------
    def _schedule_abort_timed_out(self) -> None:
        self.timer.schedule(
            ABORT_TIMED_OUT_KEY,
            self.config.transaction_abort_timed_out_transaction_cleanup_interval_ms,
            self.abort_timed_out_transactions,
        )

    def _schedule_remove_expired(self) -> None:
        self.timer.schedule(
            REMOVE_EXPIRED_KEY,
            self.config.transaction_remove_expired_transaction_cleanup_interval_ms,
            self.remove_expired_transactional_ids,
        )

    def abort_timed_out_transactions(self) -> TxnResult[None]:
        """Fence and abort every Ongoing transaction whose start + timeout has passed."""
        fx = _Effects()
        now_ms = self.now_ms()
        for txn_id in sorted(self.transactions):
            meta = self.transactions[txn_id]
            if (
                meta.state is S.ONGOING
                and meta.txn_start_timestamp_ms + meta.txn_timeout_ms < now_ms
            ):
                self._fence_and_abort(meta, fx)
        self._schedule_abort_timed_out()
        return fx.result(None)

    def remove_expired_transactional_ids(self) -> TxnResult[None]:
        """Tombstone every id without a transaction in progress, idle for too long."""
        fx = _Effects()
        deadline_ms = self.now_ms() - self.config.transactional_id_expiration_ms
        for txn_id in sorted(self.transactions):
            meta = self.transactions[txn_id]
            if (
                meta.state.can_start_transaction
                and meta.txn_last_update_timestamp_ms <= deadline_ms
            ):
                assert_valid_transition(meta.state, S.DEAD)
                if self.on_transition is not None:
                    self.on_transition(meta.state, S.DEAD)
                del self.transactions[txn_id]
                fx.records.append(txn_tombstone(txn_id))
        self._schedule_remove_expired()
        return fx.result(None)

    # -- admin (coordinator.txn_admin) ---------------------------------------------------------
    def describe_transactions(
        self, request: DescribeTransactionsRequest, *, api_version: int = 0
    ) -> TxnResult[DescribeTransactionsResponse]:
        return TxnResult(response=describe_transactions(self.transactions, request))

    def list_transactions(
        self, request: ListTransactionsRequest, *, api_version: int
    ) -> TxnResult[ListTransactionsResponse]:
        """State and producer-id filters; v1 duration filter; v2 id pattern (full match)."""
        return TxnResult(
            response=list_transactions(self.transactions, request, api_version, self.now_ms())
        )


def _is_valid_producer_id(meta: TransactionMetadata, producer_id: int, producer_epoch: int) -> bool:
    """KIP-360: may a v3+ InitProducerId naming (producer_id, epoch) continue this id?

    Yes when the metadata is brand new (epoch -1: recovery from UNKNOWN_PRODUCER_ID), when
    the id is the current one (the epoch is checked next), or when it is the id before a
    rotation and its epoch was exhausted (a retry of the rotating call)."""
    return (
        meta.producer_epoch == NO_PRODUCER_EPOCH
        or producer_id == meta.producer_id
        or (producer_id == meta.prev_producer_id and is_epoch_exhausted(producer_epoch))
    )


def _topic_results(
    topics: list[AddPartitionsToTxnTopic], codes: dict[TopicPartition, ErrorCode]
) -> list[AddPartitionsToTxnTopicResult]:
    return [
        AddPartitionsToTxnTopicResult(
            name=t.name,
            results_by_partition=[
                AddPartitionsToTxnPartitionResult(
                    partition_index=p, partition_error_code=codes[TopicPartition(t.name, p)]
                )
                for p in t.partitions
            ],
        )
        for t in topics
    ]

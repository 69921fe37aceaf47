"""Hypothesis over (state, request): every answer is a legal transition or a Kafka error.

Dead and PrepareEpochFence never persist between requests (the first is removed with its
tombstone, the second becomes PrepareAbort in the same step), so the starting states are
"unknown id" plus the six stable ones. A rule-based machine then runs long random
histories over two transactional ids and checks the same invariants after every step.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from kbroker.coordinator.txn_coordinator import PRODUCER_FENCED_SINCE
from kbroker.coordinator.txn_state import (
    ALLOWED_PREVIOUS,
    TopicPartition,
    TransactionMetadata,
    supports_epoch_bump,
)
from kbroker.coordinator.txn_state import TransactionState as S
from kbroker.coordinator.txn_testing import TxnTestContext
from kbroker.wire.errors import ErrorCode as E

TXN = "txn"
START_STATES = [
    None,
    S.EMPTY,
    S.ONGOING,
    S.PREPARE_COMMIT,
    S.PREPARE_ABORT,
    S.COMPLETE_COMMIT,
    S.COMPLETE_ABORT,
]
FENCING = {E.PRODUCER_FENCED, E.INVALID_PRODUCER_EPOCH}
ALLOWED_CODES = {
    "init": {E.NONE, E.CONCURRENT_TRANSACTIONS, E.INVALID_REQUEST} | FENCING,
    "add": {E.NONE, E.CONCURRENT_TRANSACTIONS, E.INVALID_PRODUCER_ID_MAPPING} | FENCING,
    "add_offsets": {E.NONE, E.CONCURRENT_TRANSACTIONS, E.INVALID_PRODUCER_ID_MAPPING} | FENCING,
    "add_implicit": {E.NONE, E.CONCURRENT_TRANSACTIONS, E.INVALID_PRODUCER_ID_MAPPING}
    | {E.PRODUCER_FENCED},
    "end": {E.NONE, E.CONCURRENT_TRANSACTIONS, E.INVALID_PRODUCER_ID_MAPPING, E.INVALID_TXN_STATE}
    | FENCING,
}
API_NAME = {
    "init": "InitProducerId",
    "add": "AddPartitionsToTxn",
    "add_offsets": "AddOffsetsToTxn",
    "add_implicit": "AddPartitionsToTxn",  # the v5 add a partition leader makes (TV_2)
    "end": "EndTxn",
}


def reach(state: S | None) -> TxnTestContext:
    ctx = TxnTestContext()
    if state is None:
        return ctx
    pid, epoch = ctx.init_ok(TXN)
    if state is S.EMPTY:
        return ctx
    assert ctx.add(TXN, pid, epoch, {"t": [0]}) == E.NONE
    if state is S.ONGOING:
        return ctx
    ctx.hold_markers = state.is_prepared
    assert ctx.end(TXN, pid, epoch, commit=state in (S.PREPARE_COMMIT, S.COMPLETE_COMMIT)) == E.NONE
    assert ctx.state(TXN) is state
    return ctx


def ids_for(ctx: TxnTestContext, txn_id: str, variant: str) -> tuple[int, int]:
    meta = ctx.coord.get(txn_id)
    pid, epoch = (meta.producer_id, meta.producer_epoch) if meta else (1000, 0)
    return {
        "current": (pid, epoch),
        "stale": (pid, max(0, epoch - 1)),
        "future": (pid, epoch + 1),
        "other-pid": (pid + 77, epoch),
        "none": (-1, -1),
    }[variant]


def check_invariants(ctx: TxnTestContext) -> None:
    for meta in ctx.coord.transactions.values():
        check_metadata(meta)
    for before, after in ctx.transitions:
        assert before in ALLOWED_PREVIOUS[after], (before, after)
    fresh = ctx.replayed()
    assert fresh.snapshot() == ctx.coord.snapshot()


def check_metadata(meta: TransactionMetadata) -> None:
    assert meta.state not in (S.DEAD, S.PREPARE_EPOCH_FENCE)
    assert 0 <= meta.producer_epoch <= 32767
    if meta.state is S.PREPARE_ABORT and supports_epoch_bump(meta.client_transaction_version):
        pass  # a TV_2 client may abort a transaction that never added a partition
    else:
        assert bool(meta.partitions) == (
            meta.state in (S.ONGOING, S.PREPARE_COMMIT, S.PREPARE_ABORT)
        )
    if meta.next_producer_id != -1:
        assert meta.state.is_prepared and meta.producer_epoch == 32767
    assert (meta.txn_start_timestamp_ms == -1) == (meta.state is S.EMPTY)


REQUEST = st.one_of(
    st.tuples(
        st.just("init"),
        st.integers(0, 5),
        st.sampled_from(["none", "current", "stale", "other-pid", "future"]),
        st.booleans(),
    ),
    st.tuples(
        st.just("add"),
        st.integers(0, 3),
        st.sampled_from(["current", "stale", "other-pid", "future"]),
        st.booleans(),
    ),
    st.tuples(
        st.just("add_implicit"),
        st.just(5),
        st.sampled_from(["current", "stale", "other-pid", "future"]),
        st.booleans(),
    ),
    st.tuples(
        st.just("add_offsets"),
        st.integers(0, 3),
        st.sampled_from(["current", "stale", "other-pid"]),
        st.booleans(),
    ),
    st.tuples(
        st.just("end"),
        st.integers(0, 5),
        st.sampled_from(["current", "stale", "other-pid", "future"]),
        st.booleans(),
    ),
    st.tuples(
        st.just("markers_written"), st.just(0), st.sampled_from(["current", "stale"]), st.booleans()
    ),
    st.tuples(
        st.just("sleep"), st.sampled_from([1_000, 10_000, 70_000]), st.just("none"), st.booleans()
    ),
)


def send(ctx: TxnTestContext, txn_id: str, request: tuple[str, int, str, bool]) -> int | None:
    kind, version, variant, flag = request
    pid, epoch = ids_for(ctx, txn_id, variant)
    if kind == "init":
        if version < 3:
            pid, epoch = -1, -1
        return ctx.init(txn_id, version=version, producer_id=pid, producer_epoch=epoch).error_code
    if kind == "add":
        return ctx.add(
            txn_id, pid, epoch, {"t": [0], "u": [1]} if flag else {"t": [0]}, version=version
        )
    if kind == "add_offsets":
        return ctx.add_offsets(txn_id, pid, epoch, "group", version=version)
    if kind == "add_implicit":
        tp = TopicPartition("t", 1 if flag else 0)
        return ctx.finish(ctx.coord.add_partitions_implicitly(txn_id, pid, epoch, [tp]))
    if kind == "end":
        return ctx.end(txn_id, pid, epoch, commit=flag, version=version)
    if kind == "markers_written":
        for done in list(ctx.pending):
            if done.transactional_id == txn_id and variant == "current":
                ctx.pending.remove(done)
                ctx.finish(ctx.coord.markers_written(txn_id, done.producer_id, done.producer_epoch))
        return None
    ctx.sleep(version)
    return None


@settings(max_examples=300, deadline=None)
@given(state=st.sampled_from(START_STATES), request=REQUEST)
def test_every_state_request_pair_is_a_legal_transition_or_an_error(
    state: S | None, request: tuple[str, int, str, bool]
) -> None:
    ctx = reach(state)
    ctx.hold_markers = True
    before = ctx.coord.get(TXN)
    records, transitions = len(ctx.log), len(ctx.transitions)
    code = send(ctx, TXN, request)
    kind, version = request[0], request[1]
    after = ctx.coord.get(TXN)
    check_invariants(ctx)
    if code is None:
        return
    assert code in ALLOWED_CODES[kind], (state, request, E(code))
    if version < PRODUCER_FENCED_SINCE[API_NAME[kind]]:
        assert code != E.PRODUCER_FENCED
    fenced_init = kind == "init" and state is S.ONGOING and code == E.CONCURRENT_TRANSACTIONS
    if code != E.NONE and not fenced_init:
        assert after == before and len(ctx.log) == records, "an error changes nothing"
    if fenced_init:
        assert after is not None and before is not None
        assert after.state is S.PREPARE_ABORT and after.producer_epoch == before.producer_epoch + 1
        assert ctx.transitions[transitions:] == [
            (S.ONGOING, S.PREPARE_EPOCH_FENCE),
            (S.PREPARE_EPOCH_FENCE, S.PREPARE_ABORT),
        ]
    if (
        code == E.NONE
        and before is not None
        and after is not None
        and after.state is not before.state
    ):
        # one request may take several legal steps (a TV_2 abort of nothing completes at
        # once: Empty -> PrepareAbort -> CompleteAbort); they chain from before to after
        steps = ctx.transitions[transitions:]
        assert steps and steps[0][0] is before.state and steps[-1][1] is after.state, steps
        assert all(a[1] is b[0] for a, b in zip(steps, steps[1:], strict=False)), steps
        assert all(a in ALLOWED_PREVIOUS[b] for a, b in steps), steps


class TransactionHistories(RuleBasedStateMachine):
    """Random interleavings over two ids; markers are sometimes held back."""

    def __init__(self) -> None:
        super().__init__()
        self.ctx = TxnTestContext(
            transactional_id_expiration_ms=200_000,
            transaction_remove_expired_transaction_cleanup_interval_ms=50_000,
        )

    @rule(txn_id=st.sampled_from(["a", "b"]), request=REQUEST)
    def request(self, txn_id: str, request: tuple[str, int, str, bool]) -> None:
        code = send(self.ctx, txn_id, request)
        if code is not None:
            assert code in ALLOWED_CODES[request[0]], (request, E(code))

    @rule(hold=st.booleans())
    def toggle_marker_holding(self, hold: bool) -> None:
        self.ctx.hold_markers = hold
        if not hold:
            self.ctx.release_markers()

    @rule()
    def restart(self) -> None:
        """Reload the log into a new coordinator and finish its on_loaded."""
        ctx = self.ctx
        ctx.timer = type(ctx.timer)(ctx.clock, sink=ctx.finish)
        fresh = ctx.new_coordinator(ctx.timer)
        for record in ctx.log:
            fresh.replay(record.key, record.value)
        fresh.on_transition = ctx.coord.on_transition
        ctx.coord = fresh
        ctx.pending.clear()
        ctx.finish(fresh.on_loaded())

    @invariant()
    def consistent(self) -> None:
        check_invariants(self.ctx)


TestTransactionHistories = TransactionHistories.TestCase
TestTransactionHistories.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)

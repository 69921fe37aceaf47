"""Hypothesis state machine over share groups on the fake clock: members join, fetch,
acknowledge (accept/release/reject), go silent, leave, and the broker restarts.

Invariants: a record is delivered at most ``group.share.delivery.count.limit`` times, and
the count the broker reports is the true one; a fetch never hands out a record another
member holds; an accepted or rejected record is never delivered again; the start offset
never moves back."""

from __future__ import annotations

from uuid import UUID

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from kbroker.coordinator.share_config import ShareConfig
from kbroker.coordinator.share_partition import AcknowledgeType, RecordState
from kbroker.coordinator.share_testing import ShareTestContext
from kbroker.wire.errors import ErrorCode

LIMIT = 3
LOCK_MS = 2_000
MEMBERS = ("m0", "m1", "m2")


class ShareGroupMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ctx = ShareTestContext(
            ShareConfig(
                group_share_delivery_count_limit=LIMIT,
                group_share_record_lock_duration_ms=LOCK_MS,
                group_share_partition_max_record_locks=20,
            )
        )
        self.tid: UUID = self.ctx.create_topic("t", 1)
        self.epochs: dict[str, int] = {}
        self.deliveries: dict[int, int] = {}
        self.finished: set[int] = set()
        self.held: dict[str, set[int]] = {m: set() for m in MEMBERS}
        self.last_start = 0

    def _part(self):  # type: ignore[no-untyped-def]
        return self.ctx.share.partition("g", self.tid, 0)

    @rule(member=st.sampled_from(MEMBERS))
    def join(self, member: str) -> None:
        if member in self.epochs:
            return
        response = self.ctx.heartbeat("g", member, 0, ["t"])
        assert response.error_code == ErrorCode.NONE
        self.epochs[member] = response.member_epoch

    @rule(member=st.sampled_from(MEMBERS))
    def heartbeat(self, member: str) -> None:
        if member not in self.epochs:
            return
        response = self.ctx.heartbeat("g", member, self.epochs[member])
        if response.error_code == ErrorCode.NONE:
            self.epochs[member] = response.member_epoch
        else:  # fenced or expired: it rejoins later
            del self.epochs[member]

    @rule(member=st.sampled_from(MEMBERS))
    def leave(self, member: str) -> None:
        if member not in self.epochs:
            return
        self.ctx.heartbeat("g", member, -1)
        del self.epochs[member]

    @rule(count=st.integers(1, 6))
    def produce(self, count: int) -> None:
        self.ctx.produce(self.tid, 0, count)

    @rule(member=st.sampled_from(MEMBERS), max_records=st.integers(1, 8))
    def fetch(self, member: str, max_records: int) -> None:
        if member not in self.epochs:
            return
        part = self._part()
        before = (
            {} if part is None else {o: (r.state, r.member_id) for o, r in part.in_flight.items()}
        )
        for first, last, count in self.ctx.fetch("g", member, self.tid, 0, max_records):
            for offset in range(first, last + 1):
                state = before.get(offset, (RecordState.AVAILABLE, None))
                assert state[0] is RecordState.AVAILABLE, (
                    f"offset {offset} handed out while {state}"
                )
                assert offset not in self.finished
                self.deliveries[offset] = self.deliveries.get(offset, 0) + 1
                assert self.deliveries[offset] == count
                assert count <= LIMIT
                self.held[member].add(offset)

    @rule(
        member=st.sampled_from(MEMBERS),
        kind=st.sampled_from(
            [AcknowledgeType.ACCEPT, AcknowledgeType.RELEASE, AcknowledgeType.REJECT]
        ),
        data=st.data(),
    )
    def acknowledge(self, member: str, kind: AcknowledgeType, data: st.DataObject) -> None:
        if not self.held[member]:
            return
        offset = data.draw(st.sampled_from(sorted(self.held[member])))
        part = self._part()
        assert part is not None
        record = part.in_flight.get(offset)
        still_mine = (
            record is not None
            and record.state is RecordState.ACQUIRED
            and record.member_id == member
        )
        code = self.ctx.ack("g", member, self.tid, 0, offset, offset, int(kind))
        self.held[member].discard(offset)
        assert code == (ErrorCode.NONE if still_mine else ErrorCode.INVALID_RECORD_STATE)
        if still_mine and kind is not AcknowledgeType.RELEASE:
            self.finished.add(offset)

    @rule(member=st.sampled_from(MEMBERS))
    def release_all(self, member: str) -> None:
        """RELEASE every record the member holds (what a consumer that closes does)."""
        part = self._part()
        for offset in sorted(self.held[member]):
            assert part is not None
            record = part.in_flight.get(offset)
            mine = (
                record is not None
                and record.state is RecordState.ACQUIRED
                and record.member_id == member
            )
            code = self.ctx.ack(
                "g", member, self.tid, 0, offset, offset, int(AcknowledgeType.RELEASE)
            )
            assert code == (ErrorCode.NONE if mine else ErrorCode.INVALID_RECORD_STATE)
        self.held[member].clear()

    @rule(ms=st.sampled_from([100, 1_000, LOCK_MS, 50_000]))
    def sleep(self, ms: int) -> None:
        self.ctx.sleep(ms)

    @rule()
    def restart(self) -> None:
        self.ctx = self.ctx.restarted()

    @invariant()
    def partition_is_consistent(self) -> None:
        part = self._part()
        if part is None:
            return
        assert part.start_offset >= self.last_start
        self.last_start = part.start_offset
        for offset, record in part.in_flight.items():
            assert part.start_offset <= offset < part.end_offset
            assert record.delivery_count <= LIMIT
            assert (record.state is RecordState.ACQUIRED) == (record.member_id is not None)


ShareGroupMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=50, deadline=None
)
TestShareGroupMachine = ShareGroupMachine.TestCase

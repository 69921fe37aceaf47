"""One share-partition: the in-flight records of one share group on one topic partition.

Theory of operation (KIP-932).  Every record of the partition at or above
``start_offset`` is in one of four states; below it, every record is done (acknowledged
or archived) and forgotten.  ``end_offset`` is the first offset never acquired: records
from there to the log end are AVAILABLE with a delivery count of 0 and are not stored.
Records in ``[start_offset, end_offset)`` that are not done live in ``in_flight``.

A fetch acquires AVAILABLE records for one member: their delivery count goes up by one and
an acquisition lock holds them for the lock duration.  The member then acknowledges each
one (ACCEPT: done; RELEASE: available again; REJECT: archived) or its lock expires (available
again) or the member leaves (available again, at once).  A record that becomes available
after ``delivery_count_limit`` deliveries is archived instead: no record is delivered more
than ``delivery_count_limit`` times.  When the lowest in-flight records are done,
``start_offset`` moves up past them.

Only ACQUIRED records have an owner and a lock deadline; :data:`TRANSITIONS` is the whole
state machine and :meth:`SharePartition._move` asserts every change against it.

Durable form: :meth:`SharePartition.state_batches` lists the in-flight records as ranges of
(state, delivery count) with ACQUIRED written as AVAILABLE (a lock does not survive a
restart; the delivery count does), which is what Kafka's share coordinator stores in
``ShareSnapshot`` records.  :meth:`SharePartition.from_state` rebuilds a partition from them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = [
    "AcknowledgeType",
    "RecordState",
    "SharePartition",
    "StateBatch",
]

UNINITIALIZED_OFFSET = -1


class RecordState(enum.IntEnum):
    """Kafka's RecordState values (also the DeliveryState of ShareSnapshot batches)."""

    AVAILABLE = 0
    ACQUIRED = 1
    ACKNOWLEDGED = 2
    ARCHIVED = 4


class AcknowledgeType(enum.IntEnum):
    """The acknowledge types of ShareFetch/ShareAcknowledge."""

    GAP = 0
    ACCEPT = 1
    RELEASE = 2
    REJECT = 3
    RENEW = 4


class Event(enum.Enum):
    ACQUIRE = "acquire"
    ACCEPT = "accept"
    RELEASE = "release"  # by the member, by its lock expiring, or by it leaving
    REJECT = "reject"  # also GAP: an offset with no record
    EXHAUST = "exhaust"  # released after delivery_count_limit deliveries
    RENEW = "renew"  # the lock is extended (KIP-1222)


S = RecordState
# (state, event) -> next state; anything else is refused (INVALID_RECORD_STATE).
TRANSITIONS: dict[tuple[RecordState, Event], RecordState] = {
    (S.AVAILABLE, Event.ACQUIRE): S.ACQUIRED,
    (S.ACQUIRED, Event.ACCEPT): S.ACKNOWLEDGED,
    (S.ACQUIRED, Event.RELEASE): S.AVAILABLE,
    (S.ACQUIRED, Event.EXHAUST): S.ARCHIVED,
    (S.ACQUIRED, Event.REJECT): S.ARCHIVED,
    (S.ACQUIRED, Event.RENEW): S.ACQUIRED,
}
DONE = frozenset({S.ACKNOWLEDGED, S.ARCHIVED})

_ACK_EVENTS = {
    AcknowledgeType.GAP: Event.REJECT,
    AcknowledgeType.ACCEPT: Event.ACCEPT,
    AcknowledgeType.RELEASE: Event.RELEASE,
    AcknowledgeType.REJECT: Event.REJECT,
    AcknowledgeType.RENEW: Event.RENEW,
}


@dataclass(slots=True)
class InFlight:
    state: RecordState
    delivery_count: int
    member_id: str | None = None
    lock_deadline_ms: int = 0


@dataclass(frozen=True, slots=True)
class StateBatch:
    """A durable range: ``first_offset``..``last_offset`` inclusive share state and count."""

    first_offset: int
    last_offset: int
    delivery_state: int
    delivery_count: int


class AckRefused(Exception):
    """An acknowledgement the partition refuses (Kafka answers INVALID_RECORD_STATE)."""


@dataclass(slots=True)
class SharePartition:
    delivery_count_limit: int
    max_in_flight_records: int
    start_offset: int = UNINITIALIZED_OFFSET
    end_offset: int = UNINITIALIZED_OFFSET
    in_flight: dict[int, InFlight] = field(default_factory=dict)
    state_epoch: int = 0

    # -- queries ---------------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return self.start_offset >= 0

    def acquired_by(self, member_id: str) -> list[int]:
        return sorted(
            o
            for o, r in self.in_flight.items()
            if r.state is S.ACQUIRED and r.member_id == member_id
        )

    def next_lock_deadline_ms(self) -> int | None:
        deadlines = [r.lock_deadline_ms for r in self.in_flight.values() if r.state is S.ACQUIRED]
        return min(deadlines) if deadlines else None

    def delivery_count(self, offset: int) -> int:
        record = self.in_flight.get(offset)
        if record is not None:
            return record.delivery_count
        return 0

    # -- changes ---------------------------------------------------------------------------
    def initialize(self, start_offset: int) -> None:
        self.start_offset = self.end_offset = start_offset
        self.in_flight.clear()

    def reset_start(self, start_offset: int) -> None:
        """AlterShareGroupOffsets / a log start moved past us: forget everything below."""
        self.start_offset = start_offset
        self.end_offset = max(self.end_offset, start_offset)
        for offset in [o for o in self.in_flight if o < start_offset]:
            del self.in_flight[offset]
        self._advance_start()

    def _move(self, offset: int, record: InFlight, event: Event) -> None:
        new = TRANSITIONS.get((record.state, event))
        assert new is not None, f"offset {offset}: {record.state.name} cannot {event.value}"
        record.state = new
        if new is not S.ACQUIRED:
            record.member_id = None
            record.lock_deadline_ms = 0

    def acquire(
        self,
        member_id: str,
        first_offset: int,
        last_offset: int,
        max_records: int,
        now_ms: int,
        lock_duration_ms: int,
    ) -> list[tuple[int, int, int]]:
        """Acquire for ``member_id`` up to ``max_records`` AVAILABLE records between
        ``first_offset`` and ``last_offset`` (inclusive; the offsets a log read returned).
        Returns (first, last, delivery count) ranges in offset order."""
        assert self.initialized
        acquired: list[int] = []
        lo = max(first_offset, self.start_offset)
        for offset in sorted(o for o in self.in_flight if lo <= o <= last_offset):
            if len(acquired) >= max_records:
                break
            if self.in_flight[offset].state is S.AVAILABLE:
                acquired.append(offset)
        offset = max(lo, self.end_offset)
        while (
            offset <= last_offset
            and len(acquired) < max_records
            and len(self.in_flight) < self.max_in_flight_records
        ):
            self.in_flight[offset] = InFlight(S.AVAILABLE, 0)
            acquired.append(offset)
            offset += 1
        if acquired:
            self.end_offset = max(self.end_offset, max(acquired) + 1)
        out: list[tuple[int, int, int]] = []
        for offset in sorted(acquired):
            record = self.in_flight[offset]
            self._move(offset, record, Event.ACQUIRE)
            record.delivery_count += 1
            record.member_id = member_id
            record.lock_deadline_ms = now_ms + lock_duration_ms
            if out and out[-1][1] == offset - 1 and out[-1][2] == record.delivery_count:
                out[-1] = (out[-1][0], offset, record.delivery_count)
            else:
                out.append((offset, offset, record.delivery_count))
        return out

    def available_count(self, log_end_offset: int) -> int:
        """How many records a fetch could acquire now (bounded by the in-flight cap)."""
        if not self.initialized:
            return max(0, log_end_offset)
        redeliver = sum(1 for r in self.in_flight.values() if r.state is S.AVAILABLE)
        fresh = max(0, log_end_offset - max(self.end_offset, self.start_offset))
        return redeliver + min(fresh, max(0, self.max_in_flight_records - len(self.in_flight)))

    def first_available_offset(self) -> int:
        """Where a fetch should start reading: the lowest AVAILABLE in-flight record, else
        the end offset."""
        pending = [o for o, r in self.in_flight.items() if r.state is S.AVAILABLE]
        return min(pending) if pending else max(self.end_offset, self.start_offset)

    def acknowledge(
        self,
        member_id: str,
        first_offset: int,
        last_offset: int,
        types: list[int],
        now_ms: int,
        lock_duration_ms: int,
    ) -> bool:
        """Apply one acknowledgement batch by ``member_id``: all or nothing.  Raises
        AckRefused when an offset is not acquired by that member or a type is unknown.
        Returns whether a record became available again (waiting fetches should look)."""
        count = last_offset - first_offset + 1
        if count <= 0 or not types or len(types) not in (1, count):
            raise AckRefused("acknowledge types do not match the batch")
        if count > len(self.in_flight):
            # every offset must be held; this also bounds the work a request can ask for
            raise AckRefused(f"{count} offsets acknowledged, {len(self.in_flight)} in flight")
        try:
            kinds = [AcknowledgeType(t) for t in types]
        except ValueError:
            raise AckRefused(f"unknown acknowledge type in {types}") from None
        plan: list[tuple[int, InFlight, AcknowledgeType]] = []
        for i in range(count):
            offset = first_offset + i
            kind = kinds[0] if len(kinds) == 1 else kinds[i]
            record = self.in_flight.get(offset)
            if record is None or record.state is not S.ACQUIRED or record.member_id != member_id:
                raise AckRefused(f"offset {offset} is not acquired by member {member_id}")
            plan.append((offset, record, kind))
        released = False
        for offset, record, kind in plan:
            if kind is AcknowledgeType.RENEW:
                self._move(offset, record, Event.RENEW)
                record.lock_deadline_ms = now_ms + lock_duration_ms
            elif kind is AcknowledgeType.RELEASE:
                released = self._release(offset, record) or released
            else:
                self._move(offset, record, _ACK_EVENTS[kind])
        self._advance_start()
        return released

    def _release(self, offset: int, record: InFlight) -> bool:
        if record.delivery_count >= self.delivery_count_limit:
            self._move(offset, record, Event.EXHAUST)
            return False
        self._move(offset, record, Event.RELEASE)
        return True

    def release_member(self, member_id: str) -> bool:
        """The member left: every record it holds is available again (or archived at the
        limit).  Returns whether anything became available."""
        released = False
        for offset in self.acquired_by(member_id):
            released = self._release(offset, self.in_flight[offset]) or released
        self._advance_start()
        return released

    def expire_locks(self, now_ms: int) -> bool:
        """Release every record whose lock is due; returns whether any became available."""
        released = False
        for offset in sorted(self.in_flight):
            record = self.in_flight[offset]
            if record.state is S.ACQUIRED and record.lock_deadline_ms <= now_ms:
                released = self._release(offset, record) or released
        self._advance_start()
        return released

    def _advance_start(self) -> None:
        offset = self.start_offset
        while offset < self.end_offset:
            record = self.in_flight.get(offset)
            if record is None or record.state not in DONE:
                break
            del self.in_flight[offset]
            offset += 1
        self.start_offset = offset

    # -- durability ------------------------------------------------------------------------
    def state_batches(self) -> list[StateBatch]:
        """The in-flight records as durable ranges (ACQUIRED stored as AVAILABLE)."""
        out: list[StateBatch] = []
        for offset in sorted(self.in_flight):
            record = self.in_flight[offset]
            state = S.AVAILABLE if record.state is S.ACQUIRED else record.state
            last = out[-1] if out else None
            if (
                last is not None
                and last.last_offset == offset - 1
                and last.delivery_state == state
                and last.delivery_count == record.delivery_count
            ):
                out[-1] = StateBatch(last.first_offset, offset, int(state), record.delivery_count)
            else:
                out.append(StateBatch(offset, offset, int(state), record.delivery_count))
        return out

    @classmethod
    def from_state(
        cls,
        *,
        start_offset: int,
        batches: list[StateBatch],
        delivery_count_limit: int,
        max_in_flight_records: int,
        state_epoch: int = 0,
    ) -> SharePartition:
        part = cls(delivery_count_limit, max_in_flight_records, state_epoch=state_epoch)
        part.start_offset = part.end_offset = start_offset
        for b in batches:
            if b.last_offset - max(b.first_offset, start_offset) + 1 + len(part.in_flight) > max_in_flight_records:
                break  # more than a share-partition can hold in flight: not written by us
            state = RecordState(b.delivery_state)
            if state is S.ACQUIRED:
                state = S.AVAILABLE
            if state is S.AVAILABLE and b.delivery_count >= delivery_count_limit:
                # held at the limit when the broker stopped: releasing it archives it
                state = S.ARCHIVED
            for offset in range(max(b.first_offset, start_offset), b.last_offset + 1):
                part.in_flight[offset] = InFlight(state, b.delivery_count)
                part.end_offset = max(part.end_offset, offset + 1)
        part._advance_start()
        return part

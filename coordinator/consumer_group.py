"""KIP-848 consumer groups: state table, member and group state, reconciliation.

Theory of operation
-------------------
A consumer group has a **group epoch**, bumped whenever what the assignment depends on
changes (a member joins or leaves, a subscription or the subscribed topics' partitions
change).  When the group epoch is ahead of the **assignment epoch** the coordinator runs
the group's assignor and stores a new **target assignment** at assignment epoch = group
epoch.  Each member then *reconciles* towards its target, one heartbeat at a time
(``reconcile``, Kafka's ``CurrentAssignmentBuilder``):

1. a member that owns partitions no longer in its target must first revoke them: it
   stays at its epoch in state UNREVOKED_PARTITIONS and is told to keep only
   ``owned ∩ target``; the partitions to give up wait in ``pending_revocation``;
2. once its heartbeat reports that it no longer owns them, it moves to the assignment
   epoch and gets every target partition that no other member still holds (assigned or
   pending revocation); a partition still held elsewhere leaves it in
   UNRELEASED_PARTITIONS until it is released;
3. with its whole target in hand it is STABLE at the assignment epoch.

So a partition is never held by two members at once: a member receives a partition only
when no other member has it in ``assigned`` or ``pending_revocation`` (the hypothesis
state machine in tests checks this after every step).

The group's state is derived (Kafka's ``ConsumerGroupState``) and every change of it goes
through ``ALLOWED_PREVIOUS``/``assert_valid_transition``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from uuid import UUID

__all__ = [
    "ALLOWED_PREVIOUS",
    "ConsumerGroup",
    "ConsumerGroupMember",
    "ConsumerGroupState",
    "MemberState",
    "assert_valid_transition",
    "reconcile",
]

Parts = dict[UUID, frozenset[int]]


class ConsumerGroupState(Enum):
    """Kafka's display names (ListGroups, ConsumerGroupDescribe)."""

    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"

    def __str__(self) -> str:
        return self.value


_DOCS: dict[ConsumerGroupState, str] = {
    ConsumerGroupState.EMPTY: """No members. Offsets may linger; DeleteGroups is accepted.
    transition: a member joins => Assigning;  the group is deleted => Dead""",
    ConsumerGroupState.ASSIGNING: """The group epoch is ahead of the assignment epoch: the next
    heartbeat computes a new target assignment.
    transition: target computed => Reconciling/Stable;  last member leaves => Empty""",
    ConsumerGroupState.RECONCILING: """A target exists; some member is not yet at it.
    transition: all members at the target => Stable;  group epoch bumped => Assigning;
    last member leaves => Empty""",
    ConsumerGroupState.STABLE: """Every member owns exactly its target at the assignment epoch.
    transition: group epoch bumped => Assigning;  a member reset => Reconciling;
    last member leaves => Empty""",
    ConsumerGroupState.DEAD: """Deleted (or converted to a classic group); final.""",
}
for _state, _doc in _DOCS.items():
    _state.__doc__ = _doc

_S = ConsumerGroupState
ALLOWED_PREVIOUS: dict[ConsumerGroupState, frozenset[ConsumerGroupState]] = {
    _S.EMPTY: frozenset({_S.ASSIGNING, _S.RECONCILING, _S.STABLE}),
    _S.ASSIGNING: frozenset({_S.EMPTY, _S.RECONCILING, _S.STABLE}),
    _S.RECONCILING: frozenset({_S.ASSIGNING, _S.STABLE, _S.EMPTY}),
    _S.STABLE: frozenset({_S.ASSIGNING, _S.RECONCILING, _S.EMPTY}),
    _S.DEAD: frozenset({_S.EMPTY, _S.DEAD}),
}
"""For each state, the states it may be entered from.  Reconciling/Stable may follow Empty
when a group is rebuilt or a member joins a group whose target is already current."""


class IllegalTransition(AssertionError):
    """A transition ``ALLOWED_PREVIOUS`` does not list: a coordinator bug."""


def assert_valid_transition(current: ConsumerGroupState, target: ConsumerGroupState) -> None:
    if current is not target and current not in ALLOWED_PREVIOUS[target]:
        raise IllegalTransition(f"illegal consumer group transition {current} -> {target}")


class MemberState(IntEnum):
    """Kafka's ``MemberState`` byte (stored in ConsumerGroupCurrentMemberAssignmentValue)."""

    UNREVOKED_PARTITIONS = 1
    UNRELEASED_PARTITIONS = 2
    STABLE = 3
    UNKNOWN = 127


LEAVE_GROUP_MEMBER_EPOCH = -1
LEAVE_GROUP_STATIC_MEMBER_EPOCH = -2


@dataclass(slots=True)
class ConsumerGroupMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    subscribed_topic_names: list[str] = field(default_factory=list)
    subscribed_topic_regex: str | None = None
    rebalance_timeout_ms: int = -1
    server_assignor: str | None = None
    member_epoch: int = 0
    previous_member_epoch: int = 0
    state: MemberState = MemberState.STABLE
    assigned: Parts = field(default_factory=dict)
    pending_revocation: Parts = field(default_factory=dict)
    classic_protocols: list[tuple[str, bytes]] | None = None
    """A member that speaks the classic protocol (JoinGroup/SyncGroup/Heartbeat) inside a
    consumer group (online migration): its JoinGroup protocols; None for a KIP-848 member."""
    classic_session_timeout_ms: int = -1

    @property
    def uses_classic_protocol(self) -> bool:
        return self.classic_protocols is not None

    def metadata_key(self) -> tuple[object, ...]:
        return (
            self.instance_id,
            self.rack_id,
            self.client_id,
            self.client_host,
            tuple(self.subscribed_topic_names),
            self.subscribed_topic_regex,
            self.rebalance_timeout_ms,
            self.server_assignor,
            None if self.classic_protocols is None else tuple(self.classic_protocols),
            self.classic_session_timeout_ms,
        )

    def assignment_key(self) -> tuple[object, ...]:
        return (
            self.member_epoch,
            self.previous_member_epoch,
            self.state,
            _canon(self.assigned),
            _canon(self.pending_revocation),
        )


def _canon(parts: Mapping[UUID, frozenset[int]]) -> tuple[tuple[UUID, tuple[int, ...]], ...]:
    return tuple((t, tuple(sorted(p))) for t, p in sorted(parts.items()) if p)


def _minus(a: Mapping[UUID, frozenset[int]], b: Mapping[UUID, frozenset[int]]) -> Parts:
    out: Parts = {}
    for t, p in a.items():
        rest = p - b.get(t, frozenset())
        if rest:
            out[t] = rest
    return out


def _and(a: Mapping[UUID, frozenset[int]], b: Mapping[UUID, frozenset[int]]) -> Parts:
    out: Parts = {}
    for t, p in a.items():
        both = p & b.get(t, frozenset())
        if both:
            out[t] = both
    return out


def _union(a: Mapping[UUID, frozenset[int]], b: Mapping[UUID, frozenset[int]]) -> Parts:
    out: Parts = dict(a)
    for t, p in b.items():
        out[t] = out.get(t, frozenset()) | p
    return {t: p for t, p in out.items() if p}


def is_empty(parts: Mapping[UUID, frozenset[int]]) -> bool:
    return not any(parts.values())


@dataclass(slots=True)
class ConsumerGroup:
    group_id: str
    group_epoch: int = 0
    assignment_epoch: int = 0
    members: dict[str, ConsumerGroupMember] = field(default_factory=dict)
    target: dict[str, Parts] = field(default_factory=dict)
    subscribed_topics: dict[str, tuple[UUID, int]] = field(default_factory=dict)
    """The subscribed topics' metadata the current group epoch was computed from."""
    static_members: dict[str, str] = field(default_factory=dict)
    """instance id -> member id."""
    state: ConsumerGroupState = ConsumerGroupState.EMPTY

    def derived_state(self) -> ConsumerGroupState:
        if self.state is ConsumerGroupState.DEAD:
            return ConsumerGroupState.DEAD
        if not self.members:
            return ConsumerGroupState.EMPTY
        if self.group_epoch > self.assignment_epoch:
            return ConsumerGroupState.ASSIGNING
        for m in self.members.values():
            if m.member_epoch != self.assignment_epoch or m.state is not MemberState.STABLE:
                return ConsumerGroupState.RECONCILING
        return ConsumerGroupState.STABLE

    def update_state(self) -> None:
        new = self.derived_state()
        assert_valid_transition(self.state, new)
        self.state = new

    def transition_to_dead(self) -> None:
        assert_valid_transition(self.state, ConsumerGroupState.DEAD)
        self.state = ConsumerGroupState.DEAD

    def holders(self, exclude: str) -> set[tuple[UUID, int]]:
        """Partitions held (assigned or pending revocation) by members other than ``exclude``."""
        held: set[tuple[UUID, int]] = set()
        for m in self.members.values():
            if m.member_id == exclude:
                continue
            for parts in (m.assigned, m.pending_revocation):
                for t, ps in parts.items():
                    held.update((t, p) for p in ps)
        return held


def reconcile(
    group: ConsumerGroup, member: ConsumerGroupMember, owned: Parts | None
) -> None:
    """Move ``member`` one step towards its target (see the module docstring).

    ``owned`` is what the member's heartbeat reports it owns (None: not reported).
    """
    target = group.target.get(member.member_id, {})
    epoch = group.assignment_epoch
    if member.state is MemberState.UNREVOKED_PARTITIONS:
        if owned is None or not is_empty(_and(owned, member.pending_revocation)):
            return  # still revoking
        member.pending_revocation = {}
        member.state = MemberState.STABLE
        # it revoked at its old epoch; fall through to catch up with the target
    if member.member_epoch == epoch and member.state is MemberState.STABLE:
        return
    keep = _and(member.assigned, target)
    revoke = _minus(member.assigned, target)
    if not is_empty(revoke):
        member.assigned = keep
        member.pending_revocation = revoke
        member.state = MemberState.UNREVOKED_PARTITIONS
        return
    held = group.holders(member.member_id)
    wanted = _minus(target, keep)
    free: Parts = {}
    unreleased = False
    for t, ps in wanted.items():
        ok = frozenset(p for p in ps if (t, p) not in held)
        unreleased = unreleased or len(ok) != len(ps)
        if ok:
            free[t] = ok
    if member.member_epoch != epoch:
        member.previous_member_epoch = member.member_epoch
        member.member_epoch = epoch
    member.assigned = _union(keep, free)
    member.state = MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE


def to_sets(parts: Mapping[UUID, frozenset[int]]) -> set[tuple[UUID, int]]:
    return {(t, p) for t, ps in parts.items() for p in ps}

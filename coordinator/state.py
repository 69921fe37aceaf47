"""The classic group state machine, as a table (Kafka's ``ClassicGroupState``).

Everything that decides which state may follow which lives here; the handlers in
``group_manager`` only ask for a transition and ``assert_valid_transition`` refuses an
edge the table does not list.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["ALLOWED_PREVIOUS", "GroupState", "assert_valid_transition"]


class GroupState(Enum):
    """A classic group's state; the value is Kafka's display name (ListGroups, DescribeGroups)."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"

    def __str__(self) -> str:
        return self.value


_DOCS: dict[GroupState, str] = {
    GroupState.EMPTY: """Group has no more members, but lingers until all offsets have expired.

    action: respond to JoinGroup normally; SyncGroup, Heartbeat and (member) OffsetCommit
            with UNKNOWN_MEMBER_ID; OffsetCommit with generation -1 (simple consumers,
            admin) is accepted; DeleteGroups and OffsetDelete are accepted.
    transition: a member joins => PreparingRebalance
                all offsets expire / the group is deleted => Dead
    """,
    GroupState.PREPARING_REBALANCE: """Group is waiting for every member to (re)join.

    action: JoinGroup is parked until every member has joined or the rebalance timeout
            fires; Heartbeat gets REBALANCE_IN_PROGRESS; SyncGroup REBALANCE_IN_PROGRESS;
            OffsetCommit of the current generation is still accepted (cooperative
            clients commit while revoking).
    transition: all members joined (or timeout removed the laggards) => CompletingRebalance
                the last member left or timed out => Empty
                the group is deleted => Dead
    """,
    GroupState.COMPLETING_REBALANCE: """The new generation exists; waiting for the leader's SyncGroup with the assignment.

    action: SyncGroup from followers is parked, the leader's SyncGroup writes the
            assignment and answers everyone; Heartbeat is answered normally;
            OffsetCommit gets REBALANCE_IN_PROGRESS; JoinGroup with unchanged metadata
            gets the current generation again.
    transition: the leader's SyncGroup => Stable
                a member joins with new metadata, leaves, or times out => PreparingRebalance
                the group is deleted => Dead
    """,
    GroupState.STABLE: """The group has an assignment; members heartbeat.

    action: Heartbeat, SyncGroup (current assignment), OffsetCommit normally; JoinGroup
            from the leader or with changed metadata starts a rebalance, from a
            follower with unchanged metadata returns the current generation; a static
            member rejoining with an unknown member id replaces its old id without
            a rebalance.
    transition: a member's session expires, a member leaves, a new member joins, the
                leader rejoins or metadata changes => PreparingRebalance
                the group is deleted => Dead
    """,
    GroupState.DEAD: """Group has no more members and its metadata is being removed.

    action: answer every request with COORDINATOR_NOT_AVAILABLE (Join/Sync/Heartbeat/
            Leave/commit) or GROUP_ID_NOT_FOUND (admin).
    transition: none; Dead is final (Dead => Dead is tolerated).
    """,
}
for _state, _doc in _DOCS.items():
    _state.__doc__ = _doc  # each state documents its action and transitions


S = GroupState

ALLOWED_PREVIOUS: dict[GroupState, frozenset[GroupState]] = {
    S.EMPTY: frozenset({S.PREPARING_REBALANCE}),
    S.PREPARING_REBALANCE: frozenset({S.STABLE, S.COMPLETING_REBALANCE, S.EMPTY}),
    S.COMPLETING_REBALANCE: frozenset({S.PREPARING_REBALANCE}),
    S.STABLE: frozenset({S.COMPLETING_REBALANCE}),
    S.DEAD: frozenset({S.STABLE, S.PREPARING_REBALANCE, S.COMPLETING_REBALANCE, S.EMPTY, S.DEAD}),
}
"""For each target state, the states it may be entered from (Kafka's validPreviousStates)."""


class IllegalTransition(AssertionError):
    """A transition that ``ALLOWED_PREVIOUS`` does not list: a coordinator bug."""


def assert_valid_transition(current: GroupState, target: GroupState) -> None:
    if current not in ALLOWED_PREVIOUS[target]:
        raise IllegalTransition(f"illegal group state transition {current} -> {target}")


def can_transition(current: GroupState, target: GroupState) -> bool:
    return current in ALLOWED_PREVIOUS[target]

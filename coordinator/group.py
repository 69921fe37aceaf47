"""The classic group model: ``ClassicGroup`` and its ``Member``s (Kafka's ClassicGroup).

Invariants (checked by ``ClassicGroup.check_invariants`` in tests):

- ``leader_id`` is a member id of the group, or None iff the group has no members;
- ``static_members`` maps each static member's ``group.instance.id`` to its member id;
- ``num_members_awaiting_join`` counts members whose JoinGroup is parked;
- ``supported_protocols[name]`` counts the members that listed ``name``;
- pending members (MEMBER_ID_REQUIRED issued, second JoinGroup not yet seen) are not members.

Not thread-safe: a group is owned by the coordinator's single owner (the event loop).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from kbroker.coordinator.records import subscribed_topics
from kbroker.coordinator.state import GroupState, assert_valid_transition, can_transition
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.join_group_response import JoinGroupResponse, JoinGroupResponseMember
from kbroker.wire.messages.sync_group_response import SyncGroupResponse

__all__ = ["CONSUMER_PROTOCOL_TYPE", "ClassicGroup", "JoinReply", "Member", "SyncReply"]

CONSUMER_PROTOCOL_TYPE = "consumer"

JoinReply = Callable[[JoinGroupResponse], None]
SyncReply = Callable[[SyncGroupResponse], None]
Protocols = list[tuple[str, bytes]]


@dataclass(slots=True, eq=False)
class Member:
    """One member of a classic group. ``awaiting_join`` / ``awaiting_sync`` hold the
    reply callbacks of its parked JoinGroup / SyncGroup (kfake's waitingReply)."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: Protocols
    assignment: bytes = b""
    awaiting_join: JoinReply | None = None
    awaiting_sync: SyncReply | None = None
    is_new: bool = False

    @property
    def is_static(self) -> bool:
        return self.group_instance_id is not None

    @property
    def is_awaiting_join(self) -> bool:
        return self.awaiting_join is not None

    @property
    def is_awaiting_sync(self) -> bool:
        return self.awaiting_sync is not None

    def metadata(self, protocol: str) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        raise KeyError(f"member {self.member_id} does not support protocol {protocol}")

    def matches(self, protocols: Protocols) -> bool:
        """Same protocols, same order, same metadata (Kafka's ``ClassicGroupMember.matches``)."""
        return self.protocols == protocols

    def vote(self, candidates: set[str]) -> str:
        """The first protocol of this member's preference list that all members support."""
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise ValueError(f"member {self.member_id} supports none of {sorted(candidates)}")

    def has_satisfied_heartbeat(self) -> bool:
        """A parked Join/Sync counts as a heartbeat, except for a brand-new member."""
        if self.is_new:
            return False
        return self.is_awaiting_join or self.is_awaiting_sync


@dataclass(slots=True, eq=False)
class ClassicGroup:
    group_id: str
    state: GroupState
    state_timestamp_ms: int | None
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    previous_state: GroupState | None = None
    members: dict[str, Member] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)
    pending_join_members: set[str] = field(default_factory=set)
    pending_sync_members: set[str] = field(default_factory=set)
    num_members_awaiting_join: int = 0
    supported_protocols: Counter[str] = field(default_factory=Counter)
    new_member_added: bool = False
    subscribed: set[str] | None = None
    """Topics the members subscribe to (consumer protocol), None when unknown."""
    transitions: Callable[[GroupState, GroupState], None] | None = None
    """Test hook: called with (from, to) on every transition."""

    # -- state -------------------------------------------------------------------------
    def is_in(self, *states: GroupState) -> bool:
        return self.state in states

    def transition_to(self, target: GroupState, now_ms: int) -> None:
        assert_valid_transition(self.state, target)
        if self.transitions is not None:
            self.transitions(self.state, target)
        self.previous_state = self.state
        self.state = target
        self.state_timestamp_ms = now_ms

    def can_rebalance(self) -> bool:
        return can_transition(self.state, GroupState.PREPARING_REBALANCE)

    # -- membership --------------------------------------------------------------------
    @property
    def is_empty_of_members(self) -> bool:
        return not self.members

    def has_member(self, member_id: str) -> bool:
        return member_id in self.members

    def is_pending_member(self, member_id: str) -> bool:
        return member_id in self.pending_join_members

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    def static_member_id(self, group_instance_id: str) -> str | None:
        return self.static_members.get(group_instance_id)

    def add(self, member: Member, reply: JoinReply | None) -> None:
        if member.group_instance_id is not None:
            if member.group_instance_id in self.static_members:
                raise AssertionError(f"static member {member.group_instance_id} already present")
            self.static_members[member.group_instance_id] = member.member_id
        if not self.members:
            self.protocol_type = member.protocol_type
        self.members[member.member_id] = member
        self.supported_protocols.update(name for name, _ in member.protocols)
        if self.leader_id is None:
            self.leader_id = member.member_id
        member.awaiting_join = reply
        if reply is not None:
            self.num_members_awaiting_join += 1
        self.pending_join_members.discard(member.member_id)

    def remove(self, member_id: str) -> None:
        member = self.members.pop(member_id, None)
        if member is not None:
            self.supported_protocols.subtract(name for name, _ in member.protocols)
            self.supported_protocols = +self.supported_protocols
            if member.is_awaiting_join:
                self.num_members_awaiting_join -= 1
            if member.group_instance_id is not None:
                self.static_members.pop(member.group_instance_id, None)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        self.pending_join_members.discard(member_id)
        self.pending_sync_members.discard(member_id)

    def update_member(
        self,
        member: Member,
        protocols: Protocols,
        rebalance_timeout_ms: int,
        session_timeout_ms: int,
        reply: JoinReply | None,
    ) -> None:
        self.supported_protocols.subtract(name for name, _ in member.protocols)
        member.protocols = protocols
        self.supported_protocols.update(name for name, _ in protocols)
        self.supported_protocols = +self.supported_protocols
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.session_timeout_ms = session_timeout_ms
        if reply is not None and not member.is_awaiting_join:
            self.num_members_awaiting_join += 1
        elif reply is None and member.is_awaiting_join:
            self.num_members_awaiting_join -= 1
        member.awaiting_join = reply

    def replace_static_member(
        self, group_instance_id: str, old_member_id: str, new_member_id: str
    ) -> tuple[Member, list[Callable[[], None]]]:
        """Give a static member a new member id; fence whatever the old id had parked.

        Returns the new member and the FENCED_INSTANCE_ID replies for the old id.
        """
        old = self.members.pop(old_member_id)
        fenced: list[Callable[[], None]] = []
        join_reply = old.awaiting_join
        if join_reply is not None:
            old.awaiting_join = None
            self.num_members_awaiting_join -= 1
            fenced_join = JoinGroupResponse(
                member_id=old_member_id, error_code=ErrorCode.FENCED_INSTANCE_ID
            )
            fenced.append(lambda: join_reply(fenced_join))
        sync_reply = old.awaiting_sync
        if sync_reply is not None:
            old.awaiting_sync = None
            fenced_sync = SyncGroupResponse(error_code=ErrorCode.FENCED_INSTANCE_ID, assignment=b"")
            fenced.append(lambda: sync_reply(fenced_sync))
        new = Member(
            member_id=new_member_id,
            group_instance_id=old.group_instance_id,
            client_id=old.client_id,
            client_host=old.client_host,
            rebalance_timeout_ms=old.rebalance_timeout_ms,
            session_timeout_ms=old.session_timeout_ms,
            protocol_type=old.protocol_type,
            protocols=old.protocols,
            assignment=old.assignment,
        )
        self.members[new_member_id] = new
        if self.leader_id == old_member_id:
            self.leader_id = new_member_id
        self.static_members[group_instance_id] = new_member_id
        if old_member_id in self.pending_sync_members:
            self.pending_sync_members.discard(old_member_id)
            self.pending_sync_members.add(new_member_id)
        return new, fenced

    def complete_join(
        self, member: Member, response: JoinGroupResponse
    ) -> Callable[[], None] | None:
        """Take the member's parked JoinGroup reply; returns the deferred delivery."""
        reply = member.awaiting_join
        if reply is None:
            return None
        member.awaiting_join = None
        self.num_members_awaiting_join -= 1
        return lambda: reply(response)

    def complete_sync(
        self, member: Member, response: SyncGroupResponse
    ) -> Callable[[], None] | None:
        reply = member.awaiting_sync
        if reply is None:
            return None
        member.awaiting_sync = None
        return lambda: reply(response)

    def has_all_members_joined(self) -> bool:
        return len(self.members) == self.num_members_awaiting_join and not self.pending_join_members

    def not_yet_rejoined_members(self) -> list[Member]:
        return [m for m in self.members.values() if not m.is_awaiting_join]

    def has_received_sync_from_all_members(self) -> bool:
        return not self.pending_sync_members

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def maybe_elect_new_joined_leader(self) -> bool:
        """Keep a leader that rejoined, else pick any member that did; False if none did."""
        if self.leader_id is None:
            return False
        if self.members[self.leader_id].is_awaiting_join:
            return True
        for member in self.members.values():
            if member.is_awaiting_join:
                self.leader_id = member.member_id
                return True
        return False

    # -- protocols ---------------------------------------------------------------------
    def supports_protocols(self, protocol_type: str, protocols: Protocols) -> bool:
        if self.state is GroupState.EMPTY:
            return bool(protocol_type) and bool(protocols)
        return self.protocol_type == protocol_type and any(
            self.supported_protocols[name] == len(self.members) for name, _ in protocols
        )

    def candidate_protocols(self) -> set[str]:
        n = len(self.members)
        return {name for name, count in self.supported_protocols.items() if count == n}

    def select_protocol(self) -> str:
        """The protocol all members support that gets most first-choice votes.

        Kafka breaks ties by hash-map order; we break them by the leader's preference
        order, then by name, so the choice is deterministic.
        """
        if not self.members:
            raise ValueError(f"group {self.group_id}: cannot select a protocol without members")
        candidates = self.candidate_protocols()
        votes = Counter(m.vote(candidates) for m in self.members.values())
        best = max(votes.values())
        tied = {name for name, count in votes.items() if count == best}
        leader = self.members.get(self.leader_id or "") or next(iter(self.members.values()))
        for name, _ in leader.protocols:
            if name in tied:
                return name
        return min(tied)

    def init_next_generation(self, now_ms: int) -> None:
        self.generation_id += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.subscribed = self.compute_subscribed_topics()
            self.transition_to(GroupState.COMPLETING_REBALANCE, now_ms)
        else:
            self.protocol_name = None
            self.subscribed = self.compute_subscribed_topics()
            self.transition_to(GroupState.EMPTY, now_ms)
        self.pending_sync_members.clear()

    def compute_subscribed_topics(self) -> set[str] | None:
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE:
            return None
        if not self.members:
            return set()
        if self.protocol_name is None:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            parsed = subscribed_topics(member.metadata(self.protocol_name))
            if parsed is None:
                return None
            topics |= parsed
        return topics

    def is_subscribed_to_topic(self, topic: str) -> bool:
        return self.subscribed is not None and topic in self.subscribed

    def uses_consumer_protocol(self) -> bool:
        return self.protocol_type == CONSUMER_PROTOCOL_TYPE

    # -- responses ---------------------------------------------------------------------
    def current_members_for_leader(self) -> list[JoinGroupResponseMember]:
        protocol = self.protocol_name
        if protocol is None:
            raise ValueError(f"group {self.group_id} has no protocol")
        return [
            JoinGroupResponseMember(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                metadata=m.metadata(protocol),
            )
            for m in self.members.values()
        ]

    def check_invariants(self) -> None:
        assert (self.leader_id is None) == (not self.members), "leader iff members"
        assert self.leader_id is None or self.leader_id in self.members
        assert self.static_members == {
            m.group_instance_id: m.member_id
            for m in self.members.values()
            if m.group_instance_id is not None
        }
        assert self.num_members_awaiting_join == sum(
            m.is_awaiting_join for m in self.members.values()
        )
        expected = Counter(name for m in self.members.values() for name, _ in m.protocols)
        assert +self.supported_protocols == expected
        assert not (self.pending_join_members & set(self.members))

"""KIP-932 share-group handlers: ShareGroupHeartbeat, ShareGroupDescribe, session timers,
replay of the share-group records of ``__consumer_offsets``.

Pure like the other coordinators: each entry point returns a ``Result`` (records for
``__consumer_offsets``, then the response); time and timers are injected.  What happens to
the records a member holds when it leaves, and the initialization of share-partitions when
they are first assigned, belong to the share coordinator (``share_coordinator``); this
manager tells it through a :class:`ShareGroupListener`.

A heartbeat:

1. validates the request (INVALID_REQUEST: empty group or member id, a first heartbeat
   without topics, an epoch below -1);
2. leaves (epoch -1: the member's records come back at once) or finds/creates the member,
   checking its epoch (FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID, GROUP_MAX_SIZE_REACHED);
3. bumps the group epoch when a member joins, changes its subscription, or a subscribed
   topic's partition count changed;
4. moves the member to the group epoch with its simple assignment (every partition of its
   topics) and answers with the assignment when it changed or the member (re)joined.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol
from uuid import UUID

from kbroker.coordinator.result import Effects, Record, Result
from kbroker.coordinator.share_config import ShareConfig
from kbroker.coordinator.share_group import (
    LEAVE_GROUP_MEMBER_EPOCH,
    ShareGroup,
    ShareGroupMember,
    ShareGroupState,
    simple_assignment,
)
from kbroker.coordinator.share_records import (
    SHARE_CURRENT_ASSIGNMENT,
    SHARE_GROUP_METADATA,
    SHARE_MEMBER_METADATA,
    SHARE_STATE_PARTITION_METADATA,
    ShareGroupRecord,
    current_assignment_record,
    encode_record,
    group_epoch_record,
    group_tombstones,
    member_record,
    member_tombstones,
    state_partition_metadata_record,
)
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.share_group_describe_request import ShareGroupDescribeRequest
from kbroker.wire.messages.share_group_describe_response import Assignment as DescribedAssignment
from kbroker.wire.messages.share_group_describe_response import (
    DescribedGroup,
    Member,
    ShareGroupDescribeResponse,
)
from kbroker.wire.messages.share_group_describe_response import (
    TopicPartitions as DescribedTopicPartitions,
)
from kbroker.wire.messages.share_group_heartbeat_request import ShareGroupHeartbeatRequest
from kbroker.wire.messages.share_group_heartbeat_response import (
    Assignment,
    ShareGroupHeartbeatResponse,
    TopicPartitions,
)

__all__ = ["SHARE_GROUP_TYPE", "ShareGroupListener", "ShareGroupManager"]

SHARE_GROUP_TYPE = "share"
SHARE_PROTOCOL_TYPE = "share"
SIMPLE_ASSIGNOR = "simple"
SESSION_TIMEOUT_OVERRIDE = "share.session.timeout.ms"
HEARTBEAT_INTERVAL_OVERRIDE = "share.heartbeat.interval.ms"

TopicsProvider = Callable[[], Mapping[str, tuple[UUID, int, bool]]]
GroupOverrides = Callable[[str], Mapping[str, int]]


class ShareGroupListener(Protocol):
    """The share coordinator's side of membership changes (kbroker appends its records)."""

    def assigned(self, group_id: str, parts: Mapping[UUID, frozenset[int]]) -> None: ...

    def member_left(self, group_id: str, member_id: str) -> None: ...

    def group_deleted(self, group_id: str) -> None: ...


class _NoListener:
    def assigned(self, group_id: str, parts: Mapping[UUID, frozenset[int]]) -> None:
        pass

    def member_left(self, group_id: str, member_id: str) -> None:
        pass

    def group_deleted(self, group_id: str) -> None:
        pass


class HeartbeatError(Exception):
    def __init__(self, code: ErrorCode, message: str | None = None) -> None:
        super().__init__(message or code.name)
        self.code = code
        self.message = message


def session_key(group_id: str, member_id: str) -> str:
    return f"sg-session-{group_id}-{member_id}"


def _response_parts(parts: Mapping[UUID, frozenset[int]]) -> list[TopicPartitions]:
    return [
        TopicPartitions(topic_id=t, partitions=sorted(p)) for t, p in sorted(parts.items()) if p
    ]


class ShareGroupManager:
    def __init__(
        self,
        config: ShareConfig,
        now_ms: Callable[[], int],
        timer: Any,
        topics: TopicsProvider | None = None,
        overrides: GroupOverrides | None = None,
    ) -> None:
        self.config = config
        self.now_ms = now_ms
        self.timer = timer
        self.topics: TopicsProvider = topics or dict
        self.overrides: GroupOverrides = overrides or (lambda _g: {})
        self.listener: ShareGroupListener = _NoListener()
        self.groups: dict[str, ShareGroup] = {}

    def get(self, group_id: str) -> ShareGroup | None:
        group = self.groups.get(group_id)
        return None if group is None or group.state is ShareGroupState.DEAD else group

    # -- records ---------------------------------------------------------------------------
    def _write(self, fx: Effects, group_id: str, key: Any, value: Any) -> None:
        k, v = encode_record(key, value)
        fx.records.append(Record(k, v, group_id))

    def _write_member(self, fx: Effects, group: ShareGroup, m: ShareGroupMember) -> None:
        self._write(
            fx,
            group.group_id,
            *member_record(
                group.group_id,
                m.member_id,
                rack_id=m.rack_id,
                client_id=m.client_id,
                client_host=m.client_host,
                topics=m.subscribed_topic_names,
            ),
        )

    def _write_current(self, fx: Effects, group: ShareGroup, m: ShareGroupMember) -> None:
        self._write(
            fx,
            group.group_id,
            *current_assignment_record(
                group.group_id,
                m.member_id,
                member_epoch=m.member_epoch,
                previous_member_epoch=m.previous_member_epoch,
                assigned=m.assigned,
            ),
        )

    def replay(self, record: ShareGroupRecord) -> None:
        key, value, t = record.key, record.value, record.record_type
        group_id: str = key.group_id
        group = self.groups.get(group_id)
        if group is None:
            if value is None:
                return
            group = self.groups[group_id] = ShareGroup(group_id)
        if t == SHARE_GROUP_METADATA:
            if value is None:
                del self.groups[group_id]
                return
            group.group_epoch = value.epoch
        elif t == SHARE_STATE_PARTITION_METADATA:
            group.initialized = (
                {}
                if value is None
                else {
                    ti.topic_id: (ti.topic_name, frozenset(ti.partitions))
                    for ti in value.initialized_topics
                }
            )
        elif t in (SHARE_MEMBER_METADATA, SHARE_CURRENT_ASSIGNMENT):
            member = group.members.get(key.member_id)
            if value is None:
                if t == SHARE_MEMBER_METADATA:
                    group.members.pop(key.member_id, None)
            else:
                if member is None:
                    member = group.members[key.member_id] = ShareGroupMember(key.member_id)
                if t == SHARE_MEMBER_METADATA:
                    member.rack_id = value.rack_id
                    member.client_id = value.client_id
                    member.client_host = value.client_host
                    member.subscribed_topic_names = list(value.subscribed_topic_names)
                else:
                    member.member_epoch = value.member_epoch
                    member.previous_member_epoch = value.previous_member_epoch
                    member.assigned = {
                        tp.topic_id: frozenset(tp.partitions) for tp in value.assigned_partitions
                    }
        group.state = ShareGroupState.STABLE if group.members else ShareGroupState.EMPTY

    def on_loaded(self) -> None:
        for group in self.groups.values():
            for member in group.members.values():
                self._schedule_session(group, member)

    def on_unloaded(self) -> None:
        for group in self.groups.values():
            for member_id in group.members:
                self.timer.cancel(session_key(group.group_id, member_id))
        self.groups.clear()

    # -- ShareGroupHeartbeat ---------------------------------------------------------------
    def heartbeat(
        self, request: ShareGroupHeartbeatRequest, *, client_id: str, client_host: str
    ) -> Result[ShareGroupHeartbeatResponse]:
        fx = Effects()
        try:
            self._validate(request)
            if request.member_epoch == LEAVE_GROUP_MEMBER_EPOCH:
                response = self._leave(request, fx)
            else:
                response = self._heartbeat(request, client_id, client_host, fx)
        except HeartbeatError as error:
            return Result(
                response=ShareGroupHeartbeatResponse(
                    error_code=error.code, error_message=error.message
                )
            )
        return fx.result(response)

    def _validate(self, request: ShareGroupHeartbeatRequest) -> None:
        bad = ErrorCode.INVALID_REQUEST
        if not request.group_id:
            raise HeartbeatError(bad, "GroupId can't be empty.")
        if not request.member_id:
            raise HeartbeatError(bad, "MemberId can't be empty.")
        if request.rack_id is not None and not request.rack_id:
            raise HeartbeatError(bad, "RackId can't be empty.")
        if request.member_epoch < LEAVE_GROUP_MEMBER_EPOCH:
            raise HeartbeatError(bad, f"MemberEpoch is invalid: {request.member_epoch}.")
        if request.member_epoch == 0 and not request.subscribed_topic_names:
            raise HeartbeatError(bad, "SubscribedTopicNames must be set in first request.")

    def _leave(
        self, request: ShareGroupHeartbeatRequest, fx: Effects
    ) -> ShareGroupHeartbeatResponse:
        group = self.get(request.group_id)
        member = group.members.get(request.member_id) if group is not None else None
        if group is None or member is None:
            raise HeartbeatError(ErrorCode.UNKNOWN_MEMBER_ID)
        self._remove_member(group, member, fx)
        return ShareGroupHeartbeatResponse(
            member_id=request.member_id,
            member_epoch=LEAVE_GROUP_MEMBER_EPOCH,
            heartbeat_interval_ms=0,
        )

    def _remove_member(self, group: ShareGroup, member: ShareGroupMember, fx: Effects) -> None:
        for key, value in member_tombstones(group.group_id, member.member_id):
            self._write(fx, group.group_id, key, value)
        del group.members[member.member_id]
        self.timer.cancel(session_key(group.group_id, member.member_id))
        self._bump_epoch(fx, group)
        group.update_state()
        self.listener.member_left(group.group_id, member.member_id)

    def _bump_epoch(self, fx: Effects, group: ShareGroup) -> None:
        group.group_epoch += 1
        self._write(fx, group.group_id, *group_epoch_record(group.group_id, group.group_epoch))

    def _subscribed(self, group: ShareGroup) -> dict[str, tuple[UUID, int]]:
        topics = self.topics()
        out: dict[str, tuple[UUID, int]] = {}
        for m in group.members.values():
            for name in m.subscribed_topic_names:
                info = topics.get(name)
                if info is not None and not info[2]:
                    out[name] = (info[0], info[1])
        return out

    def _heartbeat(
        self, request: ShareGroupHeartbeatRequest, client_id: str, client_host: str, fx: Effects
    ) -> ShareGroupHeartbeatResponse:
        group = self.get(request.group_id)
        if group is None:
            if request.member_epoch != 0:
                raise HeartbeatError(ErrorCode.UNKNOWN_MEMBER_ID)
            group = self.groups[request.group_id] = ShareGroup(request.group_id)
        member = group.members.get(request.member_id)
        full = request.member_epoch == 0
        bump = False
        if member is None:
            if request.member_epoch != 0:
                raise HeartbeatError(
                    ErrorCode.UNKNOWN_MEMBER_ID,
                    f"Member {request.member_id} is not a member of group {group.group_id}.",
                )
            max_size = self.config.group_share_max_size
            if len(group.members) >= max_size:
                raise HeartbeatError(
                    ErrorCode.GROUP_MAX_SIZE_REACHED,
                    f"The share group has reached its maximum capacity of {max_size} members.",
                )
            member = group.members[request.member_id] = ShareGroupMember(request.member_id)
            bump = True
        elif request.member_epoch == 0:
            member.assigned = {}  # a known member rejoining starts afresh
        elif request.member_epoch != member.member_epoch:
            raise HeartbeatError(
                ErrorCode.FENCED_MEMBER_EPOCH,
                f"The share group member has a member epoch ({request.member_epoch}) different from "
                f"the one known by the group coordinator ({member.member_epoch}).",
            )
        old_metadata = (
            member.rack_id,
            member.client_id,
            member.client_host,
            list(member.subscribed_topic_names),
        )
        member.client_id = client_id
        member.client_host = client_host
        if request.rack_id is not None:
            member.rack_id = request.rack_id
        if request.subscribed_topic_names is not None:
            names = sorted(set(request.subscribed_topic_names))
            bump = bump or names != member.subscribed_topic_names
            member.subscribed_topic_names = names
        if old_metadata != (
            member.rack_id,
            member.client_id,
            member.client_host,
            member.subscribed_topic_names,
        ):
            self._write_member(fx, group, member)
        subscribed = self._subscribed(group)
        if bump or subscribed != group.subscribed_topics:
            group.subscribed_topics = subscribed
            self._bump_epoch(fx, group)
        group.update_state()
        changed = False
        if member.member_epoch != group.group_epoch or full:
            new = simple_assignment(member.subscribed_topic_names, group.subscribed_topics)
            changed = new != member.assigned
            member.previous_member_epoch = member.member_epoch
            member.member_epoch = group.group_epoch
            member.assigned = new
            self._write_current(fx, group, member)
            self._initialize(group, new, fx)
        self._schedule_session(group, member)
        response = ShareGroupHeartbeatResponse(
            member_id=member.member_id,
            member_epoch=member.member_epoch,
            heartbeat_interval_ms=self.heartbeat_interval_ms(group.group_id),
        )
        if full or changed:
            response.assignment = Assignment(topic_partitions=_response_parts(member.assigned))
        return response

    def _initialize(
        self, group: ShareGroup, parts: Mapping[UUID, frozenset[int]], fx: Effects
    ) -> None:
        """Tell the share coordinator about partitions assigned for the first time (it
        sets their start offset from ``share.auto.offset.reset``) and record them."""
        fresh = {t: p - group.initialized.get(t, ("", frozenset()))[1] for t, p in parts.items()}
        fresh = {t: p for t, p in fresh.items() if p}
        if not fresh:
            return
        self.listener.assigned(group.group_id, fresh)
        names = {tid: name for name, (tid, _n) in group.subscribed_topics.items()}
        for t, p in fresh.items():
            name, had = group.initialized.get(t, (names.get(t, ""), frozenset()))
            group.initialized[t] = (name, had | p)
        self._write(
            fx, group.group_id, *state_partition_metadata_record(group.group_id, group.initialized)
        )

    # -- timeouts ------------------------------------------------------------------------
    def session_timeout_ms(self, group_id: str) -> int:
        return self.overrides(group_id).get(
            SESSION_TIMEOUT_OVERRIDE, self.config.group_share_session_timeout_ms
        )

    def heartbeat_interval_ms(self, group_id: str) -> int:
        return self.overrides(group_id).get(
            HEARTBEAT_INTERVAL_OVERRIDE, self.config.group_share_heartbeat_interval_ms
        )

    def _schedule_session(self, group: ShareGroup, member: ShareGroupMember) -> None:
        group_id, member_id = group.group_id, member.member_id
        self.timer.schedule(
            session_key(group_id, member_id),
            self.session_timeout_ms(group_id),
            lambda: self.expire_member(group_id, member_id),
        )

    def expire_member(self, group_id: str, member_id: str) -> Result[None]:
        fx = Effects()
        group = self.get(group_id)
        member = group.members.get(member_id) if group is not None else None
        if group is not None and member is not None:
            self._remove_member(group, member, fx)
        return fx.result(None)

    # -- admin -----------------------------------------------------------------------------
    def delete_group(self, group: ShareGroup, fx: Effects) -> None:
        assert not group.members
        for key, value in group_tombstones(group.group_id):
            self._write(fx, group.group_id, key, value)
        group.transition(ShareGroupState.DEAD)
        del self.groups[group.group_id]
        self.listener.group_deleted(group.group_id)

    def forget_topics(self, group: ShareGroup, topic_ids: set[UUID], fx: Effects) -> None:
        """DeleteShareGroupOffsets: those topics' share-partitions are no longer initialized."""
        if any(t in group.initialized for t in topic_ids):
            for t in topic_ids:
                group.initialized.pop(t, None)
            self._write(
                fx,
                group.group_id,
                *state_partition_metadata_record(group.group_id, group.initialized),
            )

    def note_initialized(
        self, group: ShareGroup, parts: Mapping[UUID, frozenset[int]], fx: Effects
    ) -> None:
        """AlterShareGroupOffsets initialized these share-partitions (record it)."""
        names = {info[0]: name for name, info in self.topics().items()}
        for t, p in parts.items():
            name, had = group.initialized.get(t, (names.get(t, ""), frozenset()))
            group.initialized[t] = (name, had | p)
        self._write(
            fx, group.group_id, *state_partition_metadata_record(group.group_id, group.initialized)
        )

    def describe(self, request: ShareGroupDescribeRequest) -> Result[ShareGroupDescribeResponse]:
        names = {info[0]: name for name, info in self.topics().items()}
        response = ShareGroupDescribeResponse()
        for group_id in request.group_ids:
            group = self.get(group_id)
            if group is None:
                response.groups.append(
                    DescribedGroup(
                        group_id=group_id,
                        error_code=ErrorCode.GROUP_ID_NOT_FOUND,
                        error_message=f"Group {group_id} not found.",
                        group_state=str(ShareGroupState.DEAD),
                    )
                )
                continue
            response.groups.append(
                DescribedGroup(
                    group_id=group_id,
                    group_state=str(group.state),
                    group_epoch=group.group_epoch,
                    assignment_epoch=group.group_epoch,
                    assignor_name=SIMPLE_ASSIGNOR,
                    authorized_operations=-2147483648,
                    members=[
                        Member(
                            member_id=m.member_id,
                            rack_id=m.rack_id,
                            member_epoch=m.member_epoch,
                            client_id=m.client_id,
                            client_host=m.client_host,
                            subscribed_topic_names=list(m.subscribed_topic_names),
                            assignment=DescribedAssignment(
                                topic_partitions=[
                                    DescribedTopicPartitions(
                                        topic_id=t,
                                        topic_name=names.get(t, ""),
                                        partitions=sorted(p),
                                    )
                                    for t, p in sorted(m.assigned.items())
                                    if p
                                ]
                            ),
                        )
                        for m in group.members.values()
                    ],
                )
            )
        return Result(response=response)

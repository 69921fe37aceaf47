"""``GroupCoordinator``: the one object kbroker talks to for consumer groups.

Usage by the runtime (see ``coordinator.result`` for the Result contract)::

    timer = CallLaterTimer(loop.call_later, sink=finish)        # coordinator.timer
    coord = GroupCoordinator(config=cfg, now_ms=wall_clock_ms, timer=timer)
    for batch in batches_of("__consumer_offsets"):              # start-up, every partition
        if batch.is_control:                                    # COMMIT/ABORT marker
            coord.replay_end_transaction(batch.producer_id, committed=...)
        else:
            for key, value in batch:                            # producer_id -1 if not txn
                coord.replay(key, value, producer_id=batch.producer_id_if_transactional)
    finish(coord.on_loaded())                                   # sessions, retention cycle
    ...
    fut = loop.create_future()
    result = coord.join_group(req, api_version=v, client_id=cid, client_host=host,
                              reply=lambda r: fut.done() or fut.set_result(r))
    finish(result)                                              # append, then replies
    response = result.response if result.response is not None else await fut
    ...
    finish(coord.on_unloaded())                                 # shutdown

``finish(result)`` = ``apply_result(result, append_to_consumer_offsets)``; a record with
``producer_id != -1`` goes in a transactional batch. Timeouts reach the ``Timer``'s sink,
which must ``finish`` their results the same way. Reply callbacks must not call back
into the coordinator synchronously (setting a future is fine). All calls happen on one
thread (the event loop); nothing here blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from kbroker.coordinator.config import GroupConfig
from kbroker.coordinator.consumer_group import ConsumerGroupState
from kbroker.coordinator.consumer_group_manager import (
    CONSUMER_GROUP_TYPE,
    CONSUMER_PROTOCOL_TYPE,
    ConsumerGroupManager,
    GroupOverrides,
    TopicsProvider,
)
from kbroker.coordinator.consumer_records import decode_consumer_record
from kbroker.coordinator.group import JoinReply, SyncReply
from kbroker.coordinator.group_manager import GroupManager
from kbroker.coordinator.migration import GroupMigration
from kbroker.coordinator.offsets import OffsetManager, TopicNameResolver
from kbroker.coordinator.records import GroupMetadataRecord, OffsetCommitRecord, decode_record
from kbroker.coordinator.result import Effects, Result
from kbroker.coordinator.share_config import ShareConfig
from kbroker.coordinator.share_group_manager import (
    SHARE_GROUP_TYPE,
    SHARE_PROTOCOL_TYPE,
    ShareGroupManager,
)
from kbroker.coordinator.share_records import SHARE_GROUP_RECORD_TYPES, decode_share_group_record
from kbroker.coordinator.state import GroupState
from kbroker.coordinator.timer import Timer
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.consumer_group_describe_request import ConsumerGroupDescribeRequest
from kbroker.wire.messages.consumer_group_describe_response import ConsumerGroupDescribeResponse
from kbroker.wire.messages.consumer_group_heartbeat_request import ConsumerGroupHeartbeatRequest
from kbroker.wire.messages.consumer_group_heartbeat_response import (
    ConsumerGroupHeartbeatResponse,
)
from kbroker.wire.messages.delete_groups_request import DeleteGroupsRequest
from kbroker.wire.messages.delete_groups_response import DeletableGroupResult, DeleteGroupsResponse
from kbroker.wire.messages.describe_groups_request import DescribeGroupsRequest
from kbroker.wire.messages.describe_groups_response import (
    DescribedGroup,
    DescribedGroupMember,
    DescribeGroupsResponse,
)
from kbroker.wire.messages.heartbeat_request import HeartbeatRequest
from kbroker.wire.messages.heartbeat_response import HeartbeatResponse
from kbroker.wire.messages.join_group_request import JoinGroupRequest
from kbroker.wire.messages.join_group_response import JoinGroupResponse
from kbroker.wire.messages.leave_group_request import LeaveGroupRequest
from kbroker.wire.messages.leave_group_response import LeaveGroupResponse
from kbroker.wire.messages.list_groups_request import ListGroupsRequest
from kbroker.wire.messages.list_groups_response import ListedGroup, ListGroupsResponse
from kbroker.wire.messages.offset_commit_request import OffsetCommitRequest
from kbroker.wire.messages.offset_commit_response import OffsetCommitResponse
from kbroker.wire.messages.offset_delete_request import OffsetDeleteRequest
from kbroker.wire.messages.offset_delete_response import OffsetDeleteResponse
from kbroker.wire.messages.offset_fetch_request import OffsetFetchRequest
from kbroker.wire.messages.offset_fetch_response import (
    OffsetFetchResponse,
    OffsetFetchResponseGroup,
    OffsetFetchResponsePartition,
    OffsetFetchResponseTopic,
)
from kbroker.wire.messages.share_group_describe_request import ShareGroupDescribeRequest
from kbroker.wire.messages.share_group_describe_response import ShareGroupDescribeResponse
from kbroker.wire.messages.share_group_heartbeat_request import ShareGroupHeartbeatRequest
from kbroker.wire.messages.share_group_heartbeat_response import ShareGroupHeartbeatResponse
from kbroker.wire.messages.sync_group_request import SyncGroupRequest
from kbroker.wire.messages.sync_group_response import SyncGroupResponse
from kbroker.wire.messages.txn_offset_commit_request import TxnOffsetCommitRequest
from kbroker.wire.messages.txn_offset_commit_response import TxnOffsetCommitResponse

__all__ = ["CLEANUP_KEY", "GroupCoordinator"]

CLEANUP_KEY = "expire-group-metadata"
CLASSIC_GROUP_TYPE = "classic"


class GroupCoordinator:
    def __init__(
        self,
        *,
        now_ms: Callable[[], int],
        timer: Timer,
        config: GroupConfig | None = None,
        new_uuid: Callable[[], str] | None = None,
        topic_name_for_id: TopicNameResolver | None = None,
        topics: TopicsProvider | None = None,
        group_overrides: GroupOverrides | None = None,
        share_config: ShareConfig | None = None,
    ) -> None:
        self.config = config or GroupConfig()
        self.timer = timer
        self.now_ms = now_ms
        self.groups = GroupManager(self.config, now_ms, timer, new_uuid)
        self.offsets = OffsetManager(self.groups, topic_name_for_id)
        self.consumer_groups = ConsumerGroupManager(
            self.config, now_ms, timer, topics, new_uuid, group_overrides
        )
        self.offsets.is_consumer_group = lambda g: self.consumer_groups.get(g) is not None
        # group.consumer.migration.policy: classic <-> consumer group conversions
        self.migration = GroupMigration(
            self.config, now_ms, self.groups, self.consumer_groups, self.consumer_groups.new_member_id
        )
        # KIP-932 share groups (their share-partition state is the share coordinator's)
        self.share_groups = ShareGroupManager(
            share_config or ShareConfig(), now_ms, timer, topics, group_overrides
        )

    # -- durability ------------------------------------------------------------------------
    def replay(self, key: bytes, value: bytes | None, *, producer_id: int = -1) -> None:
        """Apply one ``__consumer_offsets`` record (start-up load). Pass the batch's
        producer id for records of transactional batches (they wait for their marker)."""
        record = decode_record(key, value)
        if isinstance(record, OffsetCommitRecord):
            self.offsets.replay_offset_commit(record.key, record.value, producer_id)
        elif isinstance(record, GroupMetadataRecord):
            self.groups.replay_group_metadata(record.key, record.value)
        elif int.from_bytes(key[:2], "big", signed=True) in SHARE_GROUP_RECORD_TYPES:
            share_record = decode_share_group_record(key, value)
            if share_record is not None:
                self.share_groups.replay(share_record)
        else:
            consumer_record = decode_consumer_record(key, value)
            if consumer_record is None:
                return
            classic = self.groups.get(consumer_record.key.group_id)
            if classic is not None and classic.is_in(GroupState.EMPTY) and not classic.members:
                # offsets replayed first made a placeholder classic group: the id is a
                # consumer group's (Kafka replaces an empty classic group the same way)
                self.groups.groups.pop(classic.group_id, None)
            self.consumer_groups.replay(consumer_record)

    def replay_end_transaction(self, producer_id: int, committed: bool) -> None:
        """A COMMIT (``committed``) or ABORT marker of ``producer_id`` was written to (or
        read at start-up from) a ``__consumer_offsets`` partition."""
        self.offsets.replay_end_transaction(producer_id, committed)

    def on_loaded(self) -> Result[None]:
        """Call once after the last ``replay``: starts member session timers and the
        periodic offsets-retention cycle."""
        result = self.groups.on_loaded()
        self.consumer_groups.on_loaded()
        self.share_groups.on_loaded()
        self.schedule_group_metadata_expiration()
        return result

    def on_unloaded(self) -> Result[None]:
        """Shutdown: parked JoinGroup/SyncGroup get NOT_COORDINATOR (clients look for the
        coordinator again), timeouts are cancelled, in-memory state is dropped."""
        self.timer.cancel(CLEANUP_KEY)
        self.offsets.store.offsets.clear()
        self.consumer_groups.on_unloaded()
        self.share_groups.on_unloaded()
        return self.groups.on_unloaded()

    def schedule_group_metadata_expiration(self) -> None:
        self.timer.schedule(
            CLEANUP_KEY,
            self.config.offsets_retention_check_interval_ms,
            self.cleanup_group_metadata,
        )

    def cleanup_group_metadata(self) -> Result[None]:
        """Expire offsets past retention; delete Empty groups left without offsets."""
        fx = Effects()
        now_ms = self.now_ms()
        for group_id in list(self.groups.groups):
            group = self.groups.groups[group_id]
            all_expired = self.offsets.cleanup_expired_offsets(group, now_ms, fx)
            if all_expired and group.is_in(GroupState.EMPTY):
                self.groups.delete_group(group, fx)
        # KIP-848 groups (Kafka's ConsumerGroup.offsetExpirationCondition): retention counts
        # from each commit; offsets of topics a member subscribes to are kept; an Empty
        # group left without offsets is deleted.
        for group_id in list(self.consumer_groups.groups):
            consumer_group = self.consumer_groups.groups[group_id]
            if consumer_group.state is ConsumerGroupState.DEAD:
                continue
            subscribed = set(consumer_group.subscribed_topics) if consumer_group.members else set()
            all_expired = self.offsets.expire_offsets(
                group_id, lambda o: o.commit_timestamp_ms, subscribed.__contains__, now_ms, fx
            )
            if all_expired and consumer_group.state is ConsumerGroupState.EMPTY:
                self.consumer_groups.delete_group(consumer_group, fx)
        self.schedule_group_metadata_expiration()
        return fx.result(None)

    # -- classic group protocol ------------------------------------------------------------
    def join_group(
        self,
        request: JoinGroupRequest,
        *,
        api_version: int,
        client_id: str,
        client_host: str,
        reply: JoinReply,
    ) -> Result[JoinGroupResponse]:
        fx = Effects()
        if self.share_groups.get(request.group_id) is not None:
            return Result(
                response=JoinGroupResponse(
                    error_code=ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id=request.member_id
                )
            )
        consumer_group = self.consumer_groups.get(request.group_id)
        if consumer_group is not None:
            if consumer_group.members:
                # a classic member of a live consumer group (online migration): served
                # from the consumer group (coordinator.migration)
                response = self.migration.join(
                    consumer_group,
                    request,
                    api_version=api_version,
                    client_id=client_id,
                    client_host=client_host,
                    fx=fx,
                )
                return fx.result(response)
            self.consumer_groups.delete_group(consumer_group, fx)  # Empty: becomes classic
        result = self.groups.join_group(
            request,
            api_version=api_version,
            client_id=client_id,
            client_host=client_host,
            reply=reply,
        )
        result.records[:0] = fx.records
        return result

    # -- KIP-848 consumer group protocol ---------------------------------------------------
    def consumer_group_heartbeat(
        self,
        request: ConsumerGroupHeartbeatRequest,
        *,
        api_version: int,
        client_id: str,
        client_host: str,
    ) -> Result[ConsumerGroupHeartbeatResponse]:
        fx = Effects()
        if self.share_groups.get(request.group_id) is not None:
            return Result(
                response=ConsumerGroupHeartbeatResponse(
                    error_code=ErrorCode.GROUP_ID_NOT_FOUND,
                    error_message=f"Group {request.group_id} is not a consumer group.",
                )
            )
        classic = self.groups.get(request.group_id)
        if classic is not None and not classic.is_in(GroupState.DEAD):
            if not classic.is_in(GroupState.EMPTY) or classic.members:
                # online upgrade of a live classic group (group.consumer.migration.policy)
                code = (
                    self.migration.upgrade(classic, fx)
                    if request.member_epoch == 0
                    else ErrorCode.GROUP_ID_NOT_FOUND
                )
                if code is not ErrorCode.NONE:
                    return Result(
                        response=ConsumerGroupHeartbeatResponse(
                            error_code=code,
                            error_message=f"Group {request.group_id} is not a consumer group."
                            if code is ErrorCode.GROUP_ID_NOT_FOUND
                            else f"Group {request.group_id} is rebalancing; retry the upgrade.",
                        )
                    )
            elif request.member_epoch == 0:
                self.groups.delete_group(classic, fx)  # an Empty classic group converts
        result = self.consumer_groups.heartbeat(
            request, api_version=api_version, client_id=client_id, client_host=client_host
        )
        result.records[:0] = fx.records
        result.replies[:0] = fx.replies  # parked classic joins cut short by an upgrade
        return result

    def consumer_group_describe(
        self, request: ConsumerGroupDescribeRequest, *, api_version: int
    ) -> Result[ConsumerGroupDescribeResponse]:
        return self.consumer_groups.describe(request, api_version=api_version)

    # -- KIP-932 share groups ----------------------------------------------------------------
    def share_group_heartbeat(
        self, request: ShareGroupHeartbeatRequest, *, client_id: str, client_host: str
    ) -> Result[ShareGroupHeartbeatResponse]:
        """The id of a classic group (even an Empty one holding only committed offsets) or
        of a consumer group is not a share group's: GROUP_ID_NOT_FOUND, as Kafka answers."""
        classic = self.groups.get(request.group_id)
        taken = classic is not None and not classic.is_in(GroupState.DEAD)
        if taken or self.consumer_groups.get(request.group_id) is not None:
            return Result(
                response=ShareGroupHeartbeatResponse(
                    error_code=ErrorCode.GROUP_ID_NOT_FOUND,
                    error_message=f"Group {request.group_id} is not a share group.",
                )
            )
        return self.share_groups.heartbeat(request, client_id=client_id, client_host=client_host)

    def share_group_describe(self, request: ShareGroupDescribeRequest) -> Result[ShareGroupDescribeResponse]:
        return self.share_groups.describe(request)

    def sync_group(
        self, request: SyncGroupRequest, *, api_version: int, reply: SyncReply
    ) -> Result[SyncGroupResponse]:
        consumer_group = self.consumer_groups.get(request.group_id)
        if consumer_group is not None:  # a classic member of a consumer group (migration)
            return Result(response=self.migration.sync(consumer_group, request))
        return self.groups.sync_group(request, api_version=api_version, reply=reply)

    def heartbeat(
        self, request: HeartbeatRequest, *, api_version: int
    ) -> Result[HeartbeatResponse]:
        consumer_group = self.consumer_groups.get(request.group_id)
        if consumer_group is not None:
            return Result(
                response=HeartbeatResponse(
                    error_code=self.migration.heartbeat(consumer_group, request)
                )
            )
        return self.groups.heartbeat(request, api_version=api_version)

    def leave_group(
        self, request: LeaveGroupRequest, *, api_version: int
    ) -> Result[LeaveGroupResponse]:
        consumer_group = self.consumer_groups.get(request.group_id)
        if consumer_group is not None:
            fx = Effects()
            return fx.result(self.migration.leave(consumer_group, request, api_version, fx))
        return self.groups.leave_group(request, api_version=api_version)

    # -- offsets ---------------------------------------------------------------------------
    def commit_offsets(
        self, request: OffsetCommitRequest, *, api_version: int
    ) -> Result[OffsetCommitResponse]:
        fx = Effects()
        if not request.group_id:
            return Result(
                response=self.offsets.commit_error_response(request, ErrorCode.INVALID_GROUP_ID)
            )
        if self.share_groups.get(request.group_id) is not None:
            # a share group keeps no committed offsets (its state is per share-partition)
            return Result(
                response=self.offsets.commit_error_response(request, ErrorCode.GROUP_ID_NOT_FOUND)
            )
        consumer_group = self.consumer_groups.get(request.group_id)
        if consumer_group is not None:
            code = self.consumer_groups.validate_offset_commit(
                consumer_group,
                request.member_id,
                request.generation_id_or_member_epoch,
                api_version=api_version,
                is_transactional=False,
            )
            if code is not ErrorCode.NONE:
                return Result(response=self.offsets.commit_error_response(request, code))
            return fx.result(self.offsets.write_commits(request, api_version, request.group_id, fx))
        return fx.result(self.offsets.commit_offsets(request, api_version, fx))

    def commit_transactional_offsets(
        self, request: TxnOffsetCommitRequest, *, api_version: int
    ) -> Result[TxnOffsetCommitResponse]:
        """TxnOffsetCommit: records carry ``producer_id``/``producer_epoch`` (see ``Record``).
        Checking that the transaction added this group (AddOffsetsToTxn) is the broker's
        job, with the transaction coordinator."""
        fx = Effects()
        consumer_group = self.consumer_groups.get(request.group_id)
        code = None
        if consumer_group is not None:
            code = self.consumer_groups.validate_offset_commit(
                consumer_group,
                request.member_id,
                request.generation_id,
                api_version=api_version,
                is_transactional=True,
            )
        return fx.result(self.offsets.commit_transactional_offsets(request, fx, code))

    def fetch_offsets(
        self, request: OffsetFetchRequest, *, api_version: int
    ) -> Result[OffsetFetchResponse]:
        """OffsetFetch: v1-7 one group (``topics`` None = all, v2+), v8+ many groups."""
        response = OffsetFetchResponse()
        if api_version >= 8:
            for g in request.groups:
                topics = None
                if g.topics is not None:
                    topics = []
                    for wanted_topic in g.topics:
                        name = wanted_topic.name
                        if api_version >= 10:
                            name = self.offsets.topic_name_for_id(wanted_topic.topic_id) or ""
                        topics.append(
                            (name, wanted_topic.topic_id, list(wanted_topic.partition_indexes))
                        )
                consumer_group = self.consumer_groups.get(g.group_id)
                code = ErrorCode.NONE
                if consumer_group is not None and api_version >= 9:
                    code = self.consumer_groups.validate_offset_fetch(
                        consumer_group, g.member_id, g.member_epoch
                    )
                if code is not ErrorCode.NONE:
                    response.groups.append(
                        OffsetFetchResponseGroup(group_id=g.group_id, error_code=code)
                    )
                    continue
                response.groups.append(
                    self.offsets.fetch_offsets(g.group_id, topics, request.require_stable)
                )
            return Result(response=response)
        wanted = None
        if request.topics is not None:
            wanted = [(t.name, UUID(int=0), list(t.partition_indexes)) for t in request.topics]
        fetched = self.offsets.fetch_offsets(request.group_id, wanted, request.require_stable)
        for t in fetched.topics:
            response.topics.append(
                OffsetFetchResponseTopic(
                    name=t.name,
                    partitions=[
                        OffsetFetchResponsePartition(
                            partition_index=p.partition_index,
                            committed_offset=p.committed_offset,
                            committed_leader_epoch=p.committed_leader_epoch,
                            metadata=p.metadata,
                            error_code=p.error_code,
                        )
                        for p in t.partitions
                    ],
                )
            )
        return Result(response=response)

    def delete_offsets(
        self, request: OffsetDeleteRequest, *, api_version: int = 0
    ) -> Result[OffsetDeleteResponse]:
        fx = Effects()
        consumer_group = self.consumer_groups.get(request.group_id)
        topics = None
        if consumer_group is not None:
            # a consumer group keeps the offsets of topics its members subscribe to
            topics = set(consumer_group.subscribed_topics) if consumer_group.members else set()
        return fx.result(self.offsets.delete_offsets(request, fx, topics))

    # -- admin -----------------------------------------------------------------------------
    def delete_groups(
        self, request: DeleteGroupsRequest, *, api_version: int
    ) -> Result[DeleteGroupsResponse]:
        fx = Effects()
        response = DeleteGroupsResponse()
        for group_id in request.groups_names:
            share_group = self.share_groups.get(group_id)
            if share_group is not None:
                code = ErrorCode.NON_EMPTY_GROUP if share_group.members else ErrorCode.NONE
                if not share_group.members:
                    self.share_groups.delete_group(share_group, fx)
                response.results.append(DeletableGroupResult(group_id=group_id, error_code=code))
                continue
            consumer_group = self.consumer_groups.get(group_id)
            if consumer_group is not None:
                if consumer_group.members:
                    code = ErrorCode.NON_EMPTY_GROUP
                else:
                    code = ErrorCode.NONE
                    self.offsets.delete_all_offsets(group_id, fx)
                    self.consumer_groups.delete_group(consumer_group, fx)
                response.results.append(DeletableGroupResult(group_id=group_id, error_code=code))
                continue
            group = self.groups.get(group_id)
            if group is None or group.is_in(GroupState.DEAD):
                code = ErrorCode.GROUP_ID_NOT_FOUND
            elif not group.is_in(GroupState.EMPTY):
                code = ErrorCode.NON_EMPTY_GROUP
            else:
                code = ErrorCode.NONE
                self.offsets.delete_all_offsets(group_id, fx)
                self.groups.delete_group(group, fx)
            response.results.append(DeletableGroupResult(group_id=group_id, error_code=code))
        return fx.result(response)

    def list_groups(
        self, request: ListGroupsRequest, *, api_version: int
    ) -> Result[ListGroupsResponse]:
        states = {s.lower() for s in request.states_filter} if api_version >= 4 else set()
        types = {t.lower() for t in request.types_filter} if api_version >= 5 else set()
        response = ListGroupsResponse()
        for sg_id in sorted(self.share_groups.groups):
            share_group = self.share_groups.groups[sg_id]
            if states and str(share_group.state).lower() not in states:
                continue
            if types and SHARE_GROUP_TYPE not in types:
                continue
            response.groups.append(
                ListedGroup(
                    group_id=sg_id,
                    protocol_type=SHARE_PROTOCOL_TYPE,
                    group_state=str(share_group.state),
                    group_type=SHARE_GROUP_TYPE,
                )
            )
        for cg_id in sorted(self.consumer_groups.groups):
            consumer_group = self.consumer_groups.groups[cg_id]
            if states and str(consumer_group.state).lower() not in states:
                continue
            if types and CONSUMER_GROUP_TYPE not in types:
                continue
            response.groups.append(
                ListedGroup(
                    group_id=cg_id,
                    protocol_type=CONSUMER_PROTOCOL_TYPE,
                    group_state=str(consumer_group.state),
                    group_type=CONSUMER_GROUP_TYPE,
                )
            )
        for group_id in sorted(self.groups.groups):
            group = self.groups.groups[group_id]
            if states and str(group.state).lower() not in states:
                continue
            if types and CLASSIC_GROUP_TYPE not in types:
                continue
            response.groups.append(
                ListedGroup(
                    group_id=group_id,
                    protocol_type=group.protocol_type or "",
                    group_state=str(group.state),
                    group_type=CLASSIC_GROUP_TYPE,
                )
            )
        return Result(response=response)

    def describe_groups(
        self, request: DescribeGroupsRequest, *, api_version: int
    ) -> Result[DescribeGroupsResponse]:
        response = DescribeGroupsResponse()
        for group_id in request.groups:
            if self.share_groups.get(group_id) is not None:
                described = DescribedGroup(group_id=group_id, group_state=str(GroupState.DEAD))
                if api_version >= 6:
                    described.error_code = ErrorCode.GROUP_ID_NOT_FOUND
                    described.error_message = f"Group {group_id} is not a classic group."
                response.groups.append(described)
                continue
            consumer_group = self.consumer_groups.get(group_id)
            if consumer_group is not None:
                response.groups.append(
                    self.consumer_groups.as_described_group(consumer_group)
                )
                continue
            group = self.groups.get(group_id)
            if group is None:
                described = DescribedGroup(group_id=group_id, group_state=str(GroupState.DEAD))
                if api_version >= 6:
                    described.error_code = ErrorCode.GROUP_ID_NOT_FOUND
                    described.error_message = f"Group {group_id} not found."
                response.groups.append(described)
                continue
            stable = group.is_in(GroupState.STABLE) and group.protocol_name is not None
            protocol = group.protocol_name or ""
            response.groups.append(
                DescribedGroup(
                    group_id=group_id,
                    group_state=str(group.state),
                    protocol_type=group.protocol_type or "",
                    protocol_data=protocol if stable else "",
                    members=[
                        DescribedGroupMember(
                            member_id=m.member_id,
                            group_instance_id=m.group_instance_id,
                            client_id=m.client_id,
                            client_host=m.client_host,
                            member_metadata=m.metadata(protocol) if stable else b"",
                            member_assignment=m.assignment if stable else b"",
                        )
                        for m in group.members.values()
                    ],
                )
            )
        return Result(response=response)

"""Helpers the share-group handlers share: whether share groups are on (the finalized
``share.version`` feature) and the share runtime."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from kbroker.acl.check import GROUP, allowed
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext
from kbroker.shares import MAX_SHARE_SESSIONS, ShareRuntime, ShareSession
from kbroker.wire.errors import ErrorCode

SHARE_VERSION_FEATURE = "share.version"
FINAL_EPOCH = -1
MIN_ACK_TYPE, MAX_ACK_TYPE = 0, 4  # GAP .. RENEW


def share_groups_enabled(ctx: RequestContext) -> bool:
    """Kafka serves share groups only while ``share.version`` is finalized at 1 or more
    (the default of a 4.2 cluster; an UpdateFeatures downgrade to 0 turns them off)."""
    features = ctx.broker.features
    return features is not None and features.levels().get(SHARE_VERSION_FEATURE, 0) >= 1


def group_allowed(ctx: RequestContext, group_id: str | None, operation: AclOperation = AclOperation.READ) -> bool:
    """ACLs (when an authorizer is on): READ on the group to be a member, fetch and
    acknowledge; DESCRIBE to describe it; DELETE to delete its offsets."""
    return allowed(ctx, operation, GROUP, group_id or "")


def share_runtime(ctx: RequestContext) -> ShareRuntime:
    runtime = ctx.broker.groups.shares
    assert runtime is not None
    return runtime


class SessionError(Exception):
    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code.name)
        self.code = code


def check_member(ctx: RequestContext, group_id: str | None, member_id: str | None) -> None:
    """The request must name a member of a live share group."""
    if not group_id or not member_id:
        raise SessionError(ErrorCode.INVALID_REQUEST)
    coordinator = ctx.broker.groups.coordinator
    assert coordinator is not None
    group = coordinator.share_groups.get(group_id)
    if group is None or member_id not in group.members:
        raise SessionError(ErrorCode.UNKNOWN_MEMBER_ID)


def enter_session(
    runtime: ShareRuntime, group_id: str, member_id: str, node_id: int, epoch: int, *, may_open: bool
) -> ShareSession:
    """Validate the share-session epoch; open (epoch 0) or advance the session."""
    key = (group_id, member_id, node_id)
    if epoch == 0:
        if not may_open:
            raise SessionError(ErrorCode.INVALID_SHARE_SESSION_EPOCH)
        old = runtime.sessions.pop(key, None)
        if old is not None:  # a new session replaces the old: what it held comes back
            runtime.finish(runtime.coordinator.release_member(group_id, member_id, old.partitions))
        if len(runtime.sessions) >= MAX_SHARE_SESSIONS:
            raise SessionError(ErrorCode.SHARE_SESSION_LIMIT_REACHED)
        session = runtime.sessions[key] = ShareSession(epoch=0)
        return session
    found = runtime.sessions.get(key)
    if found is None and epoch == FINAL_EPOCH:
        # closing a session that is already gone (its member left the group, which ends
        # its sessions on every node): the acknowledgements are still answered
        return ShareSession(epoch=FINAL_EPOCH)
    if found is None:
        raise SessionError(ErrorCode.SHARE_SESSION_NOT_FOUND)
    session = found
    if epoch != FINAL_EPOCH:
        if epoch != session.next_epoch():
            raise SessionError(ErrorCode.INVALID_SHARE_SESSION_EPOCH)
        session.epoch = epoch
    return session


def close_session(runtime: ShareRuntime, group_id: str, member_id: str, node_id: int) -> None:
    """Epoch -1: the session ends; the member's records in it come back at once."""
    session = runtime.sessions.pop((group_id, member_id, node_id), None)
    if session is not None:
        runtime.finish(runtime.coordinator.release_member(group_id, member_id, session.partitions))


def acknowledge(
    runtime: ShareRuntime,
    group_id: str,
    member_id: str,
    topic_id: UUID,
    partition: int,
    batches: list[Any],
) -> ErrorCode:
    """Apply one partition's acknowledgement batches; INVALID_REQUEST for malformed ones."""
    plain: list[tuple[int, int, list[int]]] = []
    previous_last = -1
    for b in batches:
        if b.first_offset > b.last_offset or b.first_offset <= previous_last or b.first_offset < 0:
            return ErrorCode.INVALID_REQUEST
        if len(b.acknowledge_types) not in (1, b.last_offset - b.first_offset + 1):
            return ErrorCode.INVALID_REQUEST
        if any(not MIN_ACK_TYPE <= t <= MAX_ACK_TYPE for t in b.acknowledge_types):
            return ErrorCode.INVALID_REQUEST
        previous_last = b.last_offset
        plain.append((b.first_offset, b.last_offset, list(b.acknowledge_types)))
    code = runtime.finish(
        runtime.coordinator.acknowledge(group_id, member_id, topic_id, partition, plain)
    )
    return ErrorCode(code)

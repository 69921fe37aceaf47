"""OffsetFetch (key 9).

Version notes:
- v1-v9 served (aiokafka v1-3, kafkajs v4, librdkafka 2.0.2 v7, kafka-python v8, librdkafka
  2.16 v9).  v2+ topics null = all committed offsets of the group; v7+ require_stable;
  v8+ several groups in one request.
- ACLs: DESCRIBE on the group, else GROUP_AUTHORIZATION_FAILED (the group's error from v2,
  each partition's in v1) and no offsets; DESCRIBE on each topic, else its partitions get
  TOPIC_AUTHORIZATION_FAILED, or, when all offsets were asked for, it is left out.
"""

from __future__ import annotations

from typing import Any

from kbroker.acl.check import GROUP, TOPIC, allowed
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.offset_fetch_request import OffsetFetchRequest
from kbroker.wire.messages.offset_fetch_response import OffsetFetchResponse

INVALID_OFFSET = -1


def _refuse_partitions(topics: list[Any], code: ErrorCode) -> None:
    for t in topics:
        for p in t.partitions:
            p.error_code, p.committed_offset, p.committed_leader_epoch, p.metadata = code, INVALID_OFFSET, -1, ""


def _restrict(ctx: RequestContext, topics: list[Any], fetch_all: bool) -> list[Any]:
    """The response topics the principal may see (refused ones marked, or dropped when the
    request asked for all)."""
    denied = [t for t in topics if not allowed(ctx, AclOperation.DESCRIBE, TOPIC, t.name)]
    if fetch_all:
        return [t for t in topics if t not in denied]
    _refuse_partitions(denied, ErrorCode.TOPIC_AUTHORIZATION_FAILED)
    return topics


def _apply_acls(ctx: RequestContext, req: OffsetFetchRequest, response: OffsetFetchResponse) -> None:
    if ctx.api_version >= 8:
        asked = {g.group_id: g.topics is None for g in req.groups}
        for group in response.groups:
            if not allowed(ctx, AclOperation.DESCRIBE, GROUP, group.group_id):
                group.error_code, group.topics = ErrorCode.GROUP_AUTHORIZATION_FAILED, []
            else:
                group.topics = _restrict(ctx, group.topics, asked.get(group.group_id, False))
        return
    if not allowed(ctx, AclOperation.DESCRIBE, GROUP, req.group_id):
        if ctx.api_version >= 2:
            response.error_code, response.topics = ErrorCode.GROUP_AUTHORIZATION_FAILED, []
        else:
            _refuse_partitions(response.topics, ErrorCode.GROUP_AUTHORIZATION_FAILED)
        return
    response.topics = _restrict(ctx, response.topics, req.topics is None)


@handler(ApiKey.OFFSET_FETCH, 1, 9)
async def handle_offset_fetch(ctx: RequestContext, req: OffsetFetchRequest) -> OffsetFetchResponse:
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.fetch_offsets(req, api_version=ctx.api_version))
    assert response is not None
    if ctx.broker.authorizer is not None:
        _apply_acls(ctx, req, response)
    return response

"""OffsetFetch (key 9).

Version notes:
- v1-v9 served (aiokafka v1-3, kafkajs v4, librdkafka 2.0.2 v7, kafka-python v8, librdkafka
  2.16 v9).  v2+ topics null = all committed offsets of the group; v7+ require_stable;
  v8+ several groups in one request.  v10 (KIP-848 follow-up) names topics by id only: an
  id this broker does not know is answered UNKNOWN_TOPIC_ID for each asked partition
  (before ACLs, as Kafka does), the answer carries the ids, and an all-offsets answer
  leaves out topics that no longer exist (their offsets have no id to be named by).
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
# OffsetFetch v10+ names topics by id only (the name field is not on the wire).
TOPIC_IDS_SINCE = 10


def _refuse_partitions(topics: list[Any], code: ErrorCode) -> None:
    for t in topics:
        for p in t.partitions:
            p.error_code, p.committed_offset, p.committed_leader_epoch, p.metadata = (
                code,
                INVALID_OFFSET,
                -1,
                "",
            )


def _restrict(ctx: RequestContext, topics: list[Any], fetch_all: bool) -> list[Any]:
    """The response topics the principal may see (refused ones marked, or dropped when the
    request asked for all)."""
    denied = [t for t in topics if not allowed(ctx, AclOperation.DESCRIBE, TOPIC, t.name)]
    if fetch_all:
        return [t for t in topics if t not in denied]
    _refuse_partitions(denied, ErrorCode.TOPIC_AUTHORIZATION_FAILED)
    return topics


def _apply_acls(
    ctx: RequestContext, req: OffsetFetchRequest, response: OffsetFetchResponse
) -> None:
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


def _name_by_ids(
    ctx: RequestContext, req: OffsetFetchRequest, response: OffsetFetchResponse
) -> None:
    """v10: every answered topic carries its id; ids this broker does not know answer
    UNKNOWN_TOPIC_ID; an all-offsets answer leaves out topics that no longer exist."""
    metadata = ctx.broker.metadata
    fetch_all = {g.group_id: g.topics is None for g in req.groups}
    for group in response.groups:
        if not fetch_all.get(group.group_id, False):
            _refuse_partitions(
                [t for t in group.topics if metadata.by_id(t.topic_id) is None],
                ErrorCode.UNKNOWN_TOPIC_ID,
            )
            continue
        kept = []
        for t in group.topics:
            topic = metadata.get(t.name)
            if topic is not None:
                t.topic_id = topic.topic_id
                kept.append(t)
        group.topics = kept


@handler(ApiKey.OFFSET_FETCH, 1, 10)
async def handle_offset_fetch(ctx: RequestContext, req: OffsetFetchRequest) -> OffsetFetchResponse:
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.fetch_offsets(req, api_version=ctx.api_version))
    assert response is not None
    if ctx.api_version >= TOPIC_IDS_SINCE:
        unknown = _unknown_ids(ctx, req)
        _name_by_ids(ctx, req, response)
        if ctx.broker.authorizer is not None:
            _apply_acls(ctx, req, response)
            for group in response.groups:  # an unknown id is answered as such, authorized or not
                _refuse_partitions(
                    [t for t in group.topics if t.topic_id in unknown], ErrorCode.UNKNOWN_TOPIC_ID
                )
        return response
    if ctx.broker.authorizer is not None:
        _apply_acls(ctx, req, response)
    return response


def _unknown_ids(ctx: RequestContext, req: OffsetFetchRequest) -> set[Any]:
    metadata = ctx.broker.metadata
    return {
        t.topic_id for g in req.groups for t in g.topics or () if metadata.by_id(t.topic_id) is None
    }

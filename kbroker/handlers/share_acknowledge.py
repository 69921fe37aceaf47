"""ShareAcknowledge (key 79): acknowledge records without fetching.

Version notes:
- v1-v2 served (every version in the specs).  v2 adds IsRenewAck and the response's
  AcquisitionLockTimeoutMs (RENEW acknowledgements extend a lock).
- It needs an open share session (SHARE_SESSION_NOT_FOUND; epoch 0 is
  INVALID_SHARE_SESSION_EPOCH: a session is opened by ShareFetch only).  Epoch -1 applies the
  acknowledgements and closes the session: the member's other records in it come back at
  once.  Any other epoch must be the session's next.
- A batch refused by the share-partition (an offset not acquired by this member, e.g. its
  lock expired) is INVALID_RECORD_STATE for that partition; a malformed batch (offsets out
  of order, types not matching the range) is INVALID_REQUEST.
"""

from __future__ import annotations

from kbroker.handlers._share import (
    FINAL_EPOCH,
    SessionError,
    acknowledge,
    check_member,
    close_session,
    enter_session,
    group_allowed,
    share_groups_enabled,
    share_runtime,
)
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.share_acknowledge_request import ShareAcknowledgeRequest
from kbroker.wire.messages.share_acknowledge_response import (
    LeaderIdAndEpoch,
    PartitionData,
    ShareAcknowledgeResponse,
    ShareAcknowledgeTopicResponse,
)


@handler(ApiKey.SHARE_ACKNOWLEDGE, 1, 2)
async def handle_share_acknowledge(
    ctx: RequestContext, req: ShareAcknowledgeRequest
) -> ShareAcknowledgeResponse:
    if not share_groups_enabled(ctx):
        return ShareAcknowledgeResponse(error_code=ErrorCode.UNSUPPORTED_VERSION)
    if not group_allowed(ctx, req.group_id):
        return ShareAcknowledgeResponse(error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED)
    runtime = share_runtime(ctx)
    group_id, member_id = req.group_id or "", req.member_id or ""
    try:
        if req.share_session_epoch != FINAL_EPOCH:  # a member that left may still close its sessions
            check_member(ctx, group_id, member_id)
        enter_session(runtime, group_id, member_id, ctx.node_id, req.share_session_epoch, may_open=False)
    except SessionError as error:
        return ShareAcknowledgeResponse(error_code=error.code)
    response = ShareAcknowledgeResponse(
        acquisition_lock_timeout_ms=runtime.coordinator.lock_duration_ms(group_id)
    )
    for t in req.topics:
        topic = ctx.broker.metadata.by_id(t.topic_id)
        parts = []
        for p in t.partitions:
            if topic is None or not 0 <= p.partition_index < topic.num_partitions:
                code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                leader = LeaderIdAndEpoch(leader_id=-1, leader_epoch=-1)
            else:
                code = acknowledge(
                    runtime,
                    group_id,
                    member_id,
                    t.topic_id,
                    p.partition_index,
                    p.acknowledgement_batches,
                )
                leader = LeaderIdAndEpoch(
                    leader_id=ctx.broker.config.node_id,
                    leader_epoch=topic.leader_epochs[p.partition_index],
                )
            parts.append(
                PartitionData(
                    partition_index=p.partition_index, error_code=code, current_leader=leader
                )
            )
        response.responses.append(
            ShareAcknowledgeTopicResponse(topic_id=t.topic_id, partitions=parts)
        )
    if req.share_session_epoch == FINAL_EPOCH:
        close_session(runtime, group_id, member_id, ctx.node_id)
    return response

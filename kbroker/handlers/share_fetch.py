"""ShareFetch (key 78): acknowledge, then acquire records for a share-group member.

Version notes:
- v1-v2 served (every version in the specs; librdkafka 2.16's ShareConsumer).  v1 adds
  MaxRecords and BatchSize and the response's AcquisitionLockTimeoutMs.  v2 adds
  ShareAcquireMode (batch-optimized and record-limit both honour MaxRecords here) and
  IsRenewAck (RENEW acknowledgements extend a lock).
- Share sessions (per group, member and node: each node of a virtual cluster keeps its
  own, as each Kafka broker does): epoch 0 opens one with the listed partitions (no
  acknowledgements allowed: INVALID_REQUEST), -1 applies the acknowledgements and closes it
  (the member's other records in it come back at once; nothing is fetched), any other epoch
  must be the next one (INVALID_SHARE_SESSION_EPOCH; unknown: SHARE_SESSION_NOT_FOUND).
  Later requests add partitions and forget ``ForgottenTopicsData``.  The member must belong
  to the share group (UNKNOWN_MEMBER_ID).
- Each session partition is read from the share-partition's first available offset;
  batches come back whole, as stored, and ``AcquiredRecords`` says which offsets of them
  are this member's (with their delivery counts).  MaxRecords bounds the acquired records
  across partitions, MaxBytes the bytes (the first batch always fits, KIP-74).
- Long poll: with nothing acquired and no acknowledgement to report, the request parks
  until a produce or a released record wakes one of its partitions, or MaxWaitMs passes.
- Partitions in the answer: those with acquired records, an error, or an acknowledgement
  result; others are left out (the incremental answer Kafka gives).
"""

from __future__ import annotations

import time
from uuid import UUID

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
from kbroker.log.errors import LogError, OffsetOutOfRangeError
from kbroker.registry import RequestContext, handler
from kbroker.shares import ShareRuntime
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.share_fetch_request import ShareFetchRequest
from kbroker.wire.messages.share_fetch_response import (
    AcquiredRecords,
    LeaderIdAndEpoch,
    PartitionData,
    ShareFetchableTopicResponse,
    ShareFetchResponse,
)

DEFAULT_MAX_RECORDS = 500
"""MaxRecords when a request gives none (v0 had no field; librdkafka sends its own)."""


def _leader(ctx: RequestContext, topic_id: UUID, partition: int) -> LeaderIdAndEpoch:
    topic = ctx.broker.metadata.by_id(topic_id)
    if topic is None or not 0 <= partition < topic.num_partitions:
        return LeaderIdAndEpoch(leader_id=-1, leader_epoch=-1)
    return LeaderIdAndEpoch(
        leader_id=ctx.broker.config.node_id, leader_epoch=topic.leader_epochs[partition]
    )


def _read(
    ctx: RequestContext,
    runtime: ShareRuntime,
    group_id: str,
    member_id: str,
    topic_id: UUID,
    partition: int,
    budget: list[int],
) -> PartitionData | None:
    """Acquire what one partition can give; None when it has nothing.  ``budget`` is
    [records left, bytes left, bytes so far]."""
    topic = ctx.broker.metadata.by_id(topic_id)
    if topic is None or not 0 <= partition < topic.num_partitions:
        return PartitionData(
            partition_index=partition,
            error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            current_leader=_leader(ctx, topic_id, partition),
            records=b"",
        )
    log = ctx.broker.topics.log(topic.name, partition)
    if log is None or budget[0] <= 0:
        return None
    coordinator = runtime.coordinator
    start = runtime.finish(coordinator.fetch_offset(group_id, topic_id, partition))
    if start is None:
        return None
    try:
        fetched = log.read(
            start, max(budget[1], 0), max_offset=log.high_watermark, min_one_batch=budget[2] == 0
        )
    except OffsetOutOfRangeError:
        return None
    except LogError:
        return PartitionData(
            partition_index=partition,
            error_code=ErrorCode.KAFKA_STORAGE_ERROR,
            current_leader=_leader(ctx, topic_id, partition),
            records=b"",
        )
    if not fetched.records:
        return None
    last = min(fetched.next_offset, log.high_watermark) - 1
    ranges = runtime.finish(
        coordinator.acquire(group_id, member_id, topic_id, partition, start, last, budget[0])
    )
    if not ranges:
        return None
    budget[0] -= sum(r[1] - r[0] + 1 for r in ranges)
    size = len(fetched.records)
    budget[1] -= size
    budget[2] += size
    return PartitionData(
        partition_index=partition,
        current_leader=_leader(ctx, topic_id, partition),
        records=fetched.records,
        acquired_records=[
            AcquiredRecords(first_offset=f, last_offset=la, delivery_count=c) for f, la, c in ranges
        ],
    )


@handler(ApiKey.SHARE_FETCH, 1, 2)
async def handle_share_fetch(ctx: RequestContext, req: ShareFetchRequest) -> ShareFetchResponse:
    if not share_groups_enabled(ctx):
        return ShareFetchResponse(error_code=ErrorCode.UNSUPPORTED_VERSION)
    if not group_allowed(ctx, req.group_id):
        return ShareFetchResponse(error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED)
    runtime = share_runtime(ctx)
    group_id, member_id = req.group_id or "", req.member_id or ""
    epoch = req.share_session_epoch
    has_acks = any(p.acknowledgement_batches for t in req.topics for p in t.partitions)
    try:
        if epoch != FINAL_EPOCH:  # a member that left may still close its sessions
            check_member(ctx, group_id, member_id)
        if epoch == 0 and has_acks:
            raise SessionError(ErrorCode.INVALID_REQUEST)
        session = enter_session(runtime, group_id, member_id, ctx.node_id, epoch, may_open=True)
    except SessionError as error:
        return ShareFetchResponse(error_code=error.code)
    lock_ms = runtime.coordinator.lock_duration_ms(group_id)
    # 1. acknowledgements (applied once, before any waiting)
    answered: dict[tuple[UUID, int], PartitionData] = {}
    for t in req.topics:
        for p in t.partitions:
            if p.acknowledgement_batches:
                code = acknowledge(
                    runtime,
                    group_id,
                    member_id,
                    t.topic_id,
                    p.partition_index,
                    p.acknowledgement_batches,
                )
                answered[(t.topic_id, p.partition_index)] = PartitionData(
                    partition_index=p.partition_index,
                    acknowledge_error_code=code,
                    current_leader=_leader(ctx, t.topic_id, p.partition_index),
                    records=b"",  # v1+: not nullable
                )
    if epoch == FINAL_EPOCH:
        close_session(runtime, group_id, member_id, ctx.node_id)
        return _response(answered, lock_ms)
    # 2. the session's partitions
    for t in req.topics:
        session.partitions.update((t.topic_id, p.partition_index) for p in t.partitions)
    forgotten = {(f.topic_id, p) for f in req.forgotten_topics_data for p in f.partitions}
    if forgotten:
        session.partitions -= forgotten
        runtime.finish(runtime.coordinator.release_member(group_id, member_id, forgotten))
    # 3. acquire, or park until something arrives
    max_records = req.max_records if req.max_records > 0 else DEFAULT_MAX_RECORDS
    deadline = time.monotonic() + max(req.max_wait_ms, 0) / 1000
    while True:
        if runtime.sessions.get((group_id, member_id, ctx.node_id)) is not session:
            break  # the member left (or reopened its session) while this request waited
        budget = [max_records, max(req.max_bytes, 0), 0]
        found = False
        for topic_id, partition in sorted(session.partitions):
            data = _read(ctx, runtime, group_id, member_id, topic_id, partition, budget)
            if data is None:
                continue
            found = True
            previous = answered.get((topic_id, partition))
            if previous is not None:
                data.acknowledge_error_code = previous.acknowledge_error_code
            answered[(topic_id, partition)] = data
        remaining = deadline - time.monotonic()
        if found or answered or remaining <= 0 or ctx.broker.closing:
            break
        keys = []
        for topic_id, partition in session.partitions:
            topic = ctx.broker.metadata.by_id(topic_id)
            if topic is not None:
                keys.append((topic.name, partition))
        await ctx.broker.waiters.wait(keys, remaining)
    return _response(answered, lock_ms)


def _response(answered: dict[tuple[UUID, int], PartitionData], lock_ms: int) -> ShareFetchResponse:
    by_topic: dict[UUID, list[PartitionData]] = {}
    for (topic_id, _partition), data in sorted(answered.items()):
        by_topic.setdefault(topic_id, []).append(data)
    return ShareFetchResponse(
        acquisition_lock_timeout_ms=lock_ms,
        responses=[
            ShareFetchableTopicResponse(topic_id=t, partitions=parts)
            for t, parts in by_topic.items()
        ],
    )

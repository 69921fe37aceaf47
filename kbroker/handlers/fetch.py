"""Fetch (key 1).

Version notes:
- v4-v18 served (kcat/aiokafka/kafkajs v11, kafka-python v12, librdkafka 2.16 v16 when
  Metadata gave it a topic id, else v12).
- v18's tagged partition high_watermark (KIP-1166) is a follower's; a consumer never sets
  it and kbroker, having no followers, ignores it.
- v13+ name topics by topic id; an unknown id is UNKNOWN_TOPIC_ID.
- isolation_level 1 (read_committed) reads up to the last stable offset and gets the
  aborted transactions of the range (empty while no transaction aborted); 0 reads to the
  high watermark.
- v7+ fetch sessions (KIP-227): kbroker is sessionless.  A full request (session_id 0) is
  answered with session_id 0, which tells the client no session was made (kafka-python asks
  for one; the others never do); a request naming a session gets FETCH_SESSION_ID_NOT_FOUND.
- v9+ current_leader_epoch is checked (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH).
- Virtual cluster (``kbroker.cluster``): a partition this node does not lead is
  NOT_LEADER_OR_FOLLOWER, with v12+ current_leader and v16+ node_endpoints (KIP-951).
- Long poll: when fewer than min_bytes are ready the request parks until a produce to one
  of its partitions wakes it, or max_wait_ms passes.  No polling loop.
- Batches are returned as stored, whole (a fetch from inside a batch gets that batch); the
  first partition with data gets at least one batch even past max_bytes (KIP-74).
- Under a consumer_byte_rate quota max_bytes is capped at quota x (quota.window.num - 1) x
  quota.window.size.seconds, as Kafka caps it; a throttled Fetch is answered without records
  (kbroker.quotas).
- Memory: the answer reads no more than the room left in ``kbroker.queued.max.response.bytes``
  (kbroker.limits.ResponseMemory), at least the first batch; its record bytes are held in
  that budget until the connection has written the answer.
- ACLs: each topic needs READ (else TOPIC_AUTHORIZATION_FAILED per partition; an unknown
  topic id stays UNKNOWN_TOPIC_ID).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from kbroker.acl.check import TOPIC, allowed
from kbroker.acl.model import AclOperation
from kbroker.errors import KafkaError, log_error_code
from kbroker.handlers._partitions import find_partition
from kbroker.log.errors import LogError, OffsetOutOfRangeError
from kbroker.metadata import TopicMetadata
from kbroker.quotas.model import CONSUMER_BYTE_RATE
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.fetch_request import FetchPartition, FetchRequest

if TYPE_CHECKING:
    from kbroker.server import Broker
from kbroker.wire.messages.fetch_response import (
    AbortedTransaction,
    FetchableTopicResponse,
    FetchResponse,
    PartitionData,
)

READ_COMMITTED = 1


def _read_partition(
    ctx: RequestContext, topic: TopicMetadata | None, p: FetchPartition, read_committed: bool, budget: list[int]
) -> PartitionData:
    out = PartitionData(partition_index=p.partition, error_code=ErrorCode.NONE, high_watermark=-1, records=b"")
    try:
        log = find_partition(ctx, topic, p.partition, p.current_leader_epoch)
    except KafkaError as exc:
        out.error_code = exc.code
        return out
    out.high_watermark = log.high_watermark
    out.last_stable_offset = log.last_stable_offset
    out.log_start_offset = log.log_start_offset
    out.aborted_transactions = [] if read_committed else None
    max_offset = log.last_stable_offset if read_committed else log.high_watermark
    try:
        fetched = log.read(
            p.fetch_offset,
            min(p.partition_max_bytes, budget[0]),
            max_offset=max_offset,
            min_one_batch=budget[1] == 0,
        )
    except OffsetOutOfRangeError:
        out.error_code = ErrorCode.OFFSET_OUT_OF_RANGE
        return out
    except LogError as exc:
        out.error_code = log_error_code(exc)
        return out
    if read_committed and fetched.size_bytes:
        out.aborted_transactions = [
            AbortedTransaction(producer_id=pid, first_offset=first)
            for pid, first in log.aborted_transactions(fetched.first_offset, fetched.next_offset)
        ]
    out.records = fetched.records
    budget[0] -= fetched.size_bytes
    budget[1] += fetched.size_bytes
    return out


def _max_bytes(ctx: RequestContext, req: FetchRequest) -> int:
    """The request's max_bytes, capped under a consumer_byte_rate quota by what the quota
    allows over its windows (Kafka's maxValueInQuotaWindow), so one answer cannot exceed it."""
    quotas = ctx.broker.quotas
    if quotas is None or not quotas.active:
        return req.max_bytes
    return min(req.max_bytes, quotas.max_value_in_window(CONSUMER_BYTE_RATE, ctx.session.principal, ctx.client_id))


def _read_all(ctx: RequestContext, req: FetchRequest) -> tuple[FetchResponse, int, bool]:
    """One pass over every requested partition: (response, bytes, whether any partition erred)."""
    metadata = ctx.broker.metadata
    read_committed = req.isolation_level == READ_COMMITTED
    max_bytes = max(_max_bytes(ctx, req), 0)
    room = ctx.broker.response_memory.room()  # kbroker.queued.max.response.bytes
    if room < max_bytes:
        max_bytes = room  # 0: only the first batch (KIP-74's rule), so no consumer starves
        ctx.broker.response_memory.trimmed += 1
    budget = [max_bytes, 0]  # [bytes left, bytes so far]
    responses = []
    errored = False
    check = ctx.broker.authorizer is not None
    for t in req.topics:
        topic = metadata.by_id(t.topic_id) if ctx.api_version >= 13 else metadata.get(t.topic)
        denied = check and not (topic is None and ctx.api_version >= 13) and not allowed(
            ctx, AclOperation.READ, TOPIC, topic.name if topic is not None else t.topic
        )
        parts = []
        for p in t.partitions:
            if denied:
                parts.append(PartitionData(partition_index=p.partition, error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED, high_watermark=-1, records=b""))
            elif topic is None and ctx.api_version >= 13:
                parts.append(PartitionData(partition_index=p.partition, error_code=ErrorCode.UNKNOWN_TOPIC_ID, high_watermark=-1, records=b""))
            else:
                parts.append(_read_partition(ctx, topic, p, read_committed, budget))
            errored = errored or parts[-1].error_code != ErrorCode.NONE
        responses.append(FetchableTopicResponse(topic=t.topic, topic_id=t.topic_id, partitions=parts))
    return FetchResponse(error_code=ErrorCode.NONE, session_id=0, responses=responses), budget[1], errored


def _partition_keys(ctx: RequestContext, req: FetchRequest) -> list[tuple[str, int]]:
    keys: list[tuple[str, int]] = []
    for t in req.topics:
        if ctx.api_version >= 13:
            topic = ctx.broker.metadata.by_id(t.topic_id)
            name = topic.name if topic is not None else str(t.topic_id)
        else:
            name = t.topic
        keys.extend((name, p.partition) for p in t.partitions)
    return keys


def _count(broker: Broker, response: FetchResponse) -> None:
    """Bytes out per topic and partition-level errors, for /metrics."""
    stats = broker.stats
    for t in response.responses:
        for p in t.partitions:
            if p.records:
                topic = broker.metadata.by_id(t.topic_id) if not t.topic else None
                stats.fetched(topic.name if topic is not None else t.topic, len(p.records))
            if p.error_code:
                stats.error(ApiKey.FETCH, p.error_code)


@handler(ApiKey.FETCH, 4, 18)
async def handle_fetch(ctx: RequestContext, req: FetchRequest) -> FetchResponse:
    if ctx.api_version >= 7 and req.session_id != 0:
        return FetchResponse(error_code=ErrorCode.FETCH_SESSION_ID_NOT_FOUND, session_id=0)
    deadline = time.monotonic() + max(req.max_wait_ms, 0) / 1000
    broker = ctx.broker
    while True:
        response, size, errored = _read_all(ctx, req)
        remaining = deadline - time.monotonic()
        if size >= req.min_bytes or errored or remaining <= 0 or broker.closing:
            if size:
                # Held until the connection has written the answer (kbroker.limits.ResponseMemory).
                broker.response_memory.take(size)
                ctx.session.response_bytes += size
            _count(broker, response)
            if broker.cluster is not None:
                from kbroker.cluster_routing import annotate_fetch

                annotate_fetch(broker.cluster, ctx, response)
            return response
        await ctx.parked(broker.waiters.wait(_partition_keys(ctx, req), remaining))


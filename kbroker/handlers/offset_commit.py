"""OffsetCommit (key 8).

Version notes:
- v2-v10 served (Kafka 4.2's range; aiokafka v2-3, kafkajs v5, librdkafka 2.0.2 v7,
  kafka-python v8, librdkafka 2.16 v9).  v10 (KIP-848 follow-up) names topics by id only:
  an id this broker does not know (never created, or deleted, also when a topic of the
  same name was created since) is answered UNKNOWN_TOPIC_ID for each of its partitions
  and not committed, before ACLs are checked, as Kafka does; the response carries the ids.  Generation/member checks, metadata size, commit
  timestamps and retention are the coordinator's; commits with generation -1 from
  non-members (simple consumers, admin) are accepted for Empty groups.
- Every version: a partition that does not exist (unknown topic, or an index beyond the
  topic's partition count) is answered UNKNOWN_TOPIC_OR_PARTITION and not committed, as
  Kafka's KafkaApis does before the coordinator; the other partitions are committed.
- ACLs: READ on the group (else GROUP_AUTHORIZATION_FAILED everywhere) and on each topic
  (else TOPIC_AUTHORIZATION_FAILED), checked before existence.
"""

from __future__ import annotations

import copy

from kbroker.handlers._committed_topics import (
    denied_partitions,
    error_code,
    missing_partitions,
    requested,
    without_missing,
)
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestTopic,
)
from kbroker.wire.messages.offset_commit_response import (
    OffsetCommitResponse,
    OffsetCommitResponsePartition,
    OffsetCommitResponseTopic,
)

# OffsetCommit v10+ names topics by id only (the name field is not on the wire).
TOPIC_IDS_SINCE = 10


@handler(ApiKey.OFFSET_COMMIT, 2, 10)
async def handle_offset_commit(
    ctx: RequestContext, req: OffsetCommitRequest
) -> OffsetCommitResponse:
    if ctx.api_version < TOPIC_IDS_SINCE:
        return await _commit(ctx, req)
    # v10: name each topic from its id; unknown ids are answered here and go no further
    unknown: list[OffsetCommitRequestTopic] = []
    known = copy.copy(req)
    known.topics = []
    for t in req.topics:
        topic = ctx.broker.metadata.by_id(t.topic_id)
        if topic is None:
            unknown.append(t)
        else:
            t.name = topic.name
            known.topics.append(t)
    if not unknown:
        return await _commit(ctx, req)
    response = await _commit(ctx, known) if known.topics else OffsetCommitResponse()
    answered = {id(t): r for t, r in zip(known.topics, response.topics, strict=True)}
    response.topics = [
        answered[id(t)]
        if id(t) in answered
        else OffsetCommitResponseTopic(
            topic_id=t.topic_id,
            partitions=[
                OffsetCommitResponsePartition(
                    partition_index=p.partition_index, error_code=ErrorCode.UNKNOWN_TOPIC_ID
                )
                for p in t.partitions
            ],
        )
        for t in req.topics
    ]
    return response


async def _commit(ctx: RequestContext, req: OffsetCommitRequest) -> OffsetCommitResponse:
    """The commit of ``req``, whose topics all have names (v10: resolved from known ids)."""
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    denied = denied_partitions(ctx, req)
    missing = missing_partitions(ctx.broker.metadata, requested(req)) | denied.keys()
    if not missing and req.topics:
        response = runtime.finish(
            runtime.coordinator.commit_offsets(req, api_version=ctx.api_version)
        )
        assert response is not None
        return response
    # Only what exists reaches the coordinator; nothing at all if nothing exists (Kafka
    # then answers without touching the group: no generation check, no session reset).
    existing = without_missing(req, missing)
    answered: dict[tuple[str, int], int] = {}
    if existing.topics:
        response = runtime.finish(
            runtime.coordinator.commit_offsets(existing, api_version=ctx.api_version)
        )
        assert response is not None
        answered = {
            (t.name, p.partition_index): p.error_code for t in response.topics for p in t.partitions
        }
    return OffsetCommitResponse(
        topics=[
            OffsetCommitResponseTopic(
                name=t.name,
                topic_id=t.topic_id,
                partitions=[
                    OffsetCommitResponsePartition(
                        partition_index=p.partition_index,
                        error_code=error_code(missing, answered, t.name, p.partition_index, denied),
                    )
                    for p in t.partitions
                ],
            )
            for t in req.topics
        ]
    )

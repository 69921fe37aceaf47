"""OffsetCommit (key 8).

Version notes:
- v2-v9 served (Kafka 4.0's range; aiokafka v2-3, kafkajs v5, librdkafka 2.0.2 v7,
  kafka-python v8, librdkafka 2.16 v9).  Generation/member checks, metadata size, commit
  timestamps and retention are the coordinator's; commits with generation -1 from
  non-members (simple consumers, admin) are accepted for Empty groups.
- Every version: a partition that does not exist (unknown topic, or an index beyond the
  topic's partition count) is answered UNKNOWN_TOPIC_OR_PARTITION and not committed, as
  Kafka's KafkaApis does before the coordinator; the other partitions are committed.
- ACLs: READ on the group (else GROUP_AUTHORIZATION_FAILED everywhere) and on each topic
  (else TOPIC_AUTHORIZATION_FAILED), checked before existence.
"""

from __future__ import annotations

from kbroker.handlers._committed_topics import (
    denied_partitions,
    error_code,
    missing_partitions,
    requested,
    without_missing,
)
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.offset_commit_request import OffsetCommitRequest
from kbroker.wire.messages.offset_commit_response import (
    OffsetCommitResponse,
    OffsetCommitResponsePartition,
    OffsetCommitResponseTopic,
)


@handler(ApiKey.OFFSET_COMMIT, 2, 9)
async def handle_offset_commit(ctx: RequestContext, req: OffsetCommitRequest) -> OffsetCommitResponse:
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    denied = denied_partitions(ctx, req)
    missing = missing_partitions(ctx.broker.metadata, requested(req)) | denied.keys()
    if not missing and req.topics:
        response = runtime.finish(runtime.coordinator.commit_offsets(req, api_version=ctx.api_version))
        assert response is not None
        return response
    # Only what exists reaches the coordinator; nothing at all if nothing exists (Kafka
    # then answers without touching the group: no generation check, no session reset).
    existing = without_missing(req, missing)
    answered: dict[tuple[str, int], int] = {}
    if existing.topics:
        response = runtime.finish(runtime.coordinator.commit_offsets(existing, api_version=ctx.api_version))
        assert response is not None
        answered = {(t.name, p.partition_index): p.error_code for t in response.topics for p in t.partitions}
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

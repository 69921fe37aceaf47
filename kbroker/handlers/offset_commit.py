"""OffsetCommit (key 8).

Version notes:
- v2-v9 served (Kafka 4.0's range; aiokafka v2-3, kafkajs v5, librdkafka 2.0.2 v7,
  kafka-python v8, librdkafka 2.16 v9).  Generation/member checks, metadata size, commit
  timestamps and retention are the coordinator's; commits with generation -1 from
  non-members (simple consumers, admin) are accepted for Empty groups.
"""

from __future__ import annotations

from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.offset_commit_request import OffsetCommitRequest
from kbroker.wire.messages.offset_commit_response import OffsetCommitResponse


@handler(ApiKey.OFFSET_COMMIT, 2, 9)
async def handle_offset_commit(ctx: RequestContext, req: OffsetCommitRequest) -> OffsetCommitResponse:
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.commit_offsets(req, api_version=ctx.api_version))
    assert response is not None
    return response

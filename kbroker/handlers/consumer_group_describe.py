"""ConsumerGroupDescribe (key 69).

Version notes:
- v0-v1 served (every version in the specs).  v1 adds ``MemberType`` (1: a member of the
  consumer protocol; 0: a classic member of a consumer group during an online migration,
  ``coordinator.migration``).  Authorized operations are not reported (INT32_MIN).  A group id
  that is unknown, or a classic group, answers GROUP_ID_NOT_FOUND, as Kafka does.
"""

from __future__ import annotations

from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.consumer_group_describe_request import ConsumerGroupDescribeRequest
from kbroker.wire.messages.consumer_group_describe_response import ConsumerGroupDescribeResponse


@handler(ApiKey.CONSUMER_GROUP_DESCRIBE, 0, 1)
async def handle_consumer_group_describe(
    ctx: RequestContext, req: ConsumerGroupDescribeRequest
) -> ConsumerGroupDescribeResponse:
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    response = runtime.finish(
        runtime.coordinator.consumer_group_describe(req, api_version=ctx.api_version)
    )
    assert response is not None
    return response

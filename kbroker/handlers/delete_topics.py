"""DeleteTopics (key 20).

Version notes:
- v1-v6 served (kcat/kafkajs v1, aiokafka v3, librdkafka v4, kafka-python v6).
- v0-v5 name topics in topic_names; v6 in topics, by name or by topic id.
- v5+ error_message; v6+ topic_id in the result.
- Internal topics cannot be deleted (TOPIC_AUTHORIZATION_FAILED in Kafka when not allowed;
  kbroker answers INVALID_REQUEST with a message); unknown names UNKNOWN_TOPIC_OR_PARTITION,
  unknown ids UNKNOWN_TOPIC_ID.
- ACLs: DELETE on the topic, else TOPIC_AUTHORIZATION_FAILED (by id: an unknown id stays
  UNKNOWN_TOPIC_ID).
"""

from __future__ import annotations

import uuid

from kbroker.acl.check import TOPIC, allowed
from kbroker.acl.model import AclOperation
from kbroker.metadata import INTERNAL_TOPICS
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.delete_topics_request import DeleteTopicsRequest
from kbroker.wire.messages.delete_topics_response import DeletableTopicResult, DeleteTopicsResponse

ZERO_UUID = uuid.UUID(int=0)


def _delete(ctx: RequestContext, name: str | None, topic_id: uuid.UUID) -> DeletableTopicResult:
    metadata = ctx.broker.metadata
    topic = metadata.get(name) if name is not None else metadata.by_id(topic_id)
    shown = name if name is not None or ctx.api_version >= 6 else ""
    # By name the ACL is checked first (a denied principal learns nothing); by id, once known.
    if (name is not None or topic is not None) and not allowed(ctx, AclOperation.DELETE, TOPIC, topic.name if topic else name or ""):
        code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
        return DeletableTopicResult(name=shown, topic_id=topic_id, error_code=code, error_message=code.name)
    if topic is None:
        code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if name is not None else ErrorCode.UNKNOWN_TOPIC_ID
        return DeletableTopicResult(name=shown, topic_id=topic_id, error_code=code, error_message=code.name)
    if topic.name in INTERNAL_TOPICS:
        return DeletableTopicResult(name=topic.name, topic_id=topic.topic_id, error_code=ErrorCode.INVALID_REQUEST, error_message=f"Internal topic {topic.name} cannot be deleted")
    ctx.broker.topics.delete_topic(topic.name)
    return DeletableTopicResult(name=topic.name, topic_id=topic.topic_id, error_code=ErrorCode.NONE, error_message=None)


@handler(ApiKey.DELETE_TOPICS, 1, 6)
async def handle_delete_topics(ctx: RequestContext, req: DeleteTopicsRequest) -> DeleteTopicsResponse:
    if ctx.api_version >= 6:
        wanted = [(t.name, t.topic_id) for t in req.topics]
    else:
        wanted = [(name, ZERO_UUID) for name in req.topic_names]
    return DeleteTopicsResponse(responses=[_delete(ctx, name, topic_id) for name, topic_id in wanted])

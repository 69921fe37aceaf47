"""FindCoordinator (key 10).

Version notes:
- v0-v6 served; librdkafka 2.0.2 needs v0 in the advertised range to look up coordinators
  at all; aiokafka sends v1, librdkafka/kafkajs v2, kafka-python v6.
- key_type 0 (group) and 1 (transaction): this node coordinates everything; in a virtual
  cluster (``kbroker.cluster``) the leader of the key's internal-topic partition does.  A group
  lookup creates ``__consumer_offsets`` if it does not exist yet, as Kafka does.
- v4+ batch: ``coordinator_keys``, one answer each; v0-3 a single ``key``.
- Other key types (share groups, v6): INVALID_REQUEST.
- A group lookup that cannot create ``__consumer_offsets`` (a full disk) answers
  COORDINATOR_NOT_AVAILABLE (retriable), as Kafka does while the topic is unavailable.
- ACLs: DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED) or the transactional id
  (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), per key; a denied key gets no coordinator.
"""

from __future__ import annotations

from kbroker.acl.check import DENIED_ERROR, GROUP, TRANSACTIONAL_ID, allowed
from kbroker.acl.model import AclOperation
from kbroker.coordinator.find_coordinator import GROUP_KEY_TYPE, find_coordinator
from kbroker.log.errors import LogStorageError
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.find_coordinator_request import FindCoordinatorRequest
from kbroker.wire.messages.find_coordinator_response import Coordinator, FindCoordinatorResponse


def _denied_keys(ctx: RequestContext, req: FindCoordinatorRequest) -> FindCoordinatorResponse | None:
    """The answer when the ACLs refuse some key (v4+: the allowed keys answered as usual,
    the refused ones with the error); None when every key is allowed."""
    resource = GROUP if ctx.api_version == 0 or req.key_type == GROUP_KEY_TYPE else TRANSACTIONAL_ID
    code = DENIED_ERROR[resource]
    if ctx.api_version < 4:
        if allowed(ctx, AclOperation.DESCRIBE, resource, req.key):
            return None
        return FindCoordinatorResponse(error_code=code, error_message=None, node_id=-1, host="", port=-1)
    refused = [k for k in req.coordinator_keys if not allowed(ctx, AclOperation.DESCRIBE, resource, k)]
    if not refused:
        return None
    req.coordinator_keys = [k for k in req.coordinator_keys if k not in refused]
    response = FindCoordinatorResponse()
    if req.coordinator_keys:
        broker = ctx.broker
        if req.key_type == GROUP_KEY_TYPE:
            broker.groups.ensure_offsets_topic()
        host, port = broker.config.advertised
        response = find_coordinator(req, api_version=ctx.api_version, node_id=broker.config.node_id, host=host, port=port)
    response.coordinators.extend(
        Coordinator(key=k, node_id=-1, host="", port=-1, error_code=code, error_message=None) for k in refused
    )
    return response


def _not_available(ctx: RequestContext, req: FindCoordinatorRequest) -> FindCoordinatorResponse:
    """COORDINATOR_NOT_AVAILABLE for every key: ``__consumer_offsets`` cannot be created."""
    code = ErrorCode.COORDINATOR_NOT_AVAILABLE
    if ctx.api_version < 4:
        return FindCoordinatorResponse(error_code=code, error_message=None, node_id=-1, host="", port=-1)
    return FindCoordinatorResponse(
        coordinators=[
            Coordinator(key=k, node_id=-1, host="", port=-1, error_code=code, error_message=None)
            for k in req.coordinator_keys
        ]
    )


@handler(ApiKey.FIND_COORDINATOR, 0, 6)
async def handle_find_coordinator(ctx: RequestContext, req: FindCoordinatorRequest) -> FindCoordinatorResponse:
    broker = ctx.broker
    if broker.authorizer is not None:
        denied = _denied_keys(ctx, req)
        if denied is not None:
            return denied
    if ctx.api_version == 0 or req.key_type == GROUP_KEY_TYPE:
        try:
            broker.groups.ensure_offsets_topic()
        except (OSError, LogStorageError):  # e.g. a full disk: the client retries
            return _not_available(ctx, req)
    if broker.cluster is not None:
        from kbroker.cluster_routing import find_coordinator as find_cluster_coordinator

        return find_cluster_coordinator(broker.cluster, ctx, req)
    host, port = broker.config.advertised_for(ctx.session.listener_name)
    return find_coordinator(req, api_version=ctx.api_version, node_id=broker.config.node_id, host=host, port=port)

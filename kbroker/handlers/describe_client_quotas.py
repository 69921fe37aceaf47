"""DescribeClientQuotas (key 48).

Version notes:
- v0-v1 served (Kafka 4's range; v1 is flexible, nothing else changed).
- Needs DESCRIBE_CONFIGS on the CLUSTER: else CLUSTER_AUTHORIZATION_FAILED with null entries.
- The filter is checked as Kafka's broker checks it (``ClientQuotasImage.describe``): an empty
  entity type, a type listed twice, a match string with MATCH_TYPE_DEFAULT / SPECIFIED, none
  with MATCH_TYPE_EXACT, or ``ip`` beside ``user``/``client-id`` are INVALID_REQUEST; an
  unknown entity type or match type is UNSUPPORTED_VERSION.  A refused filter answers the
  error with its message and null entries.
- MATCH_TYPE_SPECIFIED matches any entity of that type, the default included (Kafka's KRaft
  broker only checks that the type is present).  ``strict`` also excludes entities with
  types the filter does not name.  An empty filter matches every entity.
- Entries are sorted by entity (Kafka answers in its map's order); entities whose every
  key was removed no longer exist.
"""

from __future__ import annotations

from kbroker.acl.check import CLUSTER, allowed
from kbroker.acl.model import AclOperation
from kbroker.quotas.model import QuotaProblem, describe_filter
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.describe_client_quotas_request import DescribeClientQuotasRequest
from kbroker.wire.messages.describe_client_quotas_response import (
    DescribeClientQuotasResponse,
    EntityData,
    EntryData,
    ValueData,
)


@handler(ApiKey.DESCRIBE_CLIENT_QUOTAS, 0, 1)
async def handle_describe_client_quotas(
    ctx: RequestContext, req: DescribeClientQuotasRequest
) -> DescribeClientQuotasResponse:
    if not allowed(ctx, AclOperation.DESCRIBE_CONFIGS, CLUSTER):
        return DescribeClientQuotasResponse(
            error_code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
            error_message="Cluster authorization failed.",
            entries=None,
        )
    try:
        entity_filter = describe_filter(
            ((c.entity_type, c.match_type, c.match) for c in req.components), req.strict
        )
    except QuotaProblem as problem:
        return DescribeClientQuotasResponse(
            error_code=problem.code, error_message=problem.message, entries=None
        )
    quotas = ctx.broker.quotas
    assert quotas is not None
    found = sorted(
        quotas.describe(entity_filter),
        key=lambda item: [(kind, name or "") for kind, name in item[0]],
    )
    return DescribeClientQuotasResponse(
        error_code=ErrorCode.NONE,
        error_message=None,
        entries=[
            EntryData(
                entity=[EntityData(entity_type=kind, entity_name=name) for kind, name in entity],
                values=[ValueData(key=key, value=value) for key, value in sorted(values.items())],
            )
            for entity, values in found
        ],
    )

"""DescribeAcls (key 29).

Version notes:
- v1-v3 served (Kafka 4's range; v1 added the pattern type filter, v2 is flexible).
- Needs DESCRIBE on the CLUSTER (ALTER implies it): else CLUSTER_AUTHORIZATION_FAILED.
- Without an authorizer: SECURITY_DISABLED, as Kafka.
- The filter is Kafka's AclBindingFilter: null name/principal/host and ANY match everything,
  pattern type MATCH matches the LITERAL name, the LITERAL ``*`` and every PREFIXED pattern
  the name starts with; principal and host are compared exactly (``User:*`` matches only
  ACLs written for ``User:*``).  A filter with an UNKNOWN element: INVALID_REQUEST.
- Results are grouped by resource pattern, in a stable order.
"""

from __future__ import annotations

from kbroker.acl.check import CLUSTER, require
from kbroker.acl.model import AclBinding, AclFilter, AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.describe_acls_request import DescribeAclsRequest
from kbroker.wire.messages.describe_acls_response import (
    AclDescription,
    DescribeAclsResource,
    DescribeAclsResponse,
)

NO_AUTHORIZER = "No Authorizer is configured on the broker"


@handler(ApiKey.DESCRIBE_ACLS, 1, 3)
async def handle_describe_acls(ctx: RequestContext, req: DescribeAclsRequest) -> DescribeAclsResponse:
    authorizer = ctx.broker.authorizer
    if authorizer is None:
        return DescribeAclsResponse(error_code=ErrorCode.SECURITY_DISABLED, error_message=NO_AUTHORIZER)
    require(ctx, AclOperation.DESCRIBE, CLUSTER)
    acl_filter = AclFilter.of(
        req.resource_type_filter, req.resource_name_filter, req.pattern_type_filter,
        req.principal_filter, req.host_filter, req.operation, req.permission_type,
    )
    if acl_filter.unknown_element():
        return DescribeAclsResponse(
            error_code=ErrorCode.INVALID_REQUEST, error_message="The filter must not contain UNKNOWN elements."
        )
    grouped: dict[tuple[int, str, int], list[AclBinding]] = {}
    for acl in authorizer.describe(acl_filter):
        grouped.setdefault((acl.resource_type, acl.resource_name, acl.pattern_type), []).append(acl)
    return DescribeAclsResponse(
        error_code=ErrorCode.NONE,
        error_message=None,
        resources=[
            DescribeAclsResource(
                resource_type=rtype,
                resource_name=name,
                pattern_type=ptype,
                acls=[
                    AclDescription(principal=a.principal, host=a.host, operation=a.operation, permission_type=a.permission_type)
                    for a in acls
                ],
            )
            for (rtype, name, ptype), acls in grouped.items()
        ],
    )

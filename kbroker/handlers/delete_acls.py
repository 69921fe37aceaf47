"""DeleteAcls (key 31).

Version notes:
- v1-v3 served (Kafka 4's range; v1 added pattern type filters, v2 is flexible).
- Needs ALTER on the CLUSTER: otherwise each filter result is CLUSTER_AUTHORIZATION_FAILED.
- Without an authorizer: SECURITY_DISABLED for each filter, as Kafka.
- Filters match as in DescribeAcls; one with an UNKNOWN element gets INVALID_REQUEST and
  deletes nothing.  Each filter's result lists the ACLs it removed (an ACL matched by two
  filters is listed under the first).  The removal is durable before the answer, and every
  connection's next request is decided without the removed ACLs.
"""

from __future__ import annotations

from kbroker.acl.check import CLUSTER, require
from kbroker.acl.model import AclFilter, AclOperation
from kbroker.errors import KafkaError
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.delete_acls_request import DeleteAclsRequest
from kbroker.wire.messages.delete_acls_response import (
    DeleteAclsFilterResult,
    DeleteAclsMatchingAcl,
    DeleteAclsResponse,
)

NO_AUTHORIZER = "No Authorizer is configured on the broker"


def _all(req: DeleteAclsRequest, code: ErrorCode, message: str | None) -> DeleteAclsResponse:
    return DeleteAclsResponse(filter_results=[DeleteAclsFilterResult(error_code=code, error_message=message) for _ in req.filters])


@handler(ApiKey.DELETE_ACLS, 1, 3)
async def handle_delete_acls(ctx: RequestContext, req: DeleteAclsRequest) -> DeleteAclsResponse:
    authorizer = ctx.broker.authorizer
    if authorizer is None:
        return _all(req, ErrorCode.SECURITY_DISABLED, NO_AUTHORIZER)
    try:
        require(ctx, AclOperation.ALTER, CLUSTER)
    except KafkaError as exc:
        return _all(req, exc.code, None)
    filters = [
        AclFilter.of(
            f.resource_type_filter, f.resource_name_filter, f.pattern_type_filter,
            f.principal_filter, f.host_filter, f.operation, f.permission_type,
        )
        for f in req.filters
    ]
    valid = [f for f in filters if not f.unknown_element()]
    try:
        removed = iter(authorizer.delete(valid))
    except OSError as exc:
        return _all(req, ErrorCode.UNKNOWN_SERVER_ERROR, f"could not store the ACLs: {exc}")
    results: list[DeleteAclsFilterResult] = []
    for f in filters:
        if f.unknown_element():
            results.append(DeleteAclsFilterResult(
                error_code=ErrorCode.INVALID_REQUEST, error_message="The filter must not contain UNKNOWN elements."
            ))
            continue
        results.append(DeleteAclsFilterResult(
            error_code=ErrorCode.NONE,
            error_message=None,
            matching_acls=[
                DeleteAclsMatchingAcl(
                    error_code=ErrorCode.NONE, error_message=None,
                    resource_type=a.resource_type, resource_name=a.resource_name, pattern_type=a.pattern_type,
                    principal=a.principal, host=a.host, operation=a.operation, permission_type=a.permission_type,
                )
                for a in next(removed)
            ],
        ))
    return DeleteAclsResponse(filter_results=results)

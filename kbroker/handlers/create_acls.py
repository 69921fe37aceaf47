"""CreateAcls (key 30).

Version notes:
- v1-v3 served (Kafka 4's range: v0 was removed; v1 added PREFIXED patterns, v2 is the
  flexible form, v3 the same body).  kafka-python, aiokafka and librdkafka admin clients send v1-v3.
- Needs ALTER on the CLUSTER: otherwise every result is CLUSTER_AUTHORIZATION_FAILED.
- Without an authorizer (``authorizer.class.name`` unset): SECURITY_DISABLED for each, as Kafka.
- Each creation is validated as Kafka's AclApis / AclControlManager do (CLUSTER resource named
  ``kafka-cluster``, non-empty name, no ANY/UNKNOWN/MATCH, a ``Type:name`` principal):
  INVALID_REQUEST with Kafka's message; the valid ones are created, an existing ACL is no
  error.  The change is durable (``kbroker.acl.store``) before the answer, and every
  connection's next request sees it.
"""

from __future__ import annotations

from kbroker.acl.check import CLUSTER, require
from kbroker.acl.model import AclOperation, binding_error, new_binding
from kbroker.errors import KafkaError
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.create_acls_request import CreateAclsRequest
from kbroker.wire.messages.create_acls_response import AclCreationResult, CreateAclsResponse

NO_AUTHORIZER = "No Authorizer is configured on the broker"


def _all(req: CreateAclsRequest, code: ErrorCode, message: str | None) -> CreateAclsResponse:
    return CreateAclsResponse(results=[AclCreationResult(error_code=code, error_message=message) for _ in req.creations])


@handler(ApiKey.CREATE_ACLS, 1, 3)
async def handle_create_acls(ctx: RequestContext, req: CreateAclsRequest) -> CreateAclsResponse:
    authorizer = ctx.broker.authorizer
    if authorizer is None:
        return _all(req, ErrorCode.SECURITY_DISABLED, NO_AUTHORIZER)
    try:
        require(ctx, AclOperation.ALTER, CLUSTER)
    except KafkaError as exc:
        return _all(req, exc.code, None)
    results: list[AclCreationResult] = []
    valid = []
    for c in req.creations:
        acl = new_binding(c.resource_type, c.resource_name, c.resource_pattern_type, c.principal, c.host, c.operation, c.permission_type)
        error = binding_error(acl)
        if error is None:
            valid.append(acl)
            results.append(AclCreationResult(error_code=ErrorCode.NONE, error_message=None))
        else:
            results.append(AclCreationResult(error_code=ErrorCode.INVALID_REQUEST, error_message=error))
    try:
        authorizer.create(valid)
    except OSError as exc:
        for r in results:
            if r.error_code == ErrorCode.NONE:
                r.error_code, r.error_message = ErrorCode.UNKNOWN_SERVER_ERROR, f"could not store the ACLs: {exc}"
    return CreateAclsResponse(results=results)

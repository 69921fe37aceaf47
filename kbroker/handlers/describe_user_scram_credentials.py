"""DescribeUserScramCredentials (key 50).

Version notes:
- v0 (the only version; flexible) served: each user's mechanisms and iteration counts,
  never a salt or key.  users null or empty: every user with a credential.
- A user named twice: DUPLICATE_RESOURCE; a user without credentials: RESOURCE_NOT_FOUND
  (per user, as Kafka's ScramControlManager).
- ACLs: DESCRIBE on the cluster, else the top-level error CLUSTER_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

from collections import Counter

from kbroker.acl.check import CLUSTER, require
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.security.scram import MECHANISMS
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.describe_user_scram_credentials_request import (
    DescribeUserScramCredentialsRequest,
)
from kbroker.wire.messages.describe_user_scram_credentials_response import (
    CredentialInfo,
    DescribeUserScramCredentialsResponse,
    DescribeUserScramCredentialsResult,
)


@handler(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, 0, 0)
async def handle_describe_user_scram_credentials(
    ctx: RequestContext, req: DescribeUserScramCredentialsRequest
) -> DescribeUserScramCredentialsResponse:
    require(ctx, AclOperation.DESCRIBE, CLUSTER)
    store = ctx.broker.scram_credentials
    names = [u.name for u in req.users] if req.users else sorted(store.users)
    counts = Counter(names)
    results = []
    for name in dict.fromkeys(names):
        result = DescribeUserScramCredentialsResult(user=name, error_code=ErrorCode.NONE, error_message=None)
        if counts[name] > 1:
            result.error_code = ErrorCode.DUPLICATE_RESOURCE
            result.error_message = f"Cannot describe SCRAM credentials for the same user twice in a single request: {name}"
        elif not store.users.get(name):
            result.error_code = ErrorCode.RESOURCE_NOT_FOUND
            result.error_message = f"Attempt to describe a user credential that does not exist: {name}"
        else:
            result.credential_infos = [
                CredentialInfo(mechanism=MECHANISMS[mech][0], iterations=cred.iterations)
                for mech, cred in sorted(store.users[name].items())
            ]
        results.append(result)
    return DescribeUserScramCredentialsResponse(error_code=ErrorCode.NONE, error_message=None, results=results)

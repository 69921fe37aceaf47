"""CreateDelegationToken (key 38).

Version notes:
- v1-3 served (Kafka 4 removed v0).  v2 is the flexible form.  v3 (KIP-373) may name an
  owner other than the requester (needs CREATE_TOKENS on that USER, else
  DELEGATION_TOKEN_AUTHORIZATION_FAILED) and answers the token requester too.
- Refused with DELEGATION_TOKEN_REQUEST_NOT_ALLOWED on PLAINTEXT, on SSL without a client
  certificate and for a token-authenticated session; DELEGATION_TOKEN_AUTH_DISABLED without
  ``delegation.token.secret.key``; a renewer or owner that is not a ``User``:
  INVALID_PRINCIPAL_TYPE.  Lifetimes: kbroker.security.delegation.
"""

from __future__ import annotations

from kbroker.acl.check import allowed
from kbroker.acl.model import AclOperation, ResourceType
from kbroker.handlers._delegation import refusal, split, store
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.create_delegation_token_request import CreateDelegationTokenRequest
from kbroker.wire.messages.create_delegation_token_response import CreateDelegationTokenResponse


@handler(ApiKey.CREATE_DELEGATION_TOKEN, 1, 3)
async def handle_create_delegation_token(ctx: RequestContext, req: CreateDelegationTokenRequest) -> CreateDelegationTokenResponse:
    requester = ctx.session.principal
    kind, name = split(requester)
    answer = CreateDelegationTokenResponse(principal_type=kind, principal_name=name)
    if ctx.api_version >= 3:
        answer.token_requester_principal_type, answer.token_requester_principal_name = kind, name
    error = refusal(ctx)
    if error is not None:
        answer.error_code = error
        return answer
    owner = requester
    if ctx.api_version >= 3 and req.owner_principal_name:
        if req.owner_principal_type != "User":
            answer.error_code = ErrorCode.INVALID_PRINCIPAL_TYPE
            return answer
        owner = f"User:{req.owner_principal_name}"
        if owner != requester and not allowed(ctx, AclOperation.CREATE_TOKENS, ResourceType.USER, owner):
            answer.error_code = ErrorCode.DELEGATION_TOKEN_AUTHORIZATION_FAILED
            return answer
    if any(r.principal_type != "User" for r in req.renewers):
        answer.error_code = ErrorCode.INVALID_PRINCIPAL_TYPE
        return answer
    renewers = [f"{r.principal_type}:{r.principal_name}" for r in req.renewers]
    token = store(ctx).create(owner, requester, renewers, req.max_lifetime_ms, ctx.now_ms)
    answer.principal_type, answer.principal_name = split(owner)
    answer.issue_timestamp_ms, answer.expiry_timestamp_ms, answer.max_timestamp_ms = token.issue_ms, token.expiry_ms, token.max_ms
    answer.token_id, answer.hmac = token.token_id, token.hmac
    return answer

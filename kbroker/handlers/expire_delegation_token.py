"""ExpireDelegationToken (key 40).

Version notes:
- v1-2 served (Kafka 4 removed v0); v2 is the flexible form.
- As RenewDelegationToken (found by HMAC, owner/requester/renewer only, not past its max);
  expiry_time_period_ms < 0 removes the token at once (the answer's expiry is now), else the
  expiry becomes min(max, now + period).
"""

from __future__ import annotations

from kbroker.handlers._delegation import refusal, store
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.expire_delegation_token_request import ExpireDelegationTokenRequest
from kbroker.wire.messages.expire_delegation_token_response import ExpireDelegationTokenResponse


@handler(ApiKey.EXPIRE_DELEGATION_TOKEN, 1, 2)
async def handle_expire_delegation_token(ctx: RequestContext, req: ExpireDelegationTokenRequest) -> ExpireDelegationTokenResponse:
    error = refusal(ctx)
    if error is not None:
        return ExpireDelegationTokenResponse(error_code=error)
    tokens = store(ctx)
    token = tokens.by_hmac(req.hmac, ctx.now_ms)
    if token is None:
        return ExpireDelegationTokenResponse(error_code=ErrorCode.DELEGATION_TOKEN_NOT_FOUND)
    if not token.owner_or_renewer(ctx.session.principal):
        return ExpireDelegationTokenResponse(error_code=ErrorCode.DELEGATION_TOKEN_OWNER_MISMATCH)
    if token.max_ms < ctx.now_ms:
        return ExpireDelegationTokenResponse(error_code=ErrorCode.DELEGATION_TOKEN_EXPIRED)
    return ExpireDelegationTokenResponse(expiry_timestamp_ms=tokens.expire(token, req.expiry_time_period_ms, ctx.now_ms))

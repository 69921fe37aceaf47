"""RenewDelegationToken (key 39).

Version notes:
- v1-2 served (Kafka 4 removed v0); v2 is the flexible form.
- The token is found by its HMAC (else DELEGATION_TOKEN_NOT_FOUND); only its owner, its
  requester or a renewer may renew it (else DELEGATION_TOKEN_OWNER_MISMATCH); past its max
  time: DELEGATION_TOKEN_EXPIRED.  renew_period_ms < 0 means delegation.token.expiry.time.ms.
  The same refusals as CreateDelegationToken come first.
"""

from __future__ import annotations

from kbroker.handlers._delegation import refusal, store
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.renew_delegation_token_request import RenewDelegationTokenRequest
from kbroker.wire.messages.renew_delegation_token_response import RenewDelegationTokenResponse


@handler(ApiKey.RENEW_DELEGATION_TOKEN, 1, 2)
async def handle_renew_delegation_token(ctx: RequestContext, req: RenewDelegationTokenRequest) -> RenewDelegationTokenResponse:
    error = refusal(ctx)
    if error is not None:
        return RenewDelegationTokenResponse(error_code=error)
    tokens = store(ctx)
    token = tokens.by_hmac(req.hmac, ctx.now_ms)
    if token is None:
        return RenewDelegationTokenResponse(error_code=ErrorCode.DELEGATION_TOKEN_NOT_FOUND)
    if not token.owner_or_renewer(ctx.session.principal):
        return RenewDelegationTokenResponse(error_code=ErrorCode.DELEGATION_TOKEN_OWNER_MISMATCH)
    if token.max_ms < ctx.now_ms:
        return RenewDelegationTokenResponse(error_code=ErrorCode.DELEGATION_TOKEN_EXPIRED)
    return RenewDelegationTokenResponse(expiry_timestamp_ms=tokens.renew(token, req.renew_period_ms, ctx.now_ms))

"""SaslAuthenticate (key 36).

Version notes:
- v0: auth_bytes each way, error_code and error_message (KIP-152).
- v1 adds session_lifetime_ms (KIP-368): connections.max.reauth.ms when it is set, else 0.
- v2 is the flexible form.
- A failure is SASL_AUTHENTICATION_FAILED with Kafka's message, sent after
  connection.failed.authentication.delay.ms; the connection closes after it.  Outside an
  exchange: ILLEGAL_SASL_STATE.
"""

from __future__ import annotations

from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.sasl_authenticate_request import SaslAuthenticateRequest
from kbroker.wire.messages.sasl_authenticate_response import SaslAuthenticateResponse


@handler(ApiKey.SASL_AUTHENTICATE, 0, 2)
async def handle_sasl_authenticate(ctx: RequestContext, req: SaslAuthenticateRequest) -> SaslAuthenticateResponse:
    auth = ctx.session.sasl
    if auth is None:
        return SaslAuthenticateResponse(
            error_code=ErrorCode.ILLEGAL_SASL_STATE,
            error_message=f"SaslAuthenticate on listener {ctx.session.listener_name}, which has no SASL",
        )
    error, message, token, lifetime_ms = await auth.authenticate(req.auth_bytes, ctx.api_version)
    return SaslAuthenticateResponse(
        error_code=error, error_message=message, auth_bytes=token, session_lifetime_ms=lifetime_ms
    )

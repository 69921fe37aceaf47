"""SaslHandshake (key 17).

Version notes:
- v0: the SASL tokens that follow are bare size-prefixed frames, no Kafka header (the
  legacy exchange; kbroker.security.sasl's LEGACY_TOKEN state).
- v1: the tokens follow in SaslAuthenticate requests (KIP-152).
- The answer lists the listener's enabled mechanisms; an unsupported one is
  UNSUPPORTED_SASL_MECHANISM and the connection is closed after the answer.  On a listener
  without SASL, or after authentication without re-authentication: ILLEGAL_SASL_STATE.
"""

from __future__ import annotations

from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.sasl_handshake_request import SaslHandshakeRequest
from kbroker.wire.messages.sasl_handshake_response import SaslHandshakeResponse


@handler(ApiKey.SASL_HANDSHAKE, 0, 1)
async def handle_sasl_handshake(ctx: RequestContext, req: SaslHandshakeRequest) -> SaslHandshakeResponse:
    auth = ctx.session.sasl
    if auth is None:
        return SaslHandshakeResponse(error_code=ErrorCode.ILLEGAL_SASL_STATE, mechanisms=[])
    error, mechanisms = auth.handshake(req.mechanism, ctx.api_version)
    return SaslHandshakeResponse(error_code=error, mechanisms=mechanisms)

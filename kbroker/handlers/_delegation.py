"""What the delegation token handlers (keys 38-41) share: Kafka's allowTokenRequests, the
store, principals as (type, name)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.session import ANONYMOUS_PRINCIPAL
from kbroker.wire.errors import ErrorCode

if TYPE_CHECKING:
    from kbroker.registry import RequestContext
    from kbroker.security.delegation import DelegationTokenStore


def refusal(ctx: RequestContext) -> ErrorCode | None:
    """The error every token request gets before its own checks, or None: a connection that
    authenticated with a token, a PLAINTEXT one or one-way SSL (no client certificate) may
    not manage tokens (Kafka's KafkaApis.allowTokenRequests); then tokens must be enabled."""
    session = ctx.session
    if (
        session.token_authenticated
        or session.security_protocol == "PLAINTEXT"
        or (session.security_protocol == "SSL" and session.principal == ANONYMOUS_PRINCIPAL)
    ):
        return ErrorCode.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED
    if not store(ctx).enabled:
        return ErrorCode.DELEGATION_TOKEN_AUTH_DISABLED
    return None


def store(ctx: RequestContext) -> DelegationTokenStore:
    tokens: DelegationTokenStore = ctx.broker.delegation_tokens
    return tokens


def split(principal: str) -> tuple[str, str]:
    """("User", "alice") for "User:alice"."""
    kind, _sep, name = principal.partition(":")
    return kind, name

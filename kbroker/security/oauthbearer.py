"""SASL/OAUTHBEARER (RFC 7628): Kafka's validation of unsecured JWTs, or of signed ones
against a JSON Web Key Set.

The client's one message is ``n,,\\x01auth=Bearer <token>\\x01[key=value\\x01]...\\x01``.

Without ``sasl.oauthbearer.jwks.endpoint.url`` the token is a JWT whose header says
``"alg": "none"`` (Kafka's default, OAuthBearerUnsecuredValidatorCallbackHandler): no
signature is checked, the claims are: ``exp`` required and in the future
(``sasl.oauthbearer.clock.skew.seconds`` allowed), ``iat`` if present not in the future, the
principal from ``sub`` (or ``sasl.oauthbearer.sub.claim.name``),
``sasl.oauthbearer.expected.audience`` / ``.expected.issuer`` when set.

With it (Kafka's OAuthBearerValidatorCallbackHandler, which Kafka also wants named in
``listener.name.<l>.oauthbearer.sasl.server.callback.handler.class``; kbroker accepts that
line and does not need it): the token must be signed by a key of the set
(:mod:`kbroker.security.jwks`, PyJWT verifies), ``exp`` and ``iat`` are required, the same
skew, audience, issuer and subject rules apply, and the scope claim
(``sasl.oauthbearer.scope.claim.name``) if present must be a string or a list of strings.

On a bad token the server answers a JSON error challenge (``{"status":"invalid_token"}``);
the client then sends ``\\x01`` and the authentication fails with the reason, as Kafka does.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kbroker.security.jwks import JwksKeys

logger = logging.getLogger(__name__)

MAX_TOKEN_BYTES = 64 * 1024


class OAuthFailure(ValueError):
    """The token is refused; the text is sent to the client."""


def _b64url_json(part: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise OAuthFailure("malformed JWT: not base64url JSON") from None


class OAuthBearerExchange:
    """One OAUTHBEARER authentication (kbroker.security.sasl's Exchange protocol)."""

    def __init__(self, get: Any, jwks: JwksKeys | None = None) -> None:
        self.get = get
        self.jwks = jwks
        self.user = ""
        self.complete = False
        self.expires_at_ms: int | None = None
        self._failed: str | None = None

    def step(self, message: bytes) -> bytes:
        if self._failed is not None:  # the client's %x01 after the error challenge
            raise OAuthFailure(self._failed)
        try:
            self._validate(message)
        except OAuthFailure as exc:
            self._failed = f"Authentication failed: {exc}"
            # Logged now: clients that ignore the error challenge (aiokafka, kafkajs) never
            # send the %x01 that ends in SASL_AUTHENTICATION_FAILED with this reason.
            logger.info("OAUTHBEARER token refused (error challenge sent): %s", exc)
            return json.dumps({"status": "invalid_token"}).encode()
        self.complete = True
        return b""

    def _validate(self, message: bytes) -> None:
        if len(message) > MAX_TOKEN_BYTES:
            raise OAuthFailure("token too long")
        try:
            text = message.decode("utf-8")
        except UnicodeDecodeError:
            raise OAuthFailure("not UTF-8") from None
        gs2, sep, rest = text.partition("\x01")
        if not sep or not gs2.startswith(("n,", "y,")):
            raise OAuthFailure("invalid OAUTHBEARER client message")
        auth = next((kv[5:] for kv in rest.split("\x01") if kv.startswith("auth=")), None)
        if auth is None or not auth.startswith("Bearer "):
            raise OAuthFailure("no 'auth=Bearer <token>' in the client message")
        if self.jwks is not None:
            self._validate_signed(auth[7:].strip())
            return
        parts = auth[7:].strip().split(".")
        if len(parts) != 3:
            raise OAuthFailure("malformed JWT: expected three dot-separated parts")
        header, claims = _b64url_json(parts[0]), _b64url_json(parts[1])
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise OAuthFailure("malformed JWT")
        if header.get("alg") != "none":
            raise OAuthFailure("only unsecured JWTs (alg none) are accepted (signed tokens need sasl.oauthbearer.jwks.endpoint.url, not served yet)")
        now_s = time.time()
        skew = int(self.get("sasl.oauthbearer.clock.skew.seconds") or "30")
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)):
            raise OAuthFailure("the token has no numeric exp claim")
        if exp + skew < now_s:
            raise OAuthFailure("the token has expired")
        iat = claims.get("iat")
        if isinstance(iat, (int, float)) and iat - skew > now_s:
            raise OAuthFailure("the token was issued in the future")
        sub_claim = self.get("sasl.oauthbearer.sub.claim.name") or "sub"
        sub = claims.get(sub_claim)
        if not isinstance(sub, str) or not sub.strip():
            raise OAuthFailure(f"the token has no {sub_claim} claim")
        audience = [a.strip() for a in (self.get("sasl.oauthbearer.expected.audience") or "").split(",") if a.strip()]
        if audience:
            aud = claims.get("aud")
            auds = aud if isinstance(aud, list) else [aud]
            if not any(a in audience for a in auds):
                raise OAuthFailure("the token's audience is not expected")
        issuer = self.get("sasl.oauthbearer.expected.issuer")
        if issuer and claims.get("iss") != issuer:
            raise OAuthFailure("the token's issuer is not expected")
        self.user = sub
        self.expires_at_ms = int(exp * 1000)

    def _validate_signed(self, token: str) -> None:
        import jwt

        assert self.jwks is not None
        audience = [a.strip() for a in (self.get("sasl.oauthbearer.expected.audience") or "").split(",") if a.strip()]
        issuer = self.get("sasl.oauthbearer.expected.issuer") or None
        options = {
            "leeway": int(self.get("sasl.oauthbearer.clock.skew.seconds") or "30"),
            "audience": audience or None,
            "issuer": issuer,
            "options": {"require": ["exp", "iat"], "verify_aud": bool(audience)},
        }
        try:
            claims = self.jwks.verify(token, options)
        except jwt.ExpiredSignatureError:
            raise OAuthFailure("the token has expired") from None
        except jwt.PyJWTError as exc:
            raise OAuthFailure(f"the token is not valid: {exc}") from None
        sub_claim = self.get("sasl.oauthbearer.sub.claim.name") or "sub"
        sub = claims.get(sub_claim)
        if not isinstance(sub, str) or not sub.strip():
            raise OAuthFailure(f"the token has no {sub_claim} claim")
        scope_claim = self.get("sasl.oauthbearer.scope.claim.name") or "scope"
        scope = claims.get(scope_claim)
        if scope is not None and not isinstance(scope, str) and not (isinstance(scope, list) and all(isinstance(x, str) for x in scope)):
            raise OAuthFailure(f"the token's {scope_claim} claim is neither a string nor a list of strings")
        self.user = sub
        self.expires_at_ms = int(claims["exp"] * 1000)

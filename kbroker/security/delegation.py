"""Delegation tokens (KIP-48): lightweight credentials a SASL- or mTLS-authenticated user
creates for another process, which then authenticates with SCRAM as the token's owner.

Theory of operation
-------------------
Enabled only when ``delegation.token.secret.key`` is set (Kafka's rule; Kafka 4 dropped the
older ``delegation.token.master.key``).  A token has an id (a random base64url UUID,
as Kafka's ``generateUuidAsBase64``), an owner, the principal that requested it, renewers,
and three times: issued, expiry (renewable) and max (never passed).  Its HMAC is
HmacSHA512(secret key, token id): what the owner hands out as the "password".

Store (:class:`DelegationTokenStore`): ``delegation-tokens.json`` in the data directory,
written whole through a temporary file, fsync and rename on each change.  The HMAC is not
stored: it is recomputed from the secret at load (so a changed secret voids every token, as
in Kafka).  SCRAM-SHA-256/512 credentials for each token are derived from the base64 HMAC
with 4096 iterations when the token is made or loaded.

Times (``delegation.token.max.lifetime.ms``, ``delegation.token.expiry.time.ms``):

- create: max = issue + (request's max_lifetime_ms if > 0, capped by the config, else the
  config); expiry = min(max, issue + expiry.time.ms);
- renew: expiry = min(max, now + (renew_period_ms if >= 0 else expiry.time.ms));
- expire: with expiry_time_period_ms < 0 the token goes now; else expiry = min(max, now + it);
- a token past its expiry is gone: removed when the store is next used (Kafka removes them
  every ``delegation.token.expiry.check.interval.ms``; a removed token is NOT_FOUND either
  way), and never authenticates.

Authentication (:meth:`DelegationTokenStore.scram_credential`): a SCRAM client-first with
the extension ``tokenauth=true`` names the token id as user; the credential is the token's,
and the session's principal becomes the token's owner, marked token-authenticated (such a
session may not create, renew, expire or describe tokens: DELEGATION_TOKEN_REQUEST_NOT_ALLOWED,
as on PLAINTEXT and on SSL without a client certificate).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from kbroker.config import BrokerConfig
from kbroker.security.scram import DEFAULT_ITERATIONS, MECHANISMS, ScramCredential

STORE_FILE = "delegation-tokens.json"


def token_hmac(secret: str, token_id: str) -> bytes:
    return hmac.digest(secret.encode("utf-8"), token_id.encode("utf-8"), hashlib.sha512)


@dataclass(slots=True)
class DelegationToken:
    token_id: str
    owner: str  # "User:alice"
    requester: str
    renewers: list[str]
    issue_ms: int
    expiry_ms: int
    max_ms: int
    hmac: bytes = b""
    credentials: dict[str, ScramCredential] = field(default_factory=dict)

    def owner_or_renewer(self, principal: str) -> bool:
        """Kafka's TokenInformation.ownerOrRenewer: the owner, the requester or a renewer."""
        return principal in (self.owner, self.requester) or principal in self.renewers


class DelegationTokenStore:
    """The broker's delegation tokens, durable in the data directory."""

    def __init__(self, data_dir: Path, config: BrokerConfig) -> None:
        self.path = Path(data_dir) / STORE_FILE
        self.secret = config.get("delegation.token.secret.key") or ""
        self.max_lifetime_ms = config.get_int("delegation.token.max.lifetime.ms")
        self.expiry_time_ms = config.get_int("delegation.token.expiry.time.ms")
        self.tokens: dict[str, DelegationToken] = {}
        self._by_hmac: dict[bytes, str] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.secret)

    def load(self) -> None:
        if not self.enabled:
            return
        try:
            raw = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return
        for item in raw:
            token = DelegationToken(
                item["token_id"], item["owner"], item["requester"], list(item["renewers"]),
                int(item["issue_ms"]), int(item["expiry_ms"]), int(item["max_ms"]),
            )
            self._arm(token)

    def _arm(self, token: DelegationToken) -> None:
        """Compute the token's HMAC and SCRAM credentials and index it."""
        token.hmac = token_hmac(self.secret, token.token_id)
        password = base64.b64encode(token.hmac).decode()
        token.credentials = {m: ScramCredential.from_password(m, password, DEFAULT_ITERATIONS) for m in MECHANISMS}
        self.tokens[token.token_id] = token
        self._by_hmac[token.hmac] = token.token_id

    def _drop(self, token: DelegationToken) -> None:
        self.tokens.pop(token.token_id, None)
        self._by_hmac.pop(token.hmac, None)

    def purge(self, now_ms: int) -> None:
        """Forget the tokens past their expiry (saved if any went)."""
        gone = [t for t in self.tokens.values() if t.expiry_ms < now_ms]
        for token in gone:
            self._drop(token)
        if gone:
            self.save()

    def by_hmac(self, mac: bytes, now_ms: int) -> DelegationToken | None:
        self.purge(now_ms)
        token_id = self._by_hmac.get(bytes(mac))
        return None if token_id is None else self.tokens.get(token_id)

    def create(self, owner: str, requester: str, renewers: list[str], max_lifetime_ms: int, now_ms: int) -> DelegationToken:
        self.purge(now_ms)
        lifetime = self.max_lifetime_ms if max_lifetime_ms <= 0 else min(max_lifetime_ms, self.max_lifetime_ms)
        max_ms = now_ms + lifetime
        token = DelegationToken(
            base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="), owner, requester, renewers,
            now_ms, min(max_ms, now_ms + self.expiry_time_ms), max_ms,
        )
        self._arm(token)
        self.save()
        return token

    def renew(self, token: DelegationToken, period_ms: int, now_ms: int) -> int:
        token.expiry_ms = min(token.max_ms, now_ms + (period_ms if period_ms >= 0 else self.expiry_time_ms))
        self.save()
        return token.expiry_ms

    def expire(self, token: DelegationToken, period_ms: int, now_ms: int) -> int:
        if period_ms < 0:
            self._drop(token)
            self.save()
            return now_ms
        token.expiry_ms = min(token.max_ms, now_ms + period_ms)
        self.save()
        return token.expiry_ms

    def scram_credential(self, token_id: str, mechanism: str, now_ms: int) -> tuple[ScramCredential, str] | None:
        """(credential, owner principal) of a live token, for SCRAM with tokenauth=true."""
        token = self.tokens.get(token_id)
        if token is None or token.expiry_ms < now_ms:
            return None
        return token.credentials[mechanism], token.owner

    def save(self) -> None:
        data = [
            {
                "token_id": t.token_id, "owner": t.owner, "requester": t.requester, "renewers": t.renewers,
                "issue_ms": t.issue_ms, "expiry_ms": t.expiry_ms, "max_ms": t.max_ms,
            }
            for t in self.tokens.values()
        ]
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

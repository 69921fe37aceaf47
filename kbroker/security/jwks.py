"""The JSON Web Key Set that signed OAUTHBEARER tokens are checked against.

Theory of operation
-------------------
``sasl.oauthbearer.jwks.endpoint.url`` names the set: a ``file:`` URL (read from disk) or an
``http(s):`` URL (fetched, as Kafka's OAuthBearerValidatorCallbackHandler does).  The set is
read once when the listener is built (start-up fails if it cannot be had within
``sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms`` of retries, starting at
``...retry.backoff.ms`` and doubling), then kept in memory:

- every ``sasl.oauthbearer.jwks.endpoint.refresh.ms`` it is read again, lazily: the first
  authentication after the interval starts a refresh on a thread (``asyncio.to_thread``, the
  loop never waits for the network or the disk) and is itself checked against the keys held;
- a token whose ``kid`` is in no key starts such a refresh at once (a key rotated in at the
  identity provider), at most once per ``...retry.backoff.max.ms``, and is refused; the
  client's next attempt finds the new key;
- a refresh that fails keeps the keys held (logged), as Kafka keeps its cache.

Only asymmetric keys are used (RSA, EC, OKP: RS*/PS*/ES*/EdDSA); each key's algorithm is its
``alg`` member or, without one, the one its type implies (PyJWT's ``PyJWK``), and a token is
verified with exactly that algorithm, so a token cannot pick a weaker one (no ``none``, no
HMAC with a public key as secret).  Signatures and registered claims are PyJWT's work.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt

logger = logging.getLogger(__name__)

# The largest JWKS document read (an identity provider's set is a few KiB).
MAX_JWKS_BYTES = 1024 * 1024
# How long one HTTP(S) fetch of the set may take.
JWKS_FETCH_TIMEOUT_S = 10.0
# The least pause between two start-up reads (retry.backoff.ms may be 0).
MIN_RETRY_DELAY_S = 0.01
# Key types whose keys verify signatures; "oct" (HMAC secrets) is never taken from a JWKS.
ASYMMETRIC_KEY_TYPES = ("RSA", "EC", "OKP")


class JwksError(ValueError):
    """The key set cannot be read or holds no usable key."""


def read_jwks(url: str, ssl_context: ssl.SSLContext | None = None) -> dict[str, jwt.PyJWK]:
    """The usable keys of the set at ``url`` by key id ("" for a key without ``kid``)."""
    parsed = urllib.parse.urlparse(url)
    try:
        if parsed.scheme == "file":
            path = Path(urllib.request.url2pathname(parsed.path))
            with path.open("rb") as f:
                raw = f.read(MAX_JWKS_BYTES + 1)
        elif parsed.scheme in ("http", "https"):
            request = urllib.request.Request(url, headers={"Accept": "application/json"})
            context = ssl_context if parsed.scheme == "https" else None
            with urllib.request.urlopen(request, timeout=JWKS_FETCH_TIMEOUT_S, context=context) as answer:
                raw = answer.read(MAX_JWKS_BYTES + 1)
        else:
            raise JwksError(f"{url}: the JWKS URL must be file:, http: or https:")
    except OSError as exc:  # incl. urllib's URLError/HTTPError
        raise JwksError(f"{url}: {exc}") from None
    if len(raw) > MAX_JWKS_BYTES:
        raise JwksError(f"{url}: the JWKS is larger than {MAX_JWKS_BYTES} bytes")
    try:
        document = json.loads(raw)
    except ValueError:
        raise JwksError(f"{url}: not JSON") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise JwksError(f"{url}: no 'keys' array")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") not in ASYMMETRIC_KEY_TYPES or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError as exc:
            logger.warning("%s: JWKS key %r skipped: %s", url, entry.get("kid"), exc)
            continue
        keys[str(entry.get("kid") or "")] = key
    if not keys:
        raise JwksError(f"{url}: the JWKS holds no RSA, EC or OKP signing key")
    return keys


class JwksKeys:
    """One listener's key set, refreshed as the module docstring says."""

    def __init__(
        self,
        url: str,
        refresh_ms: int,
        backoff_ms: int,
        backoff_max_ms: int,
        ssl_context: ssl.SSLContext | None = None,
        reader: Callable[[str, ssl.SSLContext | None], dict[str, jwt.PyJWK]] = read_jwks,
    ) -> None:
        self.url = url
        self.refresh_s = refresh_ms / 1000
        self.backoff_s = backoff_ms / 1000
        self.backoff_max_s = backoff_max_ms / 1000
        self._ssl_context = ssl_context
        self._reader = reader
        self.keys: dict[str, jwt.PyJWK] = {}
        self.fetched_at = 0.0  # monotonic time of the last read attempt
        self._refresh: asyncio.Task[None] | None = None

    def load(self) -> None:
        """The first read, with retries (start-up): JwksError when it never succeeds."""
        delay, deadline = max(self.backoff_s, MIN_RETRY_DELAY_S), time.monotonic() + self.backoff_max_s
        while True:
            try:
                self.keys = self._reader(self.url, self._ssl_context)
                self.fetched_at = time.monotonic()
                return
            except JwksError:
                if time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = max(min(delay * 2, self.backoff_max_s), MIN_RETRY_DELAY_S)

    def find(self, kid: str | None) -> jwt.PyJWK | None:
        """The key for a token's ``kid``; without one, the set's only key.  Starts the
        refreshes due (see the module docstring)."""
        now = time.monotonic()
        key = self.keys.get(kid or "") if kid or len(self.keys) != 1 else next(iter(self.keys.values()))
        if now - self.fetched_at >= self.refresh_s or (key is None and now - self.fetched_at >= self.backoff_max_s):
            self._start_refresh()
        return key

    def _start_refresh(self) -> None:
        if self._refresh is not None and not self._refresh.done():
            return
        self.fetched_at = time.monotonic()  # one attempt per interval, even if it fails
        self._refresh = asyncio.get_running_loop().create_task(self._refresh_keys())

    async def _refresh_keys(self) -> None:
        try:
            keys = await asyncio.to_thread(self._reader, self.url, self._ssl_context)
        except JwksError as exc:
            logger.warning("JWKS refresh failed, keeping the %d keys held: %s", len(self.keys), exc)
            return
        if set(keys) != set(self.keys):
            logger.info("JWKS %s refreshed: key ids %s", self.url, ", ".join(sorted(keys)) or "-")
        self.keys = keys

    def verify(self, token: str, options: dict[str, Any]) -> dict[str, Any]:
        """The claims of ``token`` once its signature checks out with its key (PyJWT's errors
        otherwise; ``options`` are jwt.decode's keyword arguments)."""
        header = jwt.get_unverified_header(token)
        alg, kid = header.get("alg"), header.get("kid")
        key = self.find(kid if isinstance(kid, str) else None)
        if key is None:
            raise jwt.InvalidKeyError(f"no key in the JWKS has the token's kid {kid!r}")
        if alg != key.algorithm_name:
            raise jwt.InvalidAlgorithmError(f"the token's alg {alg!r} is not its key's ({key.algorithm_name})")
        claims: dict[str, Any] = jwt.decode(token, key=key, algorithms=[key.algorithm_name], **options)
        return claims

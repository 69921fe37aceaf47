"""SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677): credentials, their store, the server exchange.

Theory of operation
-------------------
Credentials: for a password, a random salt and an iteration count (Kafka's bounds: 4096 to
16384) give SaltedPassword = PBKDF2-HMAC(password, salt, iterations); the broker keeps only
StoredKey = H(HMAC(SaltedPassword, "Client Key")) and ServerKey = HMAC(SaltedPassword,
"Server Key"), never the password nor SaltedPassword.  AlterUserScramCredentials sends
SaltedPassword (the client salts), so the broker derives the same two keys from it.

Store (:class:`ScramStore`): ``scram-credentials.json`` in the data directory, user ->
mechanism -> salt, keys, iterations (base64), rewritten whole through a temporary file,
fsync and rename on each change, so a crash leaves the old or the new set, never half.

Exchange (:class:`ScramExchange`), one per authentication, a state table::

    CLIENT_FIRST --client-first--> CLIENT_FINAL --client-final--> DONE
         any error or a bad proof ---------------------------------> FAILED

client-first ``n,,n=<user>,r=<client nonce>[,<extension>=<value>...]`` (``tokenauth=true``:
the user is a delegation token's id, its credential the token's; gs2 header ``n`` or
``y``, optional ``a=`` authzid equal to the user; channel binding ``p=`` is refused).  The
server answers ``r=<client nonce><server nonce>,s=<salt>,i=<iterations>``.  client-final
``c=<base64 gs2 header>,r=<nonce>,p=<proof>``: the nonce must end with the server's nonce
(Kafka 3.8.1-3.9) or, with ``kbroker.sasl.scram.exact.nonce=true``, equal client + server
nonce (Kafka 4).  The proof is checked by recomputing StoredKey and comparing it with
``hmac.compare_digest``; the server's answer ``v=<ServerSignature>`` proves the broker knew
ServerKey.  An unknown user goes through the same steps to the same failure as a wrong
password (a dummy credential), so the answer does not tell which.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

# mechanism name -> (AlterUserScramCredentials/Describe code, hash name)
MECHANISMS: dict[str, tuple[int, str]] = {"SCRAM-SHA-256": (1, "sha256"), "SCRAM-SHA-512": (2, "sha512")}
MECHANISM_NAMES = {code: name for name, (code, _hash) in MECHANISMS.items()}
MIN_ITERATIONS = 4096
MAX_ITERATIONS = 16384
DEFAULT_ITERATIONS = 4096
SALT_BYTES = 32
STORE_FILE = "scram-credentials.json"
# Longest SCRAM message accepted (names, nonces, extensions): far above any real client's.
MAX_MESSAGE_BYTES = 8192


class ScramError(ValueError):
    """The client's SCRAM message is malformed or its proof is wrong; the text is safe to send."""


@dataclass(frozen=True, slots=True)
class ScramCredential:
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int

    @classmethod
    def from_salted_password(cls, mechanism: str, salted: bytes, salt: bytes, iterations: int) -> ScramCredential:
        digest = MECHANISMS[mechanism][1]
        client_key = hmac.digest(salted, b"Client Key", digest)
        return cls(salt, hashlib.new(digest, client_key).digest(), hmac.digest(salted, b"Server Key", digest), iterations)

    @classmethod
    def from_password(cls, mechanism: str, password: str, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> ScramCredential:
        salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
        salted = hashlib.pbkdf2_hmac(MECHANISMS[mechanism][1], password.encode("utf-8"), salt, iterations)
        return cls.from_salted_password(mechanism, salted, salt, iterations)


def check_iterations(iterations: int) -> str | None:
    """Kafka's message when ``iterations`` is outside its bounds, else None."""
    if iterations < MIN_ITERATIONS:
        return f"Too few iterations: {iterations} < {MIN_ITERATIONS}"
    if iterations > MAX_ITERATIONS:
        return f"Too many iterations: {iterations} > {MAX_ITERATIONS}"
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class ScramStore:
    """SCRAM credentials by user and mechanism, durable in the data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / STORE_FILE
        self.users: dict[str, dict[str, ScramCredential]] = {}

    def load(self) -> None:
        try:
            raw = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return
        for user, mechanisms in raw.items():
            self.users[user] = {
                mech: ScramCredential(base64.b64decode(c["salt"]), base64.b64decode(c["stored_key"]), base64.b64decode(c["server_key"]), int(c["iterations"]))
                for mech, c in mechanisms.items()
                if mech in MECHANISMS
            }

    def get(self, user: str, mechanism: str) -> ScramCredential | None:
        return self.users.get(user, {}).get(mechanism)

    def upsert(self, user: str, mechanism: str, credential: ScramCredential) -> None:
        self.users.setdefault(user, {})[mechanism] = credential

    def delete(self, user: str, mechanism: str) -> bool:
        found = self.users.get(user, {}).pop(mechanism, None) is not None
        if user in self.users and not self.users[user]:
            del self.users[user]
        return found

    def save(self) -> None:
        data = {
            user: {
                mech: {"salt": _b64(c.salt), "stored_key": _b64(c.stored_key), "server_key": _b64(c.server_key), "iterations": c.iterations}
                for mech, c in mechanisms.items()
            }
            for user, mechanisms in self.users.items()
        }
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


def _saslname(text: str) -> str:
    """RFC 5802 saslname: ``=2C`` is ``,`` and ``=3D`` is ``=``; any other ``=`` is an error."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "=":
            code = text[i + 1 : i + 3]
            if code == "2C":
                out.append(",")
            elif code == "3D":
                out.append("=")
            else:
                raise ScramError("Invalid username: bad '=' escape")
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _attributes(message: str) -> list[tuple[str, str]]:
    out = []
    for part in message.split(","):
        if len(part) < 2 or part[1] != "=":
            raise ScramError(f"Invalid SCRAM message: attribute {part[:16]!r}")
        out.append((part[0], part[2:]))
    return out


class State(Enum):
    CLIENT_FIRST = "client-first"
    CLIENT_FINAL = "client-final"
    DONE = "done"
    FAILED = "failed"


class ScramExchange:
    """The server side of one SCRAM authentication; :meth:`step` takes each client message."""

    def __init__(
        self,
        mechanism: str,
        store: ScramStore,
        *,
        exact_nonce: bool,
        token_lookup: Callable[[str, str], tuple[ScramCredential, str] | None] | None = None,
    ) -> None:
        self.mechanism = mechanism
        # tokenauth=true: (credential, owner principal) of a delegation token by id
        self.token_lookup = token_lookup
        self.token_owner = ""  # the owner's principal once a token authenticated
        self.digest = MECHANISMS[mechanism][1]
        self.store = store
        self.exact_nonce = exact_nonce
        self.state = State.CLIENT_FIRST
        self.user = ""
        self.extensions: dict[str, str] = {}
        self._credential: ScramCredential | None = None
        self._known = False
        self._gs2_header = ""
        self._client_first_bare = ""
        self._server_first = ""
        self._client_nonce = ""
        self._server_nonce = ""
        self._pending_owner = ""

    def step(self, message: bytes) -> bytes:
        """The server's answer to ``message``; ScramError (state FAILED) when it is refused."""
        try:
            if len(message) > MAX_MESSAGE_BYTES:
                raise ScramError("SCRAM message too long")
            try:
                text = message.decode("utf-8")
            except UnicodeDecodeError:
                raise ScramError("SCRAM message is not UTF-8") from None
            if self.state is State.CLIENT_FIRST:
                return self._client_first(text)
            if self.state is State.CLIENT_FINAL:
                return self._client_final(text)
            raise ScramError(f"Unexpected SCRAM message in state {self.state.value}")
        except ScramError:
            self.state = State.FAILED
            raise

    def _client_first(self, text: str) -> bytes:
        flag, sep, rest = text.partition(",")
        authzid, sep2, bare = rest.partition(",")
        if not sep or not sep2 or flag not in ("n", "y"):
            raise ScramError("Invalid client-first message: channel binding is not supported" if flag.startswith("p") else "Invalid client-first message")
        # n=<user>,r=<nonce>, then Kafka's extensions: key=value with keys of any length
        # (ScramExtensions, e.g. tokenauth=true), unlike RFC 5802's one-letter attributes.
        head = bare.split(",", 2)
        attrs = _attributes(",".join(head[:2]))
        if len(attrs) < 2 or attrs[0][0] != "n" or attrs[1][0] != "r" or not attrs[1][1]:
            raise ScramError("Invalid client-first message: expected n=<user>,r=<nonce>")
        for part in head[2].split(",") if len(head) > 2 else ():
            key, sep, value = part.partition("=")
            if not sep or not key:
                raise ScramError(f"Invalid client-first message: extension {part[:16]!r}")
            attrs.append((key, value))
        self.user = _saslname(attrs[0][1])
        if authzid and (not authzid.startswith("a=") or _saslname(authzid[2:]) != self.user):
            raise ScramError("Authentication failed: Client requested an authorization id that is different from username")
        self.extensions = dict(attrs[2:])
        self._client_nonce = attrs[1][1]
        self._gs2_header = f"{flag},{authzid},"
        self._client_first_bare = bare
        token_owner = ""
        if self.extensions.get("tokenauth", "").lower() == "true":
            # A delegation token: the user is the token id (kbroker.security.delegation).
            found = self.token_lookup(self.user, self.mechanism) if self.token_lookup is not None else None
            credential, token_owner = found if found is not None else (None, "")
        else:
            credential = self.store.get(self.user, self.mechanism)
        self._pending_owner = token_owner
        self._known = credential is not None
        # An unknown user gets a made-up credential: the same steps, the same failure.
        self._credential = credential or ScramCredential.from_salted_password(
            self.mechanism, secrets.token_bytes(32), secrets.token_bytes(SALT_BYTES), DEFAULT_ITERATIONS
        )
        self._server_nonce = secrets.token_urlsafe(24)
        self._server_first = f"r={self._client_nonce}{self._server_nonce},s={_b64(self._credential.salt)},i={self._credential.iterations}"
        self.state = State.CLIENT_FINAL
        return self._server_first.encode("utf-8")

    def _client_final(self, text: str) -> bytes:
        without_proof, sep, proof_part = text.rpartition(",p=")
        if not sep:
            raise ScramError("Invalid client-final message: no proof")
        attrs = _attributes(without_proof)
        if len(attrs) < 2 or attrs[0][0] != "c" or attrs[1][0] != "r":
            raise ScramError("Invalid client-final message: expected c=...,r=...,p=...")
        try:
            binding = base64.b64decode(attrs[0][1], validate=True).decode("utf-8")
            proof = base64.b64decode(proof_part, validate=True)
        except (ValueError, UnicodeDecodeError):
            raise ScramError("Invalid client-final message: bad base64") from None
        if binding != self._gs2_header:
            raise ScramError("Invalid client-final message: channel binding does not match")
        nonce = attrs[1][1]
        expected = self._client_nonce + self._server_nonce
        if not (nonce == expected if self.exact_nonce else nonce.endswith(self._server_nonce)):
            raise ScramError("Invalid client nonce in the final client message.")
        credential = self._credential
        assert credential is not None
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        client_signature = hmac.digest(credential.stored_key, auth_message, self.digest)
        if len(proof) != len(client_signature):
            raise ScramError("Invalid client-final message: bad proof length")
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
        computed = hashlib.new(self.digest, client_key).digest()
        if not hmac.compare_digest(computed, credential.stored_key) or not self._known:
            raise ScramError("Authentication failed: Invalid user credentials")
        self.state = State.DONE
        self.token_owner = self._pending_owner
        server_signature = hmac.digest(credential.server_key, auth_message, self.digest)
        return f"v={_b64(server_signature)}".encode()


_ADD_SCRAM = re.compile(r"^\s*(?P<mechanism>[A-Z0-9-]+)=\[(?P<body>.*)\]\s*$", re.S)
_ADD_SCRAM_ITEM = re.compile(r'\s*(?P<key>[a-z]+)=(?:"(?P<quoted>[^"]*)"|(?P<bare>[^,]*))\s*(?:,|$)')


def parse_add_scram(text: str) -> tuple[str, str, ScramCredential]:
    """``kafka-storage format --add-scram`` syntax: ``SCRAM-SHA-256=[name=alice,password=secret]``
    or ``...=[name=alice,iterations=8192,salt="<base64>",saltedpassword="<base64>"]``
    (password with optional salt/iterations, or salt + saltedpassword).  ValueError if not."""
    m = _ADD_SCRAM.match(text)
    if m is None or m["mechanism"] not in MECHANISMS:
        raise ValueError(f"--add-scram: expected 'SCRAM-SHA-256=[name=...,password=...]' (or SCRAM-SHA-512), got {text!r}")
    items: dict[str, str] = {}
    body, pos = m["body"], 0
    while pos < len(body):
        item = _ADD_SCRAM_ITEM.match(body, pos)
        if item is None or item.end() == pos:
            raise ValueError(f"--add-scram: cannot parse {body[pos:]!r}")
        items[item["key"]] = item["quoted"] if item["quoted"] is not None else item["bare"]
        pos = item.end()
    mechanism = m["mechanism"]
    unknown = set(items) - {"name", "password", "iterations", "salt", "saltedpassword"}
    if unknown or not items.get("name"):
        raise ValueError(f"--add-scram: needs name= and password= (or salt= and saltedpassword=); unknown {sorted(unknown)}" if unknown else "--add-scram: name= is required")
    iterations = int(items.get("iterations", DEFAULT_ITERATIONS))
    problem = check_iterations(iterations)
    if problem:
        raise ValueError(f"--add-scram: {problem}")
    try:
        salt = base64.b64decode(items["salt"], validate=True) if "salt" in items else None
        salted = base64.b64decode(items["saltedpassword"], validate=True) if "saltedpassword" in items else None
    except ValueError:
        raise ValueError("--add-scram: salt and saltedpassword are base64") from None
    if "password" in items:
        if salted is not None:
            raise ValueError("--add-scram: give password= or saltedpassword=, not both")
        return mechanism, items["name"], ScramCredential.from_password(mechanism, items["password"], iterations, salt)
    if salted is None or salt is None:
        raise ValueError("--add-scram: needs password= (or salt= and saltedpassword=)")
    return mechanism, items["name"], ScramCredential.from_salted_password(mechanism, salted, salt, iterations)

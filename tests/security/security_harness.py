"""Helpers for the security tests."""

from __future__ import annotations

import ssl

from kbroker.security.devcerts import Pki


def client_context(pki: Pki, client: str | None = None) -> ssl.SSLContext:
    """A client TLS context trusting the test CA, with ``client``'s certificate if given."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    if client is not None:
        cert, key = pki.clients[client]
        context.load_cert_chain(str(cert), str(key))
    return context


import base64  # noqa: E402
import hashlib  # noqa: E402
import hmac  # noqa: E402
import secrets  # noqa: E402


class ScramClient:
    """The client side of SCRAM (RFC 5802), written for the tests from the RFC's formulas."""

    def __init__(self, mechanism: str, user: str, password: str) -> None:
        self.digest = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}[mechanism]
        self.user, self.password = user, password
        self.nonce = secrets.token_hex(12)
        self.client_first_bare = f"n={user},r={self.nonce}"
        self.server_signature = b""

    def first(self) -> bytes:
        return f"n,,{self.client_first_bare}".encode()

    def final(self, server_first: bytes, *, nonce: str | None = None, password: str | None = None) -> bytes:
        attrs = dict(part.split("=", 1) for part in server_first.decode().split(","))
        salt, iterations, combined = base64.b64decode(attrs["s"]), int(attrs["i"]), attrs["r"]
        salted = hashlib.pbkdf2_hmac(self.digest, (password or self.password).encode(), salt, iterations)
        client_key = hmac.digest(salted, b"Client Key", self.digest)
        stored_key = hashlib.new(self.digest, client_key).digest()
        without_proof = f"c=biws,r={nonce if nonce is not None else combined}"
        auth_message = f"{self.client_first_bare},{server_first.decode()},{without_proof}".encode()
        signature = hmac.digest(stored_key, auth_message, self.digest)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = hmac.digest(salted, b"Server Key", self.digest)
        self.server_signature = hmac.digest(server_key, auth_message, self.digest)
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> bool:
        return server_final == b"v=" + base64.b64encode(self.server_signature)

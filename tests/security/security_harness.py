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

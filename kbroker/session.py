"""Who is on the other end of a connection: the security facts a handler may need.

One :class:`Session` lives on each Kafka connection and is handed to every handler through
``RequestContext.session``.  Without security it stays as created: the anonymous principal on
the PLAINTEXT listener, as Kafka's ``KafkaPrincipal.ANONYMOUS``.  The listener and
authentication code fill it in (principal after TLS or SASL); the authorizer reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ANONYMOUS_PRINCIPAL = "User:ANONYMOUS"


@dataclass(slots=True)
class Session:
    # "Type:name", as Kafka writes a KafkaPrincipal (e.g. "User:alice").
    principal: str = ANONYMOUS_PRINCIPAL
    # The client's address without the port, as ACL host matching sees it.
    client_host: str = ""
    # The listener the connection came in on, and its security protocol.
    listener_name: str = "PLAINTEXT"
    security_protocol: str = "PLAINTEXT"
    # The connection's SASL authenticator (kbroker.security.sasl.Authenticator) on a SASL
    # listener, for the SaslHandshake/SaslAuthenticate handlers; None elsewhere.
    sasl: Any = None
    # The node whose listener accepted the connection (a virtual cluster's node id; in
    # single-node mode the configured node.id).
    node_id: int = 1
    # Authenticated with a delegation token (SCRAM tokenauth=true): may not manage tokens.
    token_authenticated: bool = False
    # Set by Broker.dispatch when a client quota throttled the request just answered: the
    # connection reads no further request for this many ms (KIP-219), then resets it.
    throttle_ms: int = 0
    # Record bytes a Fetch answer took from the response budget (kbroker.limits.ResponseMemory);
    # the connection settles them once the answer is written, then resets it.
    response_bytes: int = 0
    # What the client said it is in ApiVersions v3+ (KIP-511); client-metrics subscriptions
    # match on them (KIP-714).
    client_software_name: str = ""
    client_software_version: str = ""

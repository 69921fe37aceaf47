"""Security: listeners' TLS, SASL authentication and the principal a connection acts as.

Theory of operation
-------------------
Every listener the broker serves (``listeners``, with ``listener.security.protocol.map``)
gets one :class:`kbroker.security.listener.ListenerSecurity` at start-up, built from its
properties (``listener.name.<l>.<property>`` over ``<property>``):

- PLAINTEXT: nothing; connections are ``User:ANONYMOUS``.
- SSL: a TLS server context (:mod:`kbroker.security.tls`); asyncio does the handshake
  before the connection sees a byte.  The principal is the client certificate's subject
  (:mod:`kbroker.security.principal`), or ``User:ANONYMOUS`` without one.
- SASL_PLAINTEXT / SASL_SSL: (TLS, then) SASL authentication (:mod:`kbroker.security.sasl`)
  before any other request.

Each connection's :class:`kbroker.session.Session` carries the outcome (principal, client
host, listener name, security protocol) to every handler, and so to the authorizer.  The
connection's hot path (an authenticated or PLAINTEXT connection) is untouched: only a
connection with SASL authentication still pending goes through the authenticator.
"""

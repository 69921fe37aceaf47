"""The security of one listener: its TLS context, principal rules and SASL settings.

Built once per listener at start-up (:func:`build_listener_security`); a bad value is a
``ConfigError`` with one line naming the property.  :meth:`ListenerSecurity.on_connect`
runs in ``KafkaConnection.connection_made``: it fills the connection's Session and, on a
SASL listener, gives the connection an authenticator that must succeed before anything but
ApiVersions / SaslHandshake / SaslAuthenticate is served.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kbroker.config import BrokerConfig, ConfigError, ServedListener
from kbroker.session import ANONYMOUS_PRINCIPAL, Session

if TYPE_CHECKING:
    import asyncio

    from kbroker.security.principal import PrincipalMapper
    from kbroker.security.sasl import SaslListener

logger = logging.getLogger(__name__)

TLS_PROTOCOLS = ("SSL", "SASL_SSL")
SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")


@dataclass(slots=True)
class ListenerSecurity:
    listener: ServedListener
    ssl_context: ssl.SSLContext | None = None
    principal_mapper: PrincipalMapper | None = None
    sasl: SaslListener | None = None

    def new_session(self) -> Session:
        return Session(listener_name=self.listener.name, security_protocol=self.listener.protocol)

    def tls_principal(self, transport: asyncio.BaseTransport) -> str:
        """``User:`` + the mapped subject of the client's certificate, or ANONYMOUS without
        one.  Raises NoMatchingRule when no mapping rule matches."""
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            return ANONYMOUS_PRINCIPAL
        from kbroker.security.principal import certificate_subject

        subject = certificate_subject(der)
        assert self.principal_mapper is not None
        return "User:" + self.principal_mapper.principal_name(subject)


def build_listener_security(config: BrokerConfig, listener: ServedListener, broker: Any = None) -> ListenerSecurity:
    """The security of ``listener``; ConfigError when its properties are not usable."""

    def get(name: str) -> str | None:
        return config.listener_property(listener.name, name)

    security = ListenerSecurity(listener)
    if listener.protocol in TLS_PROTOCOLS:
        from kbroker.security.principal import PrincipalMapper
        from kbroker.security.tls import server_context

        try:
            security.ssl_context = server_context(get)
        except ConfigError as exc:
            raise ConfigError(f"listener {listener.name}: {exc}") from None
        try:
            security.principal_mapper = PrincipalMapper(get("ssl.principal.mapping.rules") or "DEFAULT")
        except ValueError as exc:
            raise ConfigError(f"listener {listener.name}: {exc}") from None
    if listener.protocol in SASL_PROTOCOLS:
        from kbroker.security.sasl import build_sasl_listener

        security.sasl = build_sasl_listener(config, listener, broker)
    return security


__all__ = ["ListenerSecurity", "build_listener_security"]

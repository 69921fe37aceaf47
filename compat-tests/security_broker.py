"""A kbroker process with PLAINTEXT, SASL_PLAINTEXT, SASL_SSL and SSL listeners, for the
security compat tests.  Certificates are made at test time (no key is committed)."""

from __future__ import annotations

import sys
from pathlib import Path

from broker_process import KBROKER_READY, BrokerProcess, _free_port

from kbroker.security.devcerts import Pki, make_pki

PLAIN_JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";'
)
SCRAM_USERS = {"alice": "alice-secret"}


class SecureBroker(BrokerProcess):
    """PLAINTEXT first (its port is the readiness line's), then the secure listeners on
    ports picked before the start."""

    def __init__(self, tmp_path: Path) -> None:
        self.pki: Pki = make_pki(tmp_path / "pki", clients=("alice",))
        self.ports = {name: _free_port() for name in ("SASL_PLAINTEXT", "SASL_SSL", "SSL")}
        listeners = ",".join(["PLAINTEXT://127.0.0.1:0", *(f"{name}://127.0.0.1:{port}" for name, port in self.ports.items())])
        settings = {
            "num.partitions": "1",
            "offsets.topic.num.partitions": "1",
            "listeners": listeners,
            "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.pki.server_keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.pki.ca_cert),
            "listener.name.ssl.ssl.client.auth": "required",
        }
        super().__init__(tmp_path / "data", tmp_path / "broker.log", settings)

    def _command(self) -> tuple[list[str], object]:  # type: ignore[override]
        cmd = [sys.executable, "-m", "kbroker", "--data-dir", str(self.data_dir)]
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            for user, password in SCRAM_USERS.items():
                cmd += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
        for key, value in self.settings.items():
            cmd += ["--set", f"{key}={value}"]
        return cmd, KBROKER_READY

    def address(self, listener: str) -> str:
        return self.bootstrap if listener == "PLAINTEXT" else f"127.0.0.1:{self.ports[listener]}"


class JwtBroker(BrokerProcess):
    """SASL_PLAINTEXT and SASL_SSL listeners with OAUTHBEARER only, validating signed JWTs
    against a JWKS file this class writes (an RS256 key made at test time), as a broker
    behind an identity provider would: :meth:`token` signs what the clients present."""

    AUDIENCE = "kbroker-compat"
    ISSUER = "https://idp.compat.test"

    def __init__(self, tmp_path: Path) -> None:
        import json

        from cryptography.hazmat.primitives.asymmetric import rsa
        from jwt.algorithms import RSAAlgorithm

        self.pki: Pki = make_pki(tmp_path / "pki", clients=())
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        jwks = tmp_path / "jwks.json"
        jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "compat-1", "alg": "RS256", "use": "sig"}]}))
        self.ports = {name: _free_port() for name in ("SASL_PLAINTEXT", "SASL_SSL")}
        listeners = ",".join(["PLAINTEXT://127.0.0.1:0", *(f"{name}://127.0.0.1:{port}" for name, port in self.ports.items())])
        validator = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
        settings = {
            "num.partitions": "1",
            "offsets.topic.num.partitions": "1",
            "listeners": listeners,
            "sasl.enabled.mechanisms": "OAUTHBEARER",
            "sasl.oauthbearer.jwks.endpoint.url": jwks.as_uri(),
            "sasl.oauthbearer.expected.audience": self.AUDIENCE,
            "sasl.oauthbearer.expected.issuer": self.ISSUER,
            "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class": validator,
            "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class": validator,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.pki.server_keystore),
        }
        super().__init__(tmp_path / "data", tmp_path / "broker.log", settings)

    def _command(self) -> tuple[list[str], object]:  # type: ignore[override]
        # INFO: refused tokens are logged (the tests read why a client was refused).
        cmd = [sys.executable, "-m", "kbroker", "--data-dir", str(self.data_dir), "--log-level", "INFO"]
        for key, value in self.settings.items():
            cmd += ["--set", f"{key}={value}"]
        return cmd, KBROKER_READY

    def address(self, listener: str) -> str:
        return self.bootstrap if listener == "PLAINTEXT" else f"127.0.0.1:{self.ports[listener]}"

    def token(self, subject: str = "alice", lifetime_s: int = 3600) -> tuple[str, float]:
        """(signed JWT, expiry as epoch seconds); a negative lifetime makes an expired one."""
        import time

        import jwt

        now = int(time.time())
        expires = now + lifetime_s
        claims = {"sub": subject, "iat": now - max(0, -lifetime_s) - 60, "exp": expires, "aud": self.AUDIENCE, "iss": self.ISSUER, "scope": "kafka"}
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": "compat-1"}), float(expires)


class AclSaslBroker(BrokerProcess):
    """Kafka's StandardAuthorizer with SCRAM-SHA-256 users on a SASL_PLAINTEXT listener:
    User:admin is the super user the tests manage ACLs as, User:alice the principal under
    test (no ACL at first, and ``allow.everyone.if.no.acl.found=false``)."""

    USERS = {"admin": "admin-secret", "alice": "alice-secret"}

    def __init__(self, tmp_path: Path) -> None:
        self.sasl_port = _free_port()
        settings = {
            "num.partitions": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.num.partitions": "1",
            "listeners": f"PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}",
            "sasl.enabled.mechanisms": "SCRAM-SHA-256",
            "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin",
            "allow.everyone.if.no.acl.found": "false",
        }
        super().__init__(tmp_path / "data", tmp_path / "broker.log", settings)

    def _command(self) -> tuple[list[str], object]:  # type: ignore[override]
        cmd = [sys.executable, "-m", "kbroker", "--data-dir", str(self.data_dir)]
        for user, password in self.USERS.items():
            cmd += ["--add-scram", f"SCRAM-SHA-256=[name={user},password={password}]"]
        for key, value in self.settings.items():
            cmd += ["--set", f"{key}={value}"]
        return cmd, KBROKER_READY

    @property
    def sasl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"

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

"""Several listeners, named listeners and per-listener advertised addresses."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from broker_harness import RawClient
from kbroker.wire.messages.describe_cluster_request import DescribeClusterRequest
from kbroker.wire.messages.find_coordinator_request import FindCoordinatorRequest
from kbroker.wire.messages.metadata_request import MetadataRequest

from kbroker.config import ConfigError, build_config
from kbroker.testing import BrokerThread

TWO_LISTENERS = {
    "listeners": "PLAINTEXT://127.0.0.1:0,INTERNAL://127.0.0.1:0",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT",
    "advertised.listeners": "PLAINTEXT://outside.example:19092,INTERNAL://inside.example:29092",
}


def test_several_listeners_parse_with_their_protocols_and_addresses() -> None:
    config = build_config(
        overrides=[
            "listeners=PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093,CLIENTS://:9094",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,CLIENTS:SASL_SSL",
            "advertised.listeners=PLAINTEXT://a:1,SSL://b:2,CLIENTS://c:3",
        ],
        environ={},
    )
    assert [(x.name, x.protocol, x.port, x.advertised) for x in config.listeners] == [
        ("PLAINTEXT", "PLAINTEXT", 9092, ("a", 1)),
        ("SSL", "SSL", 9093, ("b", 2)),
        ("CLIENTS", "SASL_SSL", 9094, ("c", 3)),
    ]
    assert config.describe_value("listeners") == "PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093,CLIENTS://:9094"
    assert config.advertised_for("SSL") == ("b", 2)


def test_listener_name_overrides_win_over_the_plain_property() -> None:
    config = build_config(
        overrides=["ssl.client.auth=requested", "listener.name.internal.ssl.client.auth=required"], environ={}
    )
    assert config.listener_property("INTERNAL", "ssl.client.auth") == "required"
    assert config.listener_property("OTHER", "ssl.client.auth") == "requested"


def test_bad_per_listener_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="listener.name.internal.ssl.client.auth"):
        build_config(overrides=["listener.name.internal.ssl.client.auth=maybe"], environ={})


def test_advertise_shorthand_needs_a_single_listener() -> None:
    with pytest.raises(ConfigError, match="--advertise"):
        build_config(
            advertise="h:1",
            overrides=[f"{k}={v}" for k, v in TWO_LISTENERS.items() if k != "advertised.listeners"],
            environ={},
        )


def test_each_listener_answers_with_its_own_advertised_address(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data", TWO_LISTENERS, listen="")
    bt.start()
    try:
        assert bt.broker is not None
        addresses = bt.broker.listen_addresses
        assert set(addresses) == {"PLAINTEXT", "INTERNAL"}
        assert addresses["PLAINTEXT"][1] != addresses["INTERNAL"][1]
        for name, expected in (("PLAINTEXT", ("outside.example", 19092)), ("INTERNAL", ("inside.example", 29092))):
            client = RawClient(addresses[name])
            try:
                meta = client.request(MetadataRequest(topics=[]), 12)
                assert [(b.host, b.port) for b in meta.brokers] == [expected]
                cluster = client.request(DescribeClusterRequest(), 1)
                assert [(b.host, b.port) for b in cluster.brokers] == [expected]
                coordinator = client.request(FindCoordinatorRequest(key_type=0, coordinator_keys=["g"]), 4)
                assert [(c.host, c.port) for c in coordinator.coordinators] == [expected]
            finally:
                client.close()
    finally:
        bt.close()


def test_listeners_bound_on_port_zero_advertise_their_real_ports(tmp_path: Path) -> None:
    settings = {k: v for k, v in TWO_LISTENERS.items() if k != "advertised.listeners"}
    bt = BrokerThread(tmp_path / "data", settings, listen="")
    bt.start()
    try:
        assert bt.broker is not None
        for name, (host, port) in bt.broker.listen_addresses.items():
            assert bt.broker.config.advertised_for(name) == (host, port)
    finally:
        bt.close()


def test_a_tls_client_on_a_plaintext_listener_is_told_so_in_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bt = BrokerThread(tmp_path / "data")
    bt.start()
    try:
        client = RawClient(bt.address)
        # The start of a TLS 1.2 ClientHello record: handshake (0x16), version 3.1, length.
        client.send_raw(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]))
        with caplog.at_level(logging.WARNING, logger="kbroker.connection"):
            assert client.is_closed_by_peer()
        client.close()
    finally:
        bt.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "kbroker.connection"]
    assert len(lines) == 1 and "a TLS handshake on PLAINTEXT listener PLAINTEXT" in lines[0]

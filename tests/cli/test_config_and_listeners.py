"""Configuration as a Kafka user writes it: Java properties files, Kafka's property names
(implemented, ignored with a warning, or refused as typos), listeners, the --dev preset,
what DescribeConfigs reports, and the log lines about recovery."""

from __future__ import annotations

import re
import signal
import socket
import sys
from pathlib import Path

import pytest
from cli_helpers import Running, run_kbroker
from kbroker.log.manager import CLEAN_SHUTDOWN_MARKER

from kbroker.config import (
    BROKER_CONFIGS,
    DEV_PRESET,
    ConfigError,
    ConfigSource,
    build_config,
    parse_properties,
)
from kbroker.kafka_properties import KAFKA_BROKER_PROPERTIES
from kbroker.testing import BrokerThread

sys.path.insert(0, str(Path(__file__).parent.parent / "broker"))
from broker_harness import RawClient  # noqa: E402
from kbroker.wire.messages.describe_configs_request import (  # noqa: E402
    DescribeConfigsRequest,
    DescribeConfigsResource,
)

RESOURCE_BROKER = 4

# What Kafka 4's KRaft quick start ships as config/server.properties, abridged, plus a
# ZooKeeper-era line an old file still carries.
KRAFT_SERVER_PROPERTIES = r"""
# Server Basics
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=localhost:9093
listeners=PLAINTEXT://:{port},CONTROLLER://:9093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs={data}
num.partitions 3
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
zookeeper.connect=localhost:2181
"""

IGNORED_IN_KRAFT_FILE = (
    "controller.quorum.bootstrap.servers, inter.broker.listener.name, num.io.threads, "
    "num.network.threads, num.recovery.threads.per.data.dir, process.roles, "
    "share.coordinator.state.topic.min.isr, "
    "socket.receive.buffer.bytes, transaction.state.log.min.isr, "
    "zookeeper.connect"
)


def test_java_properties_syntax() -> None:
    text = (
        "# comment\n! also a comment\n"
        "num.partitions 4\n"  # whitespace separator
        "log.retention.ms:1000\n"  # colon separator
        "message.max.bytes = \\\n    2000000\n"  # continuation
        "log.dirs=C\\:\\\\data\\u0041\n"  # escapes and a unicode escape
        "key\\ with\\ spaces=v\n"
    )
    assert parse_properties(text) == {
        "num.partitions": "4",
        "log.retention.ms": "1000",
        "message.max.bytes": "2000000",
        "log.dirs": "C:\\dataA",
        "key with spaces": "v",
    }


def test_kraft_server_properties_is_honoured(tmp_path: Path) -> None:
    path = tmp_path / "server.properties"
    path.write_text(KRAFT_SERVER_PROPERTIES.format(port=19092, data=tmp_path / "logs"))
    config = build_config(config_file=str(path), environ={})
    assert (config.listen_host, config.listen_port) == ("", 19092)  # "" = every interface
    assert config.advertised == ("localhost", 19092)
    assert config.data_dir == tmp_path / "logs"
    assert config.get_int("num.partitions") == 3
    assert config.get_int("log.retention.ms") == 168 * 3_600_000
    assert ", ".join(config.ignored) == IGNORED_IN_KRAFT_FILE
    assert config.describe_value("listeners") == "PLAINTEXT://:19092"
    assert config.describe_value("advertised.listeners") == "PLAINTEXT://localhost:19092"


def test_shorthands_win_and_name_the_listener() -> None:
    config = build_config(
        listen="[::1]:9000", advertise="broker.example:9001", overrides=["listeners=PLAINTEXT://:1"], environ={}
    )
    assert (config.listen_host, config.listen_port) == ("::1", 9000)
    assert config.describe_value("listeners") == "PLAINTEXT://[::1]:9000"
    assert config.describe_value("advertised.listeners") == "PLAINTEXT://broker.example:9001"
    assert config.source_of("advertised.listeners") is ConfigSource.STATIC_BROKER_CONFIG
    env = build_config(environ={"KBROKER_LISTEN": "127.0.0.2:7", "KBROKER_PROP_LISTENERS": "PLAINTEXT://:8"})
    assert (env.listen_host, env.listen_port) == ("127.0.0.2", 7)
    overridden = build_config(overrides=["listeners=PLAINTEXT://:8"], environ={"KBROKER_LISTEN": "127.0.0.2:7"})
    assert (overridden.listen_host, overridden.listen_port) == ("", 8)


def test_advertised_listener_must_name_the_listener() -> None:
    with pytest.raises(ConfigError, match="advertised.listeners has no entry for listener PLAINTEXT"):
        build_config(overrides=["advertised.listeners=OTHER://h:1"], environ={})


def test_ranges_on_the_config_table() -> None:
    for item, message in [
        ("num.partitions=0", "value must be at least 1"),
        ("log.cleaner.min.cleanable.ratio=1.5", "value must be between 0 and 1"),
        ("offsets.topic.replication.factor=40000", "(short)"),
        ("message.max.bytes=2147483648", "(int)"),
        ("log.cleanup.policy=delete,purge", "must be one of delete, compact"),
        ("log.message.timestamp.type=Now", "must be one of CreateTime, LogAppendTime"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            build_config(overrides=[item], environ={})
    assert build_config(overrides=["log.cleanup.policy=compact,delete"], environ={}).get("log.cleanup.policy")


def test_every_implemented_property_is_a_kafka_one_or_kbroker_s_own() -> None:
    own = {name for name in BROKER_CONFIGS if name.startswith("kbroker.")}
    assert set(BROKER_CONFIGS) - own <= KAFKA_BROKER_PROPERTIES


def test_defaults_as_people_run_kafka_and_the_dev_preset() -> None:
    plain = build_config(environ={})
    assert plain.get_int("group.initial.rebalance.delay.ms") == 0
    assert plain.get_int("offsets.topic.num.partitions") == 50
    dev = build_config(dev=True, environ={})
    for name, value in DEV_PRESET.items():
        assert dev.get(name) == value
    # The preset sits under every other source.
    mine = build_config(dev=True, overrides=["offsets.topic.num.partitions=5"], environ={})
    assert mine.get_int("offsets.topic.num.partitions") == 5


def test_help_lists_the_dev_preset(tmp_path: Path) -> None:
    proc = run_kbroker("--help", cwd=tmp_path)
    assert proc.returncode == 0
    flat = " ".join(proc.stdout.split())
    for name, value in DEV_PRESET.items():
        assert f"{name}={value}" in flat


def test_real_server_properties_starts_with_one_warning_on_every_interface(tmp_path: Path) -> None:
    path = tmp_path / "server.properties"
    path.write_text(KRAFT_SERVER_PROPERTIES.format(port=0, data=tmp_path / "logs"))
    broker = Running("--config", str(path), cwd=tmp_path)
    try:
        ready = broker.wait_ready()
        warnings = [line for line in broker.lines if "warning" in line.lower()]
        assert warnings == [f"kbroker: warning: ignoring Kafka properties kbroker does not implement: {IGNORED_IN_KRAFT_FILE}"]
        host, _, port = ready["addr"].rpartition(":")
        assert host in ("[::]", "0.0.0.0")
        with socket.create_connection(("127.0.0.1", int(port)), timeout=10):
            pass  # the wildcard listener answers on loopback
        assert ready["adv"] == f"localhost:{port}"
    finally:
        broker.proc.send_signal(signal.SIGTERM)
    code, err = broker.finish()
    assert code == 0 and "Traceback" not in err, err


def test_ipv6_addresses_print_bracketed(tmp_path: Path) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    broker = Running("--listen", "[::1]:0", "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    try:
        ready = broker.wait_ready()
        assert re.fullmatch(r"\[::1\]:\d+", ready["addr"]), ready["addr"]
        assert ready["adv"] == ready["addr"]
    finally:
        broker.proc.send_signal(signal.SIGTERM)
    assert broker.finish()[0] == 0


def test_describe_configs_answers_the_listeners(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data")
    bt.start()
    try:
        client = RawClient(bt.address)
        try:
            req = DescribeConfigsRequest(
                resources=[DescribeConfigsResource(resource_type=RESOURCE_BROKER, resource_name="1", configuration_keys=None)],
                include_synonyms=False,
            )
            result = client.request(req, 4).results[0]
        finally:
            client.close()
    finally:
        bt.close()
    entries = {e.name: e for e in result.configs}
    host, port = bt.address
    assert entries["listeners"].value == f"PLAINTEXT://{host}:{port}"
    assert entries["advertised.listeners"].value == f"PLAINTEXT://{host}:{port}"
    assert entries["log.dirs"].value == str(tmp_path / "data")
    assert entries["group.initial.rebalance.delay.ms"].value == "0"
    assert set(entries) == set(BROKER_CONFIGS)


def test_recovery_after_an_unclean_stop_is_logged_with_its_figures(tmp_path: Path) -> None:
    from kafka import KafkaProducer

    data = tmp_path / "data"
    bt = BrokerThread(data)
    bt.start()
    try:
        producer = KafkaProducer(bootstrap_servers=bt.bootstrap)
        producer.send("t", b"x" * 100).get(timeout=30)
        producer.close()
    finally:
        bt.close()
    # Make the stop unclean and leave a torn write at the end of the segment.
    (data / CLEAN_SHUTDOWN_MARKER).unlink()
    segment = data / "t-0" / "00000000000000000000.log"
    with segment.open("ab") as f:
        f.write(b"\x00" * 37)
    scanned = segment.stat().st_size
    broker = Running("--listen", "127.0.0.1:0", "--data-dir", str(data), "--log-level", "info", cwd=tmp_path)
    try:
        line = broker.wait_for(re.compile(r"unclean stop: .*")).group(0)
        assert line == "unclean stop: 1 partitions are recovered on first use or in the background"
        broker.wait_ready()
        # Recovery is lazy: the first housekeeping tick (or the first request) loads t-0.
        line = broker.wait_for(re.compile(r"recovered t-0 after an unclean stop: .*")).group(0)
        assert line == (
            f"recovered t-0 after an unclean stop: 1 segments and {scanned} bytes scanned, "
            "37 bytes truncated, 0 segments deleted"
        )
    finally:
        broker.proc.send_signal(signal.SIGTERM)
    code, err = broker.finish()
    assert code == 0, err
    assert "INFO kbroker.server: stopped" in err

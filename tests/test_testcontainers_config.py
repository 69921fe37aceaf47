"""Unit tests of the configuration ``kbroker.testcontainers`` builds (command line, ports,
advertised host) and of the container launcher, with no container engine (constructing a
KBrokerContainer already connects to one; its port bindings are checked end to end).  The end-to-end
test, with a real engine, is compat-tests/test_testcontainers.py."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kbroker import container_start

testcontainers = pytest.importorskip("testcontainers", reason="pip install -e '.[test]' brings testcontainers")

from kbroker.testcontainers import (  # noqa: E402
    ADVERTISED_ADDRESS_FILE,
    HTTP_PORT,
    KAFKA_PORT,
    advertised_host,
    container_command,
)


def test_command_runs_the_launcher_then_kbroker_with_listeners_on_every_interface() -> None:
    cmd = container_command({"num.partitions": "4", "log.retention.ms": "1000"}, dev=True)
    assert cmd[:4] == ["python", "-m", "kbroker.container_start", ADVERTISED_ADDRESS_FILE]
    args = cmd[4:]
    assert args[args.index("--listen") + 1] == f"0.0.0.0:{KAFKA_PORT}"
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    assert sets == [f"kbroker.http.listen=0.0.0.0:{HTTP_PORT}", "num.partitions=4", "log.retention.ms=1000"]
    assert "--dev" in args
    assert "--dev" not in container_command({}, dev=False)


def test_localhost_is_pinned_to_the_loopback_address_the_ports_are_published_on() -> None:
    assert advertised_host("localhost", "127.0.0.1") == "127.0.0.1"
    assert advertised_host("localhost", None) == "localhost"
    assert advertised_host("docker-host.example", "127.0.0.1") == "docker-host.example"


def test_launcher_waits_for_the_address_file(tmp_path: Path) -> None:
    path = tmp_path / "advertised"

    def write_later() -> None:
        time.sleep(0.3)
        path.write_text("127.0.0.1:1234\n")

    writer = threading.Thread(target=write_later)
    writer.start()
    assert container_start.wait_for_address(path, wait_s=10) == "127.0.0.1:1234"
    writer.join()
    assert container_start.wait_for_address(tmp_path / "never", wait_s=0.2) is None


def test_launcher_gives_up_with_exit_code_2_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from kbroker import container_start as c; c.WAIT_S = 0.3; "
         "sys.exit(c.main(sys.argv[1:]))", str(tmp_path / "missing")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "no advertised address" in proc.stderr

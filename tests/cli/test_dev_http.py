"""``--dev`` turns on the HTTP listener at 127.0.0.1:9644, or at a free port when 9644 is
taken, and the ready line says where; ``kbroker.http.listen`` set (empty: off) wins."""

from __future__ import annotations

import errno
import re
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import Running, assert_one_line_error, run_kbroker

HTTP_IN_READY = re.compile(r"serving on .*, data dir .*, HTTP (?P<url>http://127\.0\.0\.1:(?P<port>\d+))$")
HTTP_TIMEOUT_S = 10.0


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as resp:
        return resp.status, resp.read().decode()


@pytest.fixture
def port_9644_taken() -> Iterator[None]:
    """Hold 127.0.0.1:9644 (or find it already held by someone else)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the broker binds: TIME_WAIT is no obstacle
    try:
        s.bind(("127.0.0.1", 9644))
        s.listen()
    except OSError as exc:
        assert exc.errno == errno.EADDRINUSE, exc
    try:
        yield
    finally:
        s.close()


def _start(tmp_path: Path, *extra: str) -> Running:
    return Running("--dev", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"), *extra, cwd=tmp_path)


def test_dev_serves_http_and_prints_the_url(tmp_path: Path) -> None:
    broker = _start(tmp_path)
    try:
        m = broker.wait_ready()
        http = HTTP_IN_READY.search(m.string)
        assert http is not None, m.string
        assert _get(http["url"] + "/healthz") == (200, "ok\n")
        assert _get(http["url"] + "/readyz") == (200, "ready\n")
    finally:
        broker.kill()


def test_dev_moves_to_a_free_port_when_9644_is_taken(tmp_path: Path, port_9644_taken: None) -> None:
    broker = _start(tmp_path)
    try:
        m = broker.wait_ready()
        http = HTTP_IN_READY.search(m.string)
        assert http is not None, m.string
        assert int(http["port"]) != 9644
        assert _get(http["url"] + "/healthz")[0] == 200
    finally:
        broker.kill()


def test_an_explicit_http_listen_wins_and_empty_turns_it_off(tmp_path: Path) -> None:
    broker = _start(tmp_path, "--set", "kbroker.http.listen=")
    try:
        m = broker.wait_ready()
        assert "HTTP" not in m.string
    finally:
        broker.kill()


def test_dev_with_the_control_api_enabled_serves_it(tmp_path: Path) -> None:
    broker = _start(tmp_path, "--set", "kbroker.control.enabled=true")
    try:
        m = broker.wait_ready()
        http = HTTP_IN_READY.search(m.string)
        assert http is not None, m.string
        assert _get(http["url"] + "/v1/faults") == (200, '{"faults": []}\n')
    finally:
        broker.kill()


def test_the_control_api_without_an_http_listener_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_kbroker(
        "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"), "--set", "kbroker.control.enabled=true", cwd=tmp_path
    )
    assert_one_line_error(proc, 2, "kbroker.control.enabled=true needs the HTTP listener")

"""A broker process under a low RLIMIT_NOFILE: many partitions, and more clients than
descriptors.  Each broker runs as a subprocess whose limit is set with
``resource.setrlimit`` before it starts."""

from __future__ import annotations

import os
import re
import resource
import selectors
import signal
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

from cli_helpers import Running
from kbroker.wire.records import decode_records, iter_batches, make_batch

from kbroker.client import Client

PARTITIONS = 1500


def now_ms() -> int:
    return int(time.time() * 1000)

  # six times the descriptors the broker may open
TOPICS = 3


def nofile(limit: int) -> Callable[[], None]:
    def apply() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))

    return apply


def start(data: Path, cwd: Path, limit: int, *settings: str) -> tuple[Running, str]:
    args = ["--listen", "127.0.0.1:0", "--data-dir", str(data), "--log-level", "info"]
    for s in settings:
        args += ["--set", s]
    broker = Running(*args, cwd=cwd, preexec_fn=nofile(limit))
    return broker, broker.wait_ready().group("addr")


def stop(broker: Running) -> str:
    broker.proc.send_signal(signal.SIGTERM)
    code, err = broker.finish()
    assert code == 0, err
    return err


def read_all(bootstrap: str, per_topic: int) -> dict[tuple[str, int], list[bytes]]:
    out: dict[tuple[str, int], list[bytes]] = {}
    with Client(bootstrap, timeout_s=60) as c:
        for t in range(TOPICS):
            answers = c.fetch(
                f"t{t}", dict.fromkeys(range(per_topic), 0), max_wait_ms=0, max_bytes=64 << 20, partition_max_bytes=1 << 16
            )
            for p in answers:
                assert p.error_code == 0, (t, p.partition_index, p.error_code)
                values = []
                for view in iter_batches(bytes(p.records or b"")):
                    values += [bytes(r.value or b"") for r in decode_records(view)]
                out[(f"t{t}", p.partition_index)] = values
    return out


def test_many_partitions_under_a_low_descriptor_limit(tmp_path: Path) -> None:
    """1,500 partitions with RLIMIT_NOFILE 256: created, written and read, then read again
    after a clean restart and after a SIGKILL (partitions load lazily; the unclean ones
    are recovered before they serve)."""
    data = tmp_path / "data"
    per_topic = PARTITIONS // TOPICS
    broker, bootstrap = start(data, tmp_path, 256)
    try:
        with Client(bootstrap, timeout_s=60) as c:
            for t in range(TOPICS):
                result = c.create_topic(f"t{t}", per_topic, 1, {})
                assert result.error_code == 0, result
                c.produce(f"t{t}", {p: bytes(make_batch([b"%d-%d" % (t, p)], timestamp_ms=now_ms())) for p in range(per_topic)})
        expected = {(f"t{t}", p): [b"%d-%d" % (t, p)] for t in range(TOPICS) for p in range(per_topic)}
        assert read_all(bootstrap, per_topic) == expected
    finally:
        err = stop(broker)
    assert "Too many open files" not in err
    broker, bootstrap = start(data, tmp_path, 256)
    try:
        assert read_all(bootstrap, per_topic) == expected
        with Client(bootstrap, timeout_s=60) as c:  # a second record everywhere, then a kill
            for t in range(TOPICS):
                c.produce(f"t{t}", {p: bytes(make_batch([b"again"], timestamp_ms=now_ms())) for p in range(per_topic)})
    finally:
        broker.kill()
    expected = {k: [*v, b"again"] for k, v in expected.items()}
    broker, bootstrap = start(data, tmp_path, 256)
    try:
        broker.wait_for(re.compile(r"unclean stop: 1500 partitions are recovered"))
        assert read_all(bootstrap, per_topic) == expected
    finally:
        err = stop(broker)
    assert "Too many open files" not in err and "Traceback" not in err


API_VERSIONS_V0 = struct.pack(">ihhih", 15, 18, 0, 1, 5) + b"probe"


def answers(sock: socket.socket, timeout_s: float) -> bool:
    """Send ApiVersions v0 on ``sock``; True if a whole answer comes back in time."""
    sock.settimeout(timeout_s)
    try:
        sock.sendall(API_VERSIONS_V0)
        head = sock.recv(4, socket.MSG_WAITALL)
        if len(head) < 4:
            return False
        (size,) = struct.unpack(">i", head)
        return len(sock.recv(size, socket.MSG_WAITALL)) == size
    except OSError:
        return False


def test_at_its_descriptor_budget_the_broker_pauses_accepting(tmp_path: Path) -> None:
    """RLIMIT_NOFILE 128: segment files get a quarter (32), 32 more are kept in reserve,
    so about 64 connections fit.  With 100 clients the broker serves what fits, logs one
    line, keeps answering, and accepts the waiting clients as others close."""
    broker, bootstrap = start(tmp_path / "data", tmp_path, 128)
    host, port = bootstrap.rsplit(":", 1)
    socks = []
    try:
        for _ in range(100):  # connect() completes in the kernel's backlog either way
            socks.append(socket.create_connection((host, int(port)), timeout=10))
        for s in socks:
            s.sendall(API_VERSIONS_V0)
        done = answered_within(socks, 20.0)
        served = [s for s in socks if s in done]
        waiting = [s for s in socks if s not in done]
        assert 0 < len(served) <= 128 - 32 - 32 and waiting, (len(served), len(waiting))
        broker.wait_for(re.compile(r"not accepting connections for now: the descriptor limit"))
        assert all(answers(s, 10) for s in served[:5])  # the connections it has still answer
        for s in served[: len(waiting)]:
            s.close()
        assert len(answered_within(waiting, 60.0)) == len(waiting)  # accepted once others closed
    finally:
        for s in socks:
            s.close()
        err = stop(broker)
    assert err.count("not accepting connections for now") == 1, err
    assert "Traceback" not in err and "Too many open files" not in err


def test_out_of_descriptors_the_broker_backs_off_and_keeps_serving(tmp_path: Path) -> None:
    """EMFILE on accept (the broker's limit lowered under it with prlimit): one log line,
    no spinning, existing connections still answered, and clients are accepted again
    once descriptors are free."""
    broker, bootstrap = start(tmp_path / "data", tmp_path, 256)
    host, port = bootstrap.rsplit(":", 1)
    pid = broker.proc.pid
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    served = [socket.create_connection((host, int(port)), timeout=10) for _ in range(10)]
    waiting: list[socket.socket] = []
    try:
        assert all(answers(s, 10) for s in served)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (len(os.listdir(f"/proc/{pid}/fd")), hard))
        waiting = [socket.create_connection((host, int(port)), timeout=10) for _ in range(20)]
        for s in waiting:
            s.sendall(API_VERSIONS_V0)
        broker.wait_for(re.compile(r"cannot accept connections: Too many open files; retrying every"))
        cpu0 = _cpu_seconds(pid)
        time.sleep(2.0)  # at the limit for a while: no spinning, no new log lines
        assert _cpu_seconds(pid) - cpu0 < 1.0
        assert not answered_within(waiting, 0.5)
        assert all(answers(s, 10) for s in served)  # existing connections still answer
        for s in served[:5]:
            s.close()
        assert len(answered_within(waiting, 60.0, enough=3)) >= 3  # descriptors freed: accepted again
        broker.wait_for(re.compile(r"accepting connections again after \d+ failed attempts"))
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (256, hard))
    finally:
        for s in served + waiting:
            s.close()
        err = stop(broker)
    assert err.count("cannot accept connections") == 1, err
    assert "Traceback" not in err


def answered_within(socks: list[socket.socket], timeout_s: float, enough: int | None = None) -> set[socket.socket]:
    """The sockets whose ApiVersions (already sent) is answered within ``timeout_s``; it
    returns early once ``enough`` of them (default: all) are."""
    done: set[socket.socket] = set()
    wanted = len(socks) if enough is None else enough
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as sel:
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        while len(done) < wanted and (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(timeout=left):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                sel.unregister(s)
                s.settimeout(10)
                head = s.recv(4, socket.MSG_WAITALL)
                if len(head) == 4 and len(s.recv(struct.unpack(">i", head)[0], socket.MSG_WAITALL)) > 0:
                    done.add(s)
    return done


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_max_connections_per_ip_refuses_the_extra_clients(tmp_path: Path) -> None:
    broker, bootstrap = start(tmp_path / "data", tmp_path, 1024, "max.connections.per.ip=3")
    host, port = bootstrap.rsplit(":", 1)
    socks = []
    try:
        socks = [socket.create_connection((host, int(port)), timeout=10) for _ in range(3)]
        assert all(answers(s, 10) for s in socks)
        extra = socket.create_connection((host, int(port)), timeout=10)
        assert not answers(extra, 10)  # closed at once
        extra.close()
        socks.pop().close()
        for _ in range(100):  # the broker notices the close: a slot frees up
            again = socket.create_connection((host, int(port)), timeout=10)
            if answers(again, 10):
                socks.append(again)
                break
            again.close()
            time.sleep(0.05)
        else:
            raise AssertionError("no connection admitted after one closed")
    finally:
        for s in socks:
            s.close()
        stop(broker)


def test_max_connections_per_ip_overrides(tmp_path: Path) -> None:
    broker, bootstrap = start(
        tmp_path / "data", tmp_path, 1024, "max.connections.per.ip=0", "max.connections.per.ip.overrides=127.0.0.1:2"
    )
    host, port = bootstrap.rsplit(":", 1)
    try:
        socks = [socket.create_connection((host, int(port)), timeout=10) for _ in range(3)]
        assert [answers(s, 10) for s in socks] == [True, True, False]
        for s in socks:
            s.close()
    finally:
        stop(broker)

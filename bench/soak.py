"""``python -m bench.soak``: a kill loop against a real kbroker process under real client load.

Theory of operation
-------------------
One kbroker process (``python -m kbroker`` on a loopback port, data in a temp dir) and
six client processes (``bench.soak_workers``; kafkajs's is
``compat-tests/js/soak_producer.js``) that run for the whole soak: idempotent ``acks=all``
producers from kafka-python, aiokafka, confluent-kafka and kafkajs (one topic each), a
confluent-kafka transactional producer committing or aborting small transactions, and
a read_committed group consumer of the transactional topic committing its offsets.

Each cycle lets the load run for a random time (seeded; the seed is printed; one cycle in
ten runs ``settle_s`` so that the consumer group can settle), then
SIGKILLs the broker by pid and starts it again on the same port over the same data dir;
the clients reconnect by themselves.  With ``--power-loss`` each kill is also a power
cut: the broker runs with the test-only fsync journal (``kbroker.log.fault_layer``) and,
while it is dead, every file in its data dir is cut back to its size at its last fsync
(files never synced since the broker started lose what was written since) -- what the
page cache would have lost.

After the last cycle the workers are stopped and everything is read back with a fresh
confluent-kafka consumer (read_uncommitted for the idempotent topics, read_committed for
the transactional one), then checked against what the clients were told:

* every acknowledged record is in the log exactly once, at the partition and offset of
  its acknowledgement; no record (acknowledged or not) is in the log twice;
* a committed transaction is there whole, an aborted one not at all, an undecided one
  whole or not at all; the live read_committed consumer saw no aborted record and
  nothing that is not in the final log;
* an OffsetFetch after a successful OffsetCommit never answered an older offset.

Exit status 0 when every promise of the mode held (without ``--power-loss``, or with it
and ``--flush-every-message``: no loss at all; with ``--power-loss`` alone the losses
are measured and reported, not failed: that flush policy promises nothing across a
power cut), 1 otherwise.  Bounded: ``--cycles`` kills and ``--max-seconds`` in all.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kbroker.log.fault_layer import FSYNC_JOURNAL_ENV, file_sizes, simulate_power_loss

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60.0
WORKER_STOP_TIMEOUT_S = 60.0
READ_BACK_TIMEOUT_S = 120.0
WARM_UP_TIMEOUT_S = 60.0
PARTITIONS = 2
PRODUCERS = {
    "kafka-python": "soak-kp",
    "aiokafka": "soak-aio",
    "confluent": "soak-ck",
    "kafkajs": "soak-js",
}
KAFKAJS_DIR = ROOT / "compat-tests" / "js"  # `npm ci` there installs kafkajs
TXN_TOPIC = "soak-txn"
READY = re.compile(r"^kbroker \S+ serving on [^\s:]+:(?P<port>\d+) ")
BROKER_SETTINGS = {
    "num.partitions": str(PARTITIONS),
    "auto.create.topics.enable": "false",
    "group.initial.rebalance.delay.ms": "0",
    # Small segments: rolls (fsync, producer snapshots) happen many times per soak.
    "log.segment.bytes": "65536",
}


def progress(text: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class Broker:
    """The kbroker process under test: started, SIGKILLed and restarted by pid."""

    def __init__(
        self, data_dir: Path, log_path: Path, settings: dict[str, str], env: dict[str, str]
    ) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.settings = settings
        self.env = env
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> float:
        """Start and wait for the readiness line; returns the seconds it took."""
        cmd = [
            sys.executable,
            "-m",
            "kbroker",
            "--listen",
            f"127.0.0.1:{self.port}",
            "--data-dir",
            str(self.data_dir),
        ]
        for key, value in self.settings.items():
            cmd += ["--set", f"{key}={value}"]
        began = time.monotonic()
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **self.env},
        )
        ready = threading.Event()
        found: dict[str, int] = {}
        stream = self.proc.stderr
        assert stream is not None

        def pump() -> None:
            with self.log_path.open("ab") as log:
                for raw in iter(stream.readline, b""):
                    log.write(raw)
                    log.flush()
                    m = READY.match(raw.decode(errors="replace"))
                    if m and not ready.is_set():
                        found["port"] = int(m["port"])
                        ready.set()
            ready.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        ready.wait(START_TIMEOUT_S)
        if "port" not in found:
            self.kill()
            raise RuntimeError(f"kbroker did not start; see {self.log_path}")
        self.port = found["port"]
        return time.monotonic() - began

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        if self._pump is not None:
            self._pump.join(30)
            self._pump = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._pump is not None:
            self._pump.join(30)


@dataclass
class Plan:
    cycles: int = 100
    seed: int = 0
    min_up_s: float = 0.3
    max_up_s: float = 3.0
    power_loss: bool = False
    flush_every_message: bool = False
    settle_probability: float = 0.1
    settle_s: float = 10.0
    max_seconds: float = 1800.0
    clients: tuple[str, ...] = ("kafka-python", "aiokafka", "confluent", "kafkajs")
    keep: bool = False


@dataclass
class Report:
    plan: dict[str, Any]
    cycles_run: int = 0
    seconds: float = 0.0
    restart_s_median: float = 0.0
    restart_s_max: float = 0.0
    files_cut: int = 0
    bytes_dropped: int = 0
    dropped_by_kind: dict[str, int] = field(default_factory=dict)
    producers: dict[str, dict[str, int]] = field(default_factory=dict)
    txn: dict[str, int] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    losses_expected: bool = False

    @property
    def ok(self) -> bool:
        return not self.violations


def _file_kind(path: str) -> str:
    """``.../soak-kp-0/00000000000000000000.log`` -> ``soak-kp *.log``."""
    parent = os.path.basename(os.path.dirname(path)).rpartition("-")[0] or "data dir"
    name = os.path.basename(path)
    return f"{parent} *{os.path.splitext(name)[1] or name}"


def _create_topics(bootstrap: str, topics: list[str]) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics], request_timeout=30)
    for fut in futures.values():
        fut.result(30)


def _read_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text().splitlines():
        # a line cut short: a worker killed mid-line (only after its stop timeout)
        with contextlib.suppress(json.JSONDecodeError):
            lines.append(json.loads(raw))
    return lines


def read_back(bootstrap: str, topic: str, isolation: str) -> list[tuple[int, int, str]]:
    """Every record of ``topic`` as (partition, offset, value), read to the end."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"soak-verify-{topic}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": isolation,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    records: list[tuple[int, int, str]] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + READ_BACK_TIMEOUT_S
    try:
        while len(at_end) < PARTITIONS:
            if time.monotonic() > deadline:
                raise RuntimeError(f"reading {topic} back did not reach its end")
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition())
                continue
            at_end.discard(msg.partition())
            records.append((msg.partition(), msg.offset(), msg.value().decode()))
    finally:
        consumer.close()
    return records


def check_producer(
    kind: str, lines: list[dict[str, Any]], records: list[tuple[int, int, str]]
) -> dict[str, int]:
    acked = {d["ack"]: (d["p"], d["o"]) for d in lines if "ack" in d}
    where: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for p, o, v in records:
        where[v].append((p, o))
    lost = [v for v in acked if v not in where]
    duplicated = [v for v, at in where.items() if len(at) > 1]
    moved = [v for v, at in acked.items() if v in where and at not in where[v]]
    return {
        "acknowledged": len(acked),
        "records_in_log": len(records),
        "verified": len(acked) - len(lost) - len([v for v in moved if v not in duplicated]),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "moved": len(moved),
        "delivery_errors": sum(1 for d in lines if "error" in d),
    }


def check_txn(
    txn_lines: list[dict[str, Any]],
    consumer_lines: list[dict[str, Any]],
    committed_view: list[tuple[int, int, str]],
) -> tuple[dict[str, int], list[str]]:
    from bench.soak_workers import TXN_RECORDS

    outcomes = {d["txn"]: d["outcome"] for d in txn_lines if "txn" in d}
    values = Counter(v for _, _, v in committed_view)
    per_txn: Counter[int] = Counter()
    for v in values:
        per_txn[int(v.split(":")[1])] += 1
    problems = []
    dup = [v for v, n in values.items() if n > 1]
    if dup:
        problems.append(f"{len(dup)} transactional records twice in the log, e.g. {dup[:3]}")
    by_outcome = Counter(outcomes.values())
    for k, outcome in outcomes.items():
        n = per_txn.get(k, 0)
        if outcome == "committed" and n != TXN_RECORDS:
            problems.append(f"committed transaction {k} has {n}/{TXN_RECORDS} records")
        elif outcome == "aborted" and n:
            problems.append(f"aborted transaction {k} visible to read_committed ({n} records)")
        elif outcome == "unknown" and n not in (0, TXN_RECORDS):
            problems.append(f"undecided transaction {k} is partial ({n}/{TXN_RECORDS})")
    for k, n in per_txn.items():
        if k not in outcomes and n not in (0, TXN_RECORDS):
            problems.append(
                f"transaction {k} (outcome never logged) is partial ({n}/{TXN_RECORDS})"
            )
    aborted = {k for k, o in outcomes.items() if o == "aborted"}
    seen = [v for d in consumer_lines for v in d.get("seen", ())]
    seen_aborted = [v for v in seen if int(v.split(":")[1]) in aborted]
    seen_vanished = [v for v in set(seen) if v not in values]
    if seen_aborted:
        problems.append(f"the read_committed consumer saw {len(seen_aborted)} aborted records")
    figures = {
        "transactions": len(outcomes),
        "committed": by_outcome["committed"],
        "aborted": by_outcome["aborted"],
        "undecided": by_outcome["unknown"],
        "committed_lost": sum(
            1 for k, o in outcomes.items() if o == "committed" and per_txn.get(k, 0) == 0
        ),
        "records_read_committed": len(values),
        "consumer_seen": len(seen),
        "consumer_seen_aborted": len(seen_aborted),
        "consumer_seen_vanished": len(seen_vanished),
    }
    return figures, problems


def check_offsets(lines: list[dict[str, Any]]) -> tuple[dict[str, int], list[str]]:
    best: dict[str, int] = {}
    commits = fetches = backwards = 0
    problems = []
    for d in lines:
        if "commit" in d:
            commits += 1
            for p, o in d["commit"].items():
                if o >= 0:  # a negative offset (-1, -1001) is "nothing to commit"
                    best[p] = max(best.get(p, -1), o)
        elif "fetched" in d:
            fetches += 1
            for p, o in d["fetched"].items():
                if p in best and o < best[p]:
                    backwards += 1
                    if len(problems) < 5:
                        problems.append(
                            f"OffsetFetch answered {o} for partition {p} after a commit of {best[p]}"
                        )
    return {"commits": commits, "fetches": fetches, "went_backwards": backwards}, problems


def _wait_for_first_acks(work: Path, clients: tuple[str, ...]) -> None:
    """Before the first kill, wait (bounded) until every producer has had an
    acknowledgement and the transactional one has finished a transaction: every client
    is then really under test, however slowly it started."""
    wanted = {f"{c}.jsonl": '"ack"' for c in clients} | {"txn.jsonl": '"outcome"'}
    deadline = time.monotonic() + WARM_UP_TIMEOUT_S
    while wanted and time.monotonic() < deadline:
        for name, marker in list(wanted.items()):
            with contextlib.suppress(FileNotFoundError):
                if marker in (work / name).read_text():
                    del wanted[name]
        time.sleep(0.2)
    if wanted:
        progress(f"no first acknowledgement within {WARM_UP_TIMEOUT_S:.0f} s: {sorted(wanted)}")


def run(plan: Plan, work: Path) -> Report:
    rng = random.Random(plan.seed)
    report = Report(plan=asdict(plan))
    report.losses_expected = plan.power_loss and not plan.flush_every_message
    settings = dict(BROKER_SETTINGS)
    if plan.flush_every_message:
        settings["log.flush.interval.messages"] = "1"
    data_dir = work / "data"
    journal = work / "fsync-journal"
    env = {FSYNC_JOURNAL_ENV: str(journal)} if plan.power_loss else {}
    broker = Broker(data_dir, work / "broker.log", settings, env)
    stop_file = work / "stop"
    workers: dict[str, subprocess.Popen[bytes]] = {}
    began = time.monotonic()
    restarts: list[float] = []
    try:
        data_dir.mkdir(parents=True)
        durable = file_sizes(str(data_dir))
        broker.start()
        topics = [PRODUCERS[c] for c in plan.clients] + [TXN_TOPIC]
        _create_topics(broker.bootstrap, topics)
        kinds = [(c, PRODUCERS[c]) for c in plan.clients] + [
            ("txn", TXN_TOPIC),
            ("consumer", TXN_TOPIC),
        ]
        for i, (kind, topic) in enumerate(kinds):
            out, worker_s = str(work / f"{kind}.jsonl"), str(plan.max_seconds + 60)
            if kind == "kafkajs":
                cmd = ["node", str(KAFKAJS_DIR / "soak_producer.js"), broker.bootstrap, topic,
                       str(PARTITIONS), out, str(stop_file), worker_s]  # fmt: skip
            else:
                cmd = [sys.executable, "-m", "bench.soak_workers", kind, "--bootstrap",
                       broker.bootstrap, "--topic", topic, "--out", out, "--stop", str(stop_file),
                       "--seed", str(plan.seed * 31 + i), "--max-seconds", worker_s]  # fmt: skip
            with (work / f"{kind}.stderr").open("wb") as err:
                workers[kind] = subprocess.Popen(
                    cmd,
                    cwd=ROOT,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
        _wait_for_first_acks(work, plan.clients)
        for cycle in range(plan.cycles):
            if time.monotonic() - began > plan.max_seconds:
                progress(f"time bound reached after {cycle} cycles")
                break
            # Now and then a long stretch: group members left behind by a kill (a rejoin
            # under a new member id) expire only after session.timeout.ms of uptime.
            long_run = rng.random() < plan.settle_probability
            time.sleep(plan.settle_s if long_run else rng.uniform(plan.min_up_s, plan.max_up_s))
            broker.kill()
            if plan.power_loss:
                for path, dropped in simulate_power_loss(str(data_dir), durable, str(journal)):
                    report.files_cut += 1
                    report.bytes_dropped += dropped
                    kind = _file_kind(path)
                    report.dropped_by_kind[kind] = report.dropped_by_kind.get(kind, 0) + dropped
                journal.unlink(missing_ok=True)
                durable = file_sizes(str(data_dir))
            restarts.append(broker.start())
            report.cycles_run = cycle + 1
            if (cycle + 1) % 10 == 0:
                progress(f"{cycle + 1}/{plan.cycles} kills, last restart {restarts[-1]:.2f} s")
        time.sleep(2.0)  # the last incarnation also serves some load
        stop_file.touch()
        for kind, proc in workers.items():
            try:
                proc.wait(WORKER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                progress(f"worker {kind} did not stop; killing it")
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
        progress("reading everything back")
        for kind in plan.clients:
            lines = _read_lines(work / f"{kind}.jsonl")
            records = read_back(broker.bootstrap, PRODUCERS[kind], "read_uncommitted")
            figures = check_producer(kind, lines, records)
            report.producers[kind] = figures
            if figures["duplicated"] and not report.losses_expected:
                report.violations.append(
                    f"{kind}: {figures['duplicated']} records in the log twice"
                )
            if (figures["lost"] or figures["moved"]) and not report.losses_expected:
                report.violations.append(
                    f"{kind}: {figures['lost']} acknowledged records lost, {figures['moved']} not at their acknowledged offset"
                )
        committed_view = read_back(broker.bootstrap, TXN_TOPIC, "read_committed")
        txn_lines = _read_lines(work / "txn.jsonl")
        consumer_lines = _read_lines(work / "consumer.jsonl")
        report.txn, problems = check_txn(txn_lines, consumer_lines, committed_view)
        if report.txn["consumer_seen_vanished"] and not report.losses_expected:
            problems.append(
                f"{report.txn['consumer_seen_vanished']} records seen read_committed are gone"
            )
        if report.txn["committed_lost"] and not report.losses_expected:
            problems.append(f"{report.txn['committed_lost']} committed transactions lost")
        report.offsets, offset_problems = check_offsets(consumer_lines)
        if not report.losses_expected:
            problems += offset_problems
        else:  # losses are measured, but atomicity and isolation still hold
            problems = [p for p in problems if "aborted" in p or "partial" in p]
        report.violations += problems
    finally:
        stop_file.touch()
        for proc in workers.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
        broker.stop()
        report.seconds = round(time.monotonic() - began, 1)
        if restarts:
            report.restart_s_median = round(statistics.median(restarts), 2)
            report.restart_s_max = round(max(restarts), 2)
    return report


def render(report: Report) -> str:
    p = report.plan
    mode = "power loss" if p["power_loss"] else "SIGKILL"
    flush = "log.flush.interval.messages=1" if p["flush_every_message"] else "default flush policy"
    out = [
        f"kill loop: {report.cycles_run} cycles ({mode}, {flush}), seed {p['seed']}, {report.seconds} s; "
        f"restart median {report.restart_s_median} s, max {report.restart_s_max} s"
    ]
    if p["power_loss"]:
        out.append(
            f"power cuts dropped {report.bytes_dropped} unsynced bytes in {report.files_cut} file cuts"
        )
        for kind, n in sorted(report.dropped_by_kind.items(), key=lambda kv: -kv[1]):
            out.append(f"  {n:10} bytes  {kind}")
    for kind, f in report.producers.items():
        out.append(
            f"{kind:13} acknowledged {f['acknowledged']:7}  verified {f['verified']:7}  lost {f['lost']}  "
            f"duplicated {f['duplicated']}  moved {f['moved']}  (log holds {f['records_in_log']})"
        )
    t = report.txn
    if t:
        out.append(
            f"transactions  {t['transactions']} ({t['committed']} committed, {t['aborted']} aborted, "
            f"{t['undecided']} undecided); committed lost {t['committed_lost']}; read_committed consumer "
            f"saw {t['consumer_seen']} records, {t['consumer_seen_aborted']} aborted, "
            f"{t['consumer_seen_vanished']} since vanished"
        )
    o = report.offsets
    if o:
        out.append(
            f"group offsets {o['commits']} commits, {o['fetches']} fetches, went backwards {o['went_backwards']}"
        )
    out.append("violations: " + ("none" if report.ok else "; ".join(report.violations)))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = Plan()
    ap.add_argument("--cycles", type=int, default=d.cycles, help=f"SIGKILLs (default {d.cycles})")
    ap.add_argument(
        "--seed", type=int, default=None, help="random seed (default: from the clock, printed)"
    )
    ap.add_argument(
        "--min-up", type=float, default=d.min_up_s, help="shortest run between kills, s"
    )
    ap.add_argument("--max-up", type=float, default=d.max_up_s, help="longest run between kills, s")
    ap.add_argument(
        "--power-loss", action="store_true", help="also drop unsynced writes at each kill"
    )
    ap.add_argument(
        "--flush-every-message", action="store_true", help="log.flush.interval.messages=1"
    )
    ap.add_argument(
        "--max-seconds", type=float, default=d.max_seconds, help="bound on the whole soak"
    )
    ap.add_argument(
        "--clients",
        default=",".join(d.clients),
        help="idempotent producers, from kafka-python,aiokafka,confluent,kafkajs",
    )
    ap.add_argument(
        "--work-dir", help="keep data, logs and worker output here (default: a temp dir, removed)"
    )
    ap.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else int(time.time()) % 100_000
    clients = tuple(c for c in args.clients.split(",") if c)
    for c in clients:
        if c not in PRODUCERS:
            ap.error(f"unknown client {c!r}")
    if "kafkajs" in clients and not (KAFKAJS_DIR / "node_modules" / "kafkajs").is_dir():
        ap.error(f"kafkajs is not installed: run `npm ci` in {KAFKAJS_DIR.relative_to(ROOT)}")
    plan = Plan(
        cycles=args.cycles,
        seed=seed,
        min_up_s=args.min_up,
        max_up_s=args.max_up,
        power_loss=args.power_loss,
        flush_every_message=args.flush_every_message,
        max_seconds=args.max_seconds,
        clients=clients,
    )
    progress(f"seed {seed}")
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="kbroker-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        report = run(plan, work)
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    print(render(report))
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(report), indent=2) + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

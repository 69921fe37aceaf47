"""Every fuzz target still runs: a short coverage-guided run of each (``python -m fuzz``).

Each target runs in its own process for ``SMOKE_SECONDS`` of fuzzing (libFuzzer's
``-max_total_time``; start-up, which compiles and instruments the codec plans, comes on
top) and must exit 0 -- no crash, hang or out-of-memory on its seeds or on what the
fuzzer derived from them -- after executing mutated inputs beyond its seed corpus.  The
long runs whose figures RELIABILITY.md reports use the same command with ``--runs``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("requests", "responses", "records", "compression", "log_recovery", "groups", "transactions")
SMOKE_SECONDS = 10
SMOKE_LIBFUZZER_SEED = 20261205
# Mutated inputs a target must get through beyond its seeds in SMOKE_SECONDS; the slowest
# target (log_recovery, a partition directory per input) does a few hundred a second on
# a loaded 2-core machine.
MIN_MUTATED_EXECUTIONS = 100
_SUMMARY = re.compile(r"^(\w+): (\d+) executions \((\d+) seeds\).*: (ok|FAILED.*)$", re.M)


def test_the_target_list_is_the_runners() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fuzz", "list"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert tuple(result.stdout.split()) == TARGETS


@pytest.mark.timeout(180)
@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_runs_clean(target: str, tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is in the test extra: pip install -e '.[test]'")
    result = subprocess.run(
        [
            sys.executable, "-m", "fuzz", target,
            "--seconds", str(SMOKE_SECONDS),
            "--artifacts", str(tmp_path),
            # libFuzzer's mutations from a fixed seed: a run explores the same inputs each
            # time (as far as its 10 s reach), so a red smoke test is a reproducible find,
            # not the luck of one CI run; long runs (RELIABILITY.md) use fresh seeds.
            "--", f"-seed={SMOKE_LIBFUZZER_SEED}",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=170,
    )  # fmt: skip
    log = (tmp_path / f"{target}.log").read_text(errors="replace")
    summary = _SUMMARY.search(result.stdout)
    assert summary is not None, result.stdout + result.stderr + log[-3000:]
    name, executions, seeds, verdict = summary.groups()
    assert (result.returncode, name, verdict) == (0, target, "ok"), log[-3000:]
    assert int(seeds) > 0
    assert int(executions) >= int(seeds) + MIN_MUTATED_EXECUTIONS, result.stdout

#!/usr/bin/env python3
"""Measure what the generated message modules cost at import.

Usage: ``python tools/bench_wire_import.py [--runs 5] [--no-server]``

* class creation: every generated module under ``wire/messages`` is compiled once, then
  its body is executed into a fresh namespace (best of a few rounds); the total is
  divided by the number of classes, so the figure is "module body per class" (class
  statement + its ``SCHEMA`` tuple), without file reads or unmarshalling;
* ``import wire.messages.*``: all generated modules, in a fresh interpreter;
* ``import kbroker.server``: a fresh interpreter per run, median of ``--runs``; wall time
  of the whole process (interpreter start included) and, separately, the time of the
  import statement itself as measured inside the process.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _modules() -> list[str]:
    out = []
    for path in sorted((ROOT / "wire" / "messages").rglob("*.py")):
        if path.name == "__init__.py" or path.name.startswith("_"):
            continue
        rel = path.relative_to(ROOT).with_suffix("")
        out.append(".".join(rel.parts))
    return out


def class_creation(rounds: int = 5) -> tuple[int, int, float]:
    """(modules, classes, best total seconds to execute every module body once)."""
    sys.path.insert(0, str(ROOT))
    names = _modules()
    codes = []
    n_classes = 0
    for name in names:
        mod = importlib.import_module(name)  # so sys.modules has it (and its imports)
        n_classes += len(mod.__all__)
        path = Path(mod.__file__ or "")
        codes.append((name, compile(path.read_text(), str(path), "exec")))
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for name, code in codes:
            exec(code, {"__name__": name, "__builtins__": __builtins__})
        best = min(best, time.perf_counter() - start)
    return len(names), n_classes, best


def _fresh(code: str) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return time.perf_counter() - start, out.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-server", action="store_true", help="skip the kbroker.server import")
    args = ap.parse_args(argv)

    mods, classes, total = class_creation()
    print(f"module bodies: {mods} modules, {classes} classes, {total * 1e3:.1f} ms "
          f"= {total / classes * 1e6:.1f} us per class")

    all_mods = ", ".join(_modules())
    code_all = f"import time; t = time.perf_counter(); import {all_mods}; print(time.perf_counter() - t)"
    _fresh(code_all)  # warm the bytecode cache
    inner = [float(_fresh(code_all)[1]) for _ in range(args.runs)]
    print(f"import every generated module ({mods}), fresh interpreter: "
          f"median {statistics.median(inner) * 1e3:.1f} ms")

    if not args.no_server:
        code = (
            "import sys, time; t = time.perf_counter(); import kbroker.server; "
            "dt = time.perf_counter() - t; "
            "mods = [m for m in sys.modules if m.startswith('kbroker.wire.messages.')]; "
            "n = sum(len(getattr(sys.modules[m], '__all__', ())) for m in mods); "
            "print(dt, len(mods), n)"
        )
        _fresh(code)
        walls, imports = [], []
        for _ in range(args.runs):
            wall, out = _fresh(code)
            dt, nmods, ncls = out.split()
            walls.append(wall)
            imports.append(float(dt))
        print(f"import kbroker.server ({nmods} message modules, {ncls} classes), {args.runs} fresh "
              f"interpreters: median import {statistics.median(imports) * 1e3:.0f} ms "
              f"(min {min(imports) * 1e3:.0f}), median process wall {statistics.median(walls) * 1e3:.0f} ms "
              f"(min {min(walls) * 1e3:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

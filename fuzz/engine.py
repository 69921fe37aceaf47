"""One fuzzing process: ``python -m fuzz.engine TARGET [libFuzzer flags...]``.

Run by ``python -m fuzz`` (one child per target: libFuzzer ends its process when it is
done).  Imports the target with atheris instrumenting every ``kbroker`` module it loads,
lets the target prepare (compile codec plans), instruments the functions the codec
generated at run time (they come from ``exec``, which no import hook sees), writes the
seed corpus to a temporary directory and hands control to libFuzzer with
``[corpus dir, seed dir, flags...]`` -- new inputs go to the first directory.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import tempfile
import types
from hashlib import sha1


def _instrument_generated(atheris: types.ModuleType) -> int:
    """Instrument the decoders the codec generated (``_dec_*`` functions of ``<wire plan
    ...>`` code): coverage of what parses hostile bytes guides the fuzzer; the encoders
    and size plans only re-encode what decoded, and instrumenting them too would triple
    the start-up time."""
    count = 0
    for obj in gc.get_objects():
        if (
            isinstance(obj, types.FunctionType)
            and obj.__code__.co_filename.startswith("<wire plan ")
            and obj.__name__.startswith("_dec_")
        ):
            atheris.instrument_func(obj)
            count += 1
    return count


def write_seeds(seeds: list[bytes], directory: str) -> int:
    for data in seeds:
        with open(os.path.join(directory, sha1(data).hexdigest()), "wb") as f:
            f.write(data)
    return len(seeds)


def main(argv: list[str]) -> None:
    import atheris

    name, flags = argv[0], argv[1:]
    corpus = None
    if flags and not flags[0].startswith("-"):
        corpus, flags = flags[0], flags[1:]
    with atheris.instrument_imports(include=["kbroker"]):
        target = importlib.import_module(f"fuzz.targets.{name}")
    target.prepare()
    generated = _instrument_generated(atheris)
    with tempfile.TemporaryDirectory(prefix=f"kbroker-fuzz-{name}-") as tmp:
        seed_dir = os.path.join(tmp, "seeds")
        os.mkdir(seed_dir)
        count = write_seeds(target.seeds(), seed_dir)
        if corpus is None:
            corpus = os.path.join(tmp, "corpus")
            os.mkdir(corpus)
        print(
            f"fuzz: {name}: {count} seeds, {generated} generated codec functions instrumented",
            file=sys.stderr,
            flush=True,
        )
        atheris.Setup([sys.argv[0], corpus, seed_dir, *flags], target.test_one_input)
        atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv[1:])

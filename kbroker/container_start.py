"""Start kbroker in a container once its advertised address is known (testcontainers).

A container's host port is chosen by the engine when the container starts, but the broker
must advertise it from its first answer on.  So ``kbroker.testcontainers.KBrokerContainer``
runs this module as the container's command::

    python -m kbroker.container_start /tmp/kbroker-advertised [kbroker arguments...]

which waits (at most :data:`WAIT_S`) for the file, written by the container's owner once
the mapped port is known, then replaces itself with ``python -m kbroker --advertise
HOST:PORT [kbroker arguments...]``.  Only the standard library is imported: the image
does not need testcontainers.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

# How long to wait for the advertised address before giving up (exit code 2).
WAIT_S = 120.0
POLL_S = 0.05
# An address file larger than this is not a HOST:PORT.
MAX_ADDRESS_BYTES = 512


def wait_for_address(path: Path, wait_s: float = WAIT_S) -> str | None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            data = path.read_bytes()[:MAX_ADDRESS_BYTES]
        except FileNotFoundError:
            time.sleep(POLL_S)
            continue
        address = data.decode("utf-8", errors="replace").strip()
        if address:
            return address
        time.sleep(POLL_S)  # written but still empty: the copy is in progress
    return None


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m kbroker.container_start ADDRESS_FILE [kbroker arguments...]", file=sys.stderr)
        return 2
    address = wait_for_address(Path(argv[0]), WAIT_S)
    if address is None:
        print(f"kbroker.container_start: no advertised address in {argv[0]} after {WAIT_S:.0f} s", file=sys.stderr)
        return 2
    args = [sys.executable, "-m", "kbroker", "--advertise", address, *argv[1:]]
    sys.stderr.flush()
    os.execv(sys.executable, args)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

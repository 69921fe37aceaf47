"""The clients that run as processes, behind small functions the feature tests share:
kafkajs (``js/driver.js`` under node), kcat, and the ``kbroker`` CLI.

Each call is one real client process talking to the broker over TCP; a failure carries the
process's stderr tail.  Records travel as (key, value) pairs of bytes (``None`` for a null).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from typing import Any

from admin_cli import run as cli
from clients import JS_DIR, kafkajs_node_modules, kcat_path

NODE_TIMEOUT_S = 120
KCAT_TIMEOUT_S = 60

Pair = tuple[bytes | None, bytes | None]


def _b64(b: bytes | None) -> str | None:
    return None if b is None else base64.b64encode(b).decode()


def _unb64(s: str | None) -> bytes | None:
    return None if s is None else base64.b64decode(s)


# -- kafkajs ---------------------------------------------------------------------------------


def js(command: str, request: dict[str, Any], *, check: bool = True) -> dict[str, Any]:
    """``node driver.js COMMAND`` with ``request`` as JSON on stdin; its JSON answer.
    With ``check`` the command must succeed; otherwise an error answer is returned."""
    kafkajs_node_modules()
    proc = subprocess.run(
        ["node", str(JS_DIR / "driver.js"), command],
        input=json.dumps(request), capture_output=True, text=True, timeout=NODE_TIMEOUT_S,
        cwd=JS_DIR, env={**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1"},
    )  # fmt: skip
    lines = proc.stdout.strip().splitlines()
    assert lines, f"kafkajs {command} printed nothing (exit {proc.returncode}): {proc.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    if check:
        assert proc.returncode == 0 and "error" not in result, (
            f"kafkajs {command} failed (exit {proc.returncode}): {result.get('error')}\n"
            f"--- node stderr (tail) ---\n{proc.stderr[-3000:]}"
        )
    return result


def js_messages(pairs: list[Pair], partitions: list[int] | None = None) -> list[dict[str, Any]]:
    out = []
    for i, (key, value) in enumerate(pairs):
        m: dict[str, Any] = {"key": _b64(key), "value": _b64(value), "headers": [], "timestamp": None}
        if partitions is not None:
            m["partition"] = partitions[i]
        out.append(m)
    return out


def js_records(result: dict[str, Any]) -> list[tuple[int, int, bytes | None, bytes | None]]:
    """(partition, offset, key, value) of a consume answer."""
    return [(r["partition"], r["offset"], _unb64(r["key"]), _unb64(r["value"])) for r in result["records"]]


# -- kcat ------------------------------------------------------------------------------------


def kcat(bootstrap: str, args: list[str], stdin: bytes | None = None, *, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    cmd = [kcat_path(), "-b", bootstrap, "-X", "socket.timeout.ms=10000", "-X", "broker.address.family=v4", *args]
    proc = subprocess.run(cmd, input=stdin if stdin is not None else b"", capture_output=True, timeout=KCAT_TIMEOUT_S)
    if check:
        assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stderr.decode()[-3000:]}"
    return proc


# kcat -C output format: partition, offset, key length, value length, then key and value
# (lengths are -1 for a null; the values here are printable and hold no newline).
KCAT_FORMAT = "%p %o %K %S %k %s\n"


def kcat_parse(out: bytes) -> list[tuple[int, int, bytes | None, bytes | None]]:
    """Records printed with :data:`KCAT_FORMAT`: (partition, offset, key, value)."""
    recs = []
    for line in out.decode().splitlines():
        partition, offset, key_len, value_len, rest = line.split(" ", 4)
        key_text, _, value_text = rest.partition(" ")
        key = None if key_len == "-1" else key_text.encode()
        value = None if value_len == "-1" else value_text.encode()
        recs.append((int(partition), int(offset), key, value))
    return recs


def kcat_read_all(bootstrap: str, topic: str, *extra: str) -> list[tuple[int, int, bytes | None, bytes | None]]:
    """Everything in ``topic`` from the beginning to the end (-e), as kcat's simple consumer reads it."""
    return kcat_parse(kcat(bootstrap, ["-C", "-t", topic, "-o", "beginning", "-e", "-f", KCAT_FORMAT, *extra]).stdout)


# -- kbroker CLI -----------------------------------------------------------------------------


# ``cli(bootstrap, *args, stdin=None, check=True)``: ``python -m kbroker ARGS --bootstrap B``
# (the CLI a user runs) is admin_cli.run, imported above as ``cli``.


# kbroker consume -f format: the same fields as KCAT_FORMAT (the CLI takes kcat's tokens).
CLI_FORMAT = KCAT_FORMAT


def cli_read_all(bootstrap: str, topic: str) -> list[tuple[int, int, bytes | None, bytes | None]]:
    """Everything in ``topic`` from the log start to the end, as ``kbroker consume -b -e`` prints it."""
    return kcat_parse(cli(bootstrap, "consume", topic, "--from-beginning", "--exit", "--format", CLI_FORMAT).stdout)

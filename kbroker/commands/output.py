"""What the admin CLI prints and parses: tables, JSON, kcat-style formats, ``k=v`` options.

Pure functions, no I/O beyond the stream handed in; unit-tested in tests/cli/.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO, Any

from kbroker.client.connection import ClientError


class UsageError(ClientError):
    """A malformed option value (exit 2, like an argparse error)."""


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns two spaces apart, an upper-case header row; '' cells for None."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines) + "\n"


def emit_json(value: Any, out: IO[str] | None = None) -> None:
    """One JSON document (sorted keys: stable for scripts and diffs) and a newline."""
    stream = out or sys.stdout
    stream.write(json.dumps(value, sort_keys=True) + "\n")


def parse_kv(items: Sequence[str], what: str) -> dict[str, str]:
    """``["k=v", ...]`` -> dict (later wins); UsageError for an item without ``=`` or key."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} takes KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def parse_topic_partition(text: str) -> tuple[str, int | None]:
    """``TOPIC`` or ``TOPIC:PARTITION`` -> (topic, partition or None)."""
    topic, sep, part = text.rpartition(":")
    if not sep:
        return text, None
    if not topic or not part.isdigit():
        raise UsageError(f"--topic takes TOPIC or TOPIC:PARTITION, got {text!r}")
    return topic, int(part)


def parse_datetime_ms(text: str) -> int:
    """An ISO 8601 date-time -> epoch milliseconds; a time without a zone is UTC."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(f"--to-datetime takes an ISO 8601 time such as 2026-01-31T12:00:00Z, got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def format_ms(timestamp_ms: int) -> str:
    """Epoch ms -> ISO 8601 UTC with milliseconds (``-`` for -1, "no timestamp")."""
    if timestamp_ms < 0:
        return "-"
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- kcat-style record formats ----------------------------------------------------------------

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "0": "\0"}
# The tokens --format understands (kcat's, plus %v as rpk's name for the value).
FORMAT_TOKENS = {
    "t": "topic",
    "p": "partition",
    "o": "offset",
    "k": "key",
    "K": "key length (-1 for a null key)",
    "s": "value",
    "v": "value",
    "S": "value length (-1 for a null value)",
    "T": "timestamp (epoch ms)",
    "h": "headers, as k=v pairs separated by commas",
    "%": "a literal %",
}


def compile_format(fmt: str) -> list[tuple[bool, str]]:
    """Split a format into literal text and tokens: [(is_token, text-or-token-letter)].

    ``\\n \\r \\t \\\\ \\0`` are unescaped in literals; an unknown ``%x`` or a lone trailing
    ``%`` is a UsageError.
    """
    parts: list[tuple[bool, str]] = []
    literal: list[str] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c == "\\" and i + 1 < len(fmt) and fmt[i + 1] in _ESCAPES:
            literal.append(_ESCAPES[fmt[i + 1]])
            i += 2
            continue
        if c == "%":
            if i + 1 >= len(fmt) or fmt[i + 1] not in FORMAT_TOKENS:
                token = fmt[i : i + 2]
                raise UsageError(f"--format: unknown token {token!r} (known: %{' %'.join(FORMAT_TOKENS)})")
            if fmt[i + 1] == "%":
                literal.append("%")
            else:
                if literal:
                    parts.append((False, "".join(literal)))
                    literal = []
                parts.append((True, fmt[i + 1]))
            i += 2
            continue
        literal.append(c)
        i += 1
    if literal:
        parts.append((False, "".join(literal)))
    return parts


def _text(data: bytes | None) -> str:
    return "" if data is None else data.decode("utf-8", errors="backslashreplace")


def format_record(parts: list[tuple[bool, str]], rec: ConsumedRecord) -> bytes:
    """One record rendered by a compiled format; keys and values are copied byte for byte."""
    out = bytearray()
    for is_token, text in parts:
        if not is_token:
            out += text.encode()
        elif text == "t":
            out += rec.topic.encode()
        elif text == "p":
            out += str(rec.partition).encode()
        elif text == "o":
            out += str(rec.offset).encode()
        elif text == "k":
            out += rec.key or b""
        elif text == "K":
            out += str(-1 if rec.key is None else len(rec.key)).encode()
        elif text in ("s", "v"):
            out += rec.value or b""
        elif text == "S":
            out += str(-1 if rec.value is None else len(rec.value)).encode()
        elif text == "T":
            out += str(rec.timestamp_ms).encode()
        elif text == "h":
            out += ",".join(f"{k}={_text(v)}" for k, v in rec.headers).encode()
    return bytes(out)


def record_json(rec: ConsumedRecord) -> dict[str, Any]:
    """The ``consume --json`` shape of one record (text decoded as UTF-8, bad bytes escaped)."""
    return {
        "topic": rec.topic,
        "partition": rec.partition,
        "offset": rec.offset,
        "timestamp": rec.timestamp_ms,
        "key": None if rec.key is None else _text(rec.key),
        "value": None if rec.value is None else _text(rec.value),
        "headers": [{"key": k, "value": None if v is None else _text(v)} for k, v in rec.headers],
    }


class ConsumedRecord:
    """A record as the consume verb prints it (absolute offset and timestamp)."""

    __slots__ = ("headers", "key", "offset", "partition", "timestamp_ms", "topic", "value")

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        timestamp_ms: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]],
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp_ms = timestamp_ms
        self.key = key
        self.value = value
        self.headers = headers

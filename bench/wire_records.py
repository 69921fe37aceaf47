"""Benchmark: record batch CRC verification, records decode and encode.

Run ``python bench/wire_records.py`` from the repo root.  It prints its figures and
rewrites the "wire record batches" section of BENCHMARKS.md (other sections are left
alone); ``--no-write`` only prints.

CRC: ``RecordBatchView(buf).is_valid()`` (view construction included, as on the
produce path) against a bare ``crc32c.crc32c`` over the same covered bytes, already
sliced.  The ratio is bare time / view time: 1.0 means the view adds nothing; the view
must not copy the batch, so for realistic batch sizes the ratio should stay >= 0.9.
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import crc32c

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kbroker.wire.records import (  # noqa: E402
    Compression,
    RecordBatchView,
    build_record_batch,
    decode_records,
)

SECTION = "wire record batches"
CRC_SIZES = [1024, 16 * 1024, 256 * 1024, 1024 * 1024]
RATIO_TARGET = 0.9


def best_of(fn: Callable[[], object], *, repeat: int = 7, min_time: float = 0.05) -> float:
    """Seconds per call: the best of ``repeat`` timed loops of at least ``min_time`` each."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - start >= min_time:
            break
        number *= 2
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def batch_of_size(target_bytes: int) -> bytearray:
    value = bytes(range(256)) * 4  # 1 KiB per record; content does not matter for a CRC
    count = max(1, target_bytes // (len(value) + 20))
    items = [
        (b"key-%d" % i, value[: len(value) - 30], [], 1_700_000_000_000 + i) for i in range(count)
    ]
    return build_record_batch(items)


def bench_crc() -> list[tuple[int, float, float, float, float]]:
    rows = []
    for size in CRC_SIZES:
        buf = batch_of_size(size)
        covered = bytes(buf[21:])
        data = bytes(buf)
        assert RecordBatchView(data).is_valid()
        bare = best_of(lambda covered=covered: crc32c.crc32c(covered))
        view = best_of(lambda data=data: RecordBatchView(data).is_valid())
        copied = best_of(lambda data=data: crc32c.crc32c(data[21:]))
        rows.append((len(buf), bare, view, bare / view, copied))
    return rows


def bench_records() -> list[tuple[str, int, int, float, float]]:
    count = 1000
    items = [
        (b"user-%06d" % i, b'{"id": %d, "name": "user %d", "score": %d, "tags": ["a", "b"]}' % (i, i, i * 7), [("trace", b"abc123")], 1_700_000_000_000 + i)
        for i in range(count)
    ]  # fmt: skip
    raw_bytes = sum(len(k) + len(v) + 11 for k, v, _, _ in items)
    rows = []
    for codec in Compression:
        buf = build_record_batch(items, compression=codec)
        view = RecordBatchView(bytes(buf))
        assert len(decode_records(view)) == count
        decode = best_of(lambda view=view: decode_records(view), repeat=5)
        encode = best_of(lambda codec=codec: build_record_batch(items, compression=codec), repeat=5)
        rows.append((codec.name.lower(), len(buf), raw_bytes, decode, encode))
    return rows


def render(
    crc_rows: list[tuple[int, float, float, float]],
    rec_rows: list[tuple[str, int, int, float, float]],
) -> str:
    lines = [
        f"## {SECTION}",
        "",
        f"`python bench/wire_records.py` on {platform.python_implementation()} {platform.python_version()},"
        f" {platform.machine()}; best of several loops.",
        "",
        "CRC-32C verification: `RecordBatchView(buf).is_valid()` (view built each time) vs a bare"
        " `crc32c.crc32c` over the same, pre-sliced bytes. Ratio = bare time / view time"
        f" (target >= {RATIO_TARGET}: the view must not copy).",
        "",
        "The last column, a CRC over a copied slice (`bytes[21:]`), shows what a copy would cost.",
        "",
        "| batch bytes | bare crc32c | view + is_valid | bare GB/s | view GB/s | ratio | copy + crc |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, bare, view, ratio, copied in crc_rows:
        lines.append(
            f"| {size:,} | {bare * 1e6:.2f} us | {view * 1e6:.2f} us | {size / bare / 1e9:.2f} |"
            f" {size / view / 1e9:.2f} | {ratio:.2f} | {copied * 1e6:.2f} us |"
        )
    lines += [
        "",
        "The view adds a fixed ~1 us per batch (header unpack, memoryview slice, two Python calls);"
        " it costs nothing per byte, so the ratio reaches the target from a few hundred KiB up and"
        " stays below it for small batches, where the fixed cost dominates a ~20 GB/s hardware CRC.",
    ]
    lines += [
        "",
        "Records codec: one batch of 1,000 records (~75-byte JSON values, 11-byte keys, one header);"
        " decode = `decode_records` (decompress + parse), encode = `build_record_batch`.",
        "",
        "| codec | batch bytes | decode | decode records/s | encode | encode records/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, size, _raw, decode, encode in rec_rows:
        lines.append(
            f"| {name} | {size:,} | {decode * 1e3:.2f} ms | {1000 / decode:,.0f} |"
            f" {encode * 1e3:.2f} ms | {1000 / encode:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^## {re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(current):
        updated = pattern.sub(lambda _m: text + "\n", current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    path.write_text(updated.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone"
    )
    args = parser.parse_args()
    text = render(bench_crc(), bench_records())
    print(text)
    if not args.no_write:
        write_section(text)
        print("wrote section", repr(SECTION), "of BENCHMARKS.md")


if __name__ == "__main__":
    main()

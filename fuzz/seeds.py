"""Seed inputs shared by the targets: golden captures and filled-in messages.

The golden files are the request frames and record batches captured from real clients
(kafka-python, aiokafka, confluent-kafka) that ``tests/wire/test_golden*.py`` check; a
seed corpus built from them starts the fuzzer on real-world shapes.  ``filled`` builds a
message with every field of a version set to a non-default value (one element per
array), so the seeds reach every field's decoder without the fuzzer having to invent
an array length first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from kbroker.wire.records import Compression, build_control_batch, build_record_batch
from kbroker.wire.schema import F

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "wire" / "golden"


def golden_frames() -> list[bytes]:
    """Request frames (no size prefix) captured from real clients."""
    return [bytes.fromhex(p.read_text().strip()) for p in sorted(GOLDEN.glob("*.hex"))]


def golden_batches() -> list[bytes]:
    """Record batches, one per codec, captured from real clients."""
    return [
        bytes.fromhex(p.read_text().strip()) for p in sorted((GOLDEN / "batches").glob("*.hex"))
    ]


def built_batches() -> list[bytes]:
    """Batches the project builds: each codec, headers, transactional, control markers."""
    records = [
        (b"key", b"value", [("h", b"v"), ("n", None)], 1_700_000_000_000),
        (None, b"x" * 40, [], 1_700_000_000_005),
        (b"k2", None, [], 1_700_000_000_009),
    ]
    out = [bytes(build_record_batch(records, compression=c)) for c in Compression]
    out.append(
        bytes(
            build_record_batch(
                records[:1], producer_id=7, producer_epoch=1, base_sequence=0, is_transactional=True
            )
        )
    )
    for kind in (0, 1):
        out.append(
            bytes(
                build_control_batch(
                    kind, producer_id=7, producer_epoch=1, coordinator_epoch=3, timestamp_ms=1
                )
            )
        )
    return out


_SAMPLES: dict[str, Any] = {
    "bool": True,
    "int8": 1,
    "int16": 2,
    "uint16": 3,
    "int32": 4,
    "uint32": 5,
    "int64": 6,
    "float64": 1.5,
    "uuid": UUID(int=0x0123456789ABCDEF),
    "string": "ab",
    "bytes": b"xy",
}


def _sample(f: F, version: int) -> Any:
    if f.kind == "struct":
        assert f.struct is not None
        return filled(f.struct, version)
    if f.kind == "records":
        return built_batches()[0]
    return _SAMPLES[f.kind]


def filled(cls: type, version: int) -> Any:
    """An instance of ``cls`` with every field ``version`` carries set (arrays: one item)."""
    values: dict[str, Any] = {}
    for f in cls.SCHEMA:  # type: ignore[attr-defined]
        if not f.in_version(version):
            continue
        value = _sample(f, version)
        values[f.name] = [value] if f.array else value
    return cls(**values)

"""Shared helpers for the log tests (exposed as fixtures: importlib mode has no sys.path)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kbroker.log import LogConfig, PartitionLog
from kbroker.wire.records import iter_batches, make_batch

SMALL = LogConfig(segment_bytes=4096, index_interval_bytes=256, segment_index_bytes=4096)


@dataclass
class Helpers:
    """Batch builders and log inspectors."""

    @staticmethod
    def batch(n: int = 1, *, size: int = 20, ts: int = 1000, **kwargs: object) -> bytearray:
        return make_batch(
            [bytes([65 + i % 26]) * size for i in range(n)], timestamp_ms=ts, **kwargs
        )

    @staticmethod
    def all_batches(log: PartitionLog) -> list[tuple[int, int, bytes]]:
        """(base offset, last offset, bytes) of every batch, by reading the files."""
        out = []
        for seg in log.segments:
            with open(seg.log_path, "rb") as f:
                data = f.read()[: seg.size_bytes]
            out += [(v.base_offset, v.last_offset, bytes(v.buffer())) for v in iter_batches(data)]
        return out

    @staticmethod
    def read_all(log: PartitionLog, start: int | None = None) -> bytes:
        """Everything from ``start`` (default log start) by repeated reads."""
        offset = log.log_start_offset if start is None else start
        out = bytearray()
        while offset < log.log_end_offset:
            s = log.read(offset, 1 << 20)
            assert s.next_offset > offset
            out += s.records
            offset = s.next_offset
        return bytes(out)

    @staticmethod
    def files(directory: str | Path) -> list[str]:
        return sorted(os.listdir(directory))


@pytest.fixture
def h() -> Helpers:
    return Helpers()


@pytest.fixture
def open_log(tmp_path: Path) -> Iterator[Callable[..., PartitionLog]]:
    """Open (or reopen) the partition log at tmp_path/"t-0"; closes what it opened."""
    opened: list[PartitionLog] = []

    def _open(config: LogConfig = SMALL, **kwargs: object) -> PartitionLog:
        kwargs.setdefault("now_ms", 0)
        log = PartitionLog(str(tmp_path / "t-0"), config, **kwargs)  # type: ignore[arg-type]
        opened.append(log)
        return log

    yield _open
    for log in opened:
        for seg in log.segments:
            seg.close()

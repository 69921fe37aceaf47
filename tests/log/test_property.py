"""Property test: random append/roll/retention/DeleteRecords/reopen keep the invariants."""

from __future__ import annotations

import shutil
import tempfile

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from kbroker.log import LogConfig, PartitionLog
from kbroker.wire.records import iter_batches, make_batch

CFG = LogConfig(
    segment_bytes=1000, index_interval_bytes=90, retention_ms=-1, file_delete_delay_ms=0
)


def scan(log: PartitionLog) -> list[tuple[int, int, int, bytes]]:
    """(base, last, max_timestamp, bytes) of every batch, by reading the files."""
    out = []
    for seg in log.segments:
        with open(seg.log_path, "rb") as f:
            data = f.read()[: seg.size_bytes]
        out += [
            (v.base_offset, v.last_offset, v.max_timestamp, bytes(v.buffer()))
            for v in iter_batches(data)
        ]
    return out


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp()
        self.log = PartitionLog(self.dir, CFG, now_ms=0)
        self.expected_end = 0
        self.clock = 0
        self.n = 0

    def teardown(self) -> None:
        for seg in self.log.segments:
            seg.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(count=st.integers(1, 5), size=st.integers(0, 120), ts=st.integers(0, 10_000))
    def append(self, count: int, size: int, ts: int) -> None:
        self.n += 1
        r = self.log.append(
            make_batch([bytes([self.n % 256]) * size] * count, timestamp_ms=ts),
            leader_epoch=self.n // 7,
            now_ms=self.clock,
        )
        assert r.base_offset == self.expected_end and r.last_offset == r.base_offset + count - 1
        self.expected_end = r.last_offset + 1

    @rule()
    def roll(self) -> None:
        self.log.roll(self.clock)

    @rule(limit=st.integers(0, 3000))
    def retention_by_bytes(self, limit: int) -> None:
        self.log.update_config(LogConfig(**{**_fields(CFG), "retention_bytes": limit}))
        self.log.enforce_retention(self.clock)
        self.log.update_config(CFG)

    @rule(fraction=st.floats(0, 1))
    def delete_records(self, fraction: float) -> None:
        lo, hi = self.log.log_start_offset, self.log.high_watermark
        target = lo + int((hi - lo) * fraction)
        assert self.log.delete_records_before(target) == target
        self.log.enforce_retention(self.clock)

    @rule(clean=st.booleans())
    def reopen(self, clean: bool) -> None:
        start, rp = self.log.log_start_offset, self.log.recovery_point
        if clean:
            self.log.close()
        else:
            for seg in self.log.segments:
                seg.close()
        self.log = PartitionLog(
            self.dir,
            CFG,
            now_ms=self.clock,
            log_start_offset=start,
            recovery_point=rp,
            had_clean_shutdown=clean,
        )
        assert self.log.log_start_offset == start

    @precondition(lambda self: self.log.log_end_offset > self.log.log_start_offset)
    @rule(data=st.data())
    def lookups_agree_with_a_linear_scan(self, data: st.DataObject) -> None:
        batches = scan(self.log)
        start = self.log.log_start_offset
        offset = data.draw(st.integers(start, self.log.log_end_offset - 1))
        holder = next(b for b in batches if b[1] >= offset)
        s = self.log.read(offset, data.draw(st.integers(0, 2000)))
        assert bytes(s.records[: len(holder[3])]) == holder[3]
        ts = data.draw(st.integers(0, 10_001))
        expect = next(
            ((b[2], max(b[0], start)) for b in batches if b[1] >= start and b[2] >= ts), None
        )
        got = self.log.offset_for_timestamp(ts)
        assert (None if got is None else (got.timestamp, got.offset)) == expect

    @invariant()
    def offsets_are_contiguous_and_monotonic(self) -> None:
        log = self.log
        assert log.log_end_offset == self.expected_end
        assert log.log_start_offset <= log.log_end_offset
        batches = scan(log)
        for a, b in zip(batches, batches[1:]):
            assert b[0] == a[1] + 1
        if batches:
            assert batches[-1][1] + 1 == log.log_end_offset
            assert (
                batches[0][0] <= log.log_start_offset or log.log_start_offset == log.log_end_offset
            )
        bases = [s.base_offset for s in log.segments]
        assert bases == sorted(bases) and len(set(bases)) == len(bases)
        for seg, nxt in zip(log.segments, log.segments[1:]):
            assert seg.next_offset <= nxt.base_offset


def _fields(cfg: LogConfig) -> dict[str, object]:
    return {f: getattr(cfg, f) for f in cfg.__dataclass_fields__}


LogMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLogMachine = LogMachine.TestCase

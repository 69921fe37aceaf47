"""Hypothesis: random keyed records, tombstones, transactions, codecs, rolls, restarts
and cleaning passes; the cleaned log always reads as the model says."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from kbroker.log import LogConfig, PartitionLog
from kbroker.log.cleaner_manager import CleanerConfig, LogCleanerManager
from kbroker.log.offset_map import ENTRY_BYTES
from kbroker.wire.compression import Compression

_spec = importlib.util.spec_from_file_location(
    "compaction_model", Path(__file__).with_name("compaction_model.py")
)
assert _spec is not None and _spec.loader is not None
cm = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("compaction_model", cm)
_spec.loader.exec_module(cm)

RETENTION_MS = 100
CFG = LogConfig(
    segment_bytes=700,
    index_interval_bytes=90,
    cleanup_policy="compact",
    delete_retention_ms=RETENTION_MS,
    file_delete_delay_ms=0,
)
KEY = ("t", 0)
KEYS = st.sampled_from([b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h"])
VALUES = st.one_of(st.none(), st.binary(min_size=0, max_size=30))


class CleanerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = tempfile.mkdtemp()
        self.dir = f"{self.root}/t-0"
        self.log = PartitionLog(self.dir, CFG, now_ms=0)
        self.w = cm.Writer(self.log)
        # a small map: passes often end early (rounds)
        self.cleaner = LogCleanerManager(
            self.root, CleanerConfig(dedupe_buffer_size=ENTRY_BYTES * 6, io_buffer_load_factor=1.0)
        )
        # offset -> the time its tombstone was appended (removal must wait for retention)
        self.tombstone_time: dict[int, int] = {}

    def teardown(self) -> None:
        for seg in self.log.segments:
            seg.close()
        shutil.rmtree(self.root, ignore_errors=True)

    @rule(
        pairs=st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=4),
        codec=st.sampled_from(list(Compression)),
        mode=st.sampled_from(["plain", "plain", "txn", "idempotent"]),
    )
    def put(self, pairs, codec, mode) -> None:
        if mode == "idempotent" and self.w.current_txn >= 0:
            mode = "plain"
        base = self.w.put(pairs, codec=codec, mode=mode)
        for i, (_, v) in enumerate(pairs):
            if v is None:
                self.tombstone_time[base + i] = self.w.now_ms

    @precondition(lambda self: self.w.current_txn >= 0)
    @rule(commit=st.booleans())
    def end_txn(self, commit: bool) -> None:
        self.w.end_txn(commit)

    @rule(ms=st.integers(1, 80))
    def tick(self, ms: int) -> None:
        self.w.now_ms += ms

    @rule()
    def roll(self) -> None:
        self.log.roll(self.w.now_ms)

    @rule()
    def clean(self) -> None:
        # (sizes may even grow by a byte or two: a delete horizon changes the
        # timestamp deltas' varint widths)
        outcome = self.cleaner.clean_now(KEY, self.log, self.w.now_ms)
        if outcome is not None:
            assert outcome.end_offset <= self.log.active_segment.base_offset
            assert not self.cleaner.in_progress

    @rule(clean_close=st.booleans())
    def restart(self, clean_close: bool) -> None:
        if clean_close:
            self.log.close()
        else:
            self.log.flush()
            for seg in self.log.segments:
                seg.close()
        self.log = PartitionLog(
            self.dir,
            CFG,
            now_ms=self.w.now_ms,
            had_clean_shutdown=clean_close,
            recovery_point=0 if not clean_close else self.log.log_end_offset,
        )
        self.w.log = self.log

    @invariant()
    def reads_as_the_model(self) -> None:
        view = cm.read_committed(self.log)
        offsets = [o for o, _, _ in view]
        assert offsets == sorted(set(offsets))
        latest: dict[bytes, tuple[int, bytes | None]] = {}
        for offset, key, value in view:
            original = self.w.records[offset]
            assert (original.key, original.value) == (key, value)  # offsets kept
            assert key is not None
            latest[key] = (offset, value)
        want = self.w.expected_latest(self.log.last_stable_offset)
        assert set(latest) <= set(want)
        for key, rec in want.items():
            if key in latest:
                assert latest[key] == (rec.offset, rec.value)
            else:
                # only a tombstone may disappear, and not before delete.retention.ms
                assert rec.value is None
                assert self.w.now_ms >= self.tombstone_time[rec.offset] + RETENTION_MS


TestCleaner = CleanerMachine.TestCase
TestCleaner.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

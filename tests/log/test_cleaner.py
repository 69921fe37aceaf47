"""The log cleaner: latest value per key, tombstones, transactions, codecs, rounds."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from kbroker.log import LogConfig, cleaner_scan
from kbroker.log.cleaner import (
    CleanerBufferTooSmallError,
    cleanable_stats,
    plan_clean,
)
from kbroker.log.cleaner_io import Throttler
from kbroker.log.cleaner_manager import CLEANER_CHECKPOINT, CleanerConfig, LogCleanerManager
from kbroker.log.offset_map import ENTRY_BYTES, OffsetMap, key_digest
from kbroker.wire.compression import Compression
from kbroker.wire.records import decode_records

_spec = importlib.util.spec_from_file_location(
    "compaction_model", Path(__file__).with_name("compaction_model.py")
)
assert _spec is not None and _spec.loader is not None
cm = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("compaction_model", cm)
_spec.loader.exec_module(cm)

CFG = LogConfig(
    segment_bytes=1200,
    index_interval_bytes=100,
    cleanup_policy="compact",
    delete_retention_ms=1000,
    file_delete_delay_ms=0,
)
KEY = ("t", 0)


@pytest.fixture
def cleaner(tmp_path):
    return LogCleanerManager(str(tmp_path), CleanerConfig())


def latest_per_key(view):
    latest = {}
    for offset, key, value in view:
        latest[key] = (offset, value)
    return latest


def check_against_model(log, w, *, tombstones_may_go: bool = True):
    """The read_committed view keeps offsets and values, and its latest value per key
    is the model's (a key whose latest record is a tombstone may be gone)."""
    view = cm.read_committed(log)
    offsets = [o for o, _, _ in view]
    assert offsets == sorted(set(offsets))
    for offset, key, value in view:
        assert (w.records[offset].key, w.records[offset].value) == (key, value)
    got = latest_per_key(view)
    want = w.expected_latest(log.last_stable_offset)
    for key, rec in want.items():
        if key in got:
            assert got[key] == (rec.offset, rec.value), key
        else:
            assert tombstones_may_go and rec.value is None, key
    assert set(got) <= set(want)
    return got


def fill(w, n=200, keys=10, tomb_every=0):
    for i in range(n):
        value = None if tomb_every and i % tomb_every == tomb_every - 1 else b"v%05d" % i
        w.put([(b"k%d" % (i % keys), value)])
        w.now_ms += 1


def test_keeps_the_latest_value_per_key_at_its_offset(open_log, cleaner):
    log = open_log(CFG)
    w = cm.Writer(log)
    fill(w)
    before = len(log.segments)
    outcome = cleaner.clean_now(KEY, log, now_ms=w.now_ms)
    assert outcome is not None and outcome.end_offset == log.active_segment.base_offset
    got = check_against_model(log, w)
    assert len(got) == 10
    # only the active segment's records and one per key survive
    kept = [o for o, _, _ in cm.read_committed(log)]
    assert len([o for o in kept if o < outcome.end_offset]) <= 10
    assert log.size_bytes < before * CFG.segment_bytes / 4
    # reads through the rebuilt indexes find every retained record
    for offset in kept:
        s = log.read(offset, 1)
        assert s.first_offset <= offset < s.next_offset


def test_active_segment_is_never_cleaned(open_log, cleaner):
    log = open_log(CFG)
    w = cm.Writer(log)
    for i in range(5):
        w.put([(b"same", b"v%d" % i)])
    assert len(log.segments) == 1
    assert cleaner.clean_now(KEY, log, now_ms=10) is None
    assert len(cm.read_committed(log)) == 5


def test_checkpoint_moves_and_only_dirty_data_triggers(open_log, cleaner, tmp_path):
    log = open_log(CFG)
    w = cm.Writer(log)
    fill(w)
    stats = cleanable_stats(log, 0, w.now_ms)
    assert stats.dirty_ratio == 1.0 and stats.first_dirty_offset == 0
    cleaner.clean_now(KEY, log, now_ms=w.now_ms)
    end = cleaner.first_dirty_offset(KEY)
    assert end == log.active_segment.base_offset
    assert (tmp_path / CLEANER_CHECKPOINT).read_text().splitlines()[2] == f"t 0 {end}"
    assert plan_clean(log, end, w.now_ms) is None  # nothing dirty
    reopened = LogCleanerManager(str(tmp_path), CleanerConfig())
    assert reopened.first_dirty_offset(KEY) == end


def test_dirty_ratio_threshold(open_log):
    cfg = LogConfig(**{**_kw(CFG), "min_cleanable_dirty_ratio": 0.9})
    log = open_log(cfg)
    w = cm.Writer(log)
    fill(w)
    first = log.segments[3].base_offset
    stats = cleanable_stats(log, first, w.now_ms)
    assert 0 < stats.dirty_ratio < 0.9
    assert plan_clean(log, first, w.now_ms) is None
    assert plan_clean(log, first, w.now_ms, force=True) is not None


def _kw(cfg):
    return {f: getattr(cfg, f) for f in cfg.__dataclass_fields__}


def test_max_compaction_lag_forces_a_clean_below_the_ratio(open_log):
    cfg = LogConfig(**{**_kw(CFG), "min_cleanable_dirty_ratio": 0.99, "max_compaction_lag_ms": 50})
    log = open_log(cfg)
    w = cm.Writer(log)
    fill(w)
    first = log.segments[3].base_offset
    assert cleanable_stats(log, first, w.now_ms).must_clean is False or w.now_ms > 50
    assert plan_clean(log, first, now_ms=10_000) is not None
    assert cfg.max_segment_ms == 50


def test_min_compaction_lag_holds_back_young_segments(open_log, cleaner):
    cfg = LogConfig(**{**_kw(CFG), "min_compaction_lag_ms": 100})
    log = open_log(cfg)
    w = cm.Writer(log)
    fill(w, n=200)
    # records carry timestamps 0..199: at now=150 only segments whose newest record
    # is older than 50 may be cleaned
    outcome = cleaner.clean_now(KEY, log, now_ms=150)
    assert outcome is not None
    young = next(s for s in log.segments if s.max_timestamp > 50)
    assert outcome.end_offset <= young.base_offset
    check_against_model(log, w)


def test_tombstones_stay_until_the_delete_horizon_then_go(open_log, cleaner):
    log = open_log(CFG)
    w = cm.Writer(log)
    fill(w, n=200, keys=10, tomb_every=0)
    for k in range(5):
        w.put([(b"k%d" % k, None)])
    fill(w, n=60, keys=1)  # pushes the tombstones out of the active segment (key k0)
    cleaner.clean_now(KEY, log, now_ms=w.now_ms)
    got = check_against_model(log, w)
    tombstoned = [k for k, (_, v) in got.items() if v is None]
    assert sorted(tombstoned) == [b"k%d" % k for k in range(1, 5)]
    horizons = [v for v in cm.scan_batches(log) if v.has_delete_horizon]
    assert horizons and all(v.base_timestamp == w.now_ms + 1000 for v in horizons)
    # before the horizon a forced pass keeps them
    cleaner.clean_now(KEY, log, now_ms=w.now_ms + 999)
    assert sorted(
        k for k, (_, v) in latest_per_key(cm.read_committed(log)).items() if v is None
    ) == [b"k%d" % k for k in range(1, 5)]
    # after it, a later pass removes them
    manager_pick = cleaner.begin({KEY: log}, now_ms=w.now_ms + 1000)
    assert manager_pick is not None  # the quiet log is picked for its expired horizon
    cleaner.finish(KEY, log, cleaner.build(manager_pick[1]))
    got = check_against_model(log, w)
    assert not [k for k, (_, v) in got.items() if v is None]
    assert set(got) == {b"k0", b"k5", b"k6", b"k7", b"k8", b"k9"}
    # nothing removable is left: a quiet log is not picked again
    assert cleaner.begin({KEY: log}, now_ms=w.now_ms + 10**6) is None


def test_map_full_cleans_in_rounds(open_log, tmp_path):
    log = open_log(CFG)
    w = cm.Writer(log)
    fill(w, n=300, keys=40)
    small = LogCleanerManager(
        str(tmp_path), CleanerConfig(dedupe_buffer_size=ENTRY_BYTES * 20, io_buffer_load_factor=1.0)
    )
    ends = []
    for _ in range(20):
        outcome = small.clean_now(KEY, log, now_ms=w.now_ms)
        assert outcome is not None
        ends.append(outcome.end_offset)
        check_against_model(log, w)
        if outcome.end_offset == log.active_segment.base_offset:
            break
    assert len(ends) >= 2 and ends == sorted(ends)
    assert ends[-1] == log.active_segment.base_offset
    assert len(latest_per_key(cm.read_committed(log))) == 40


def test_a_batch_larger_than_the_map_is_an_error(open_log, tmp_path):
    log = open_log(CFG)
    w = cm.Writer(log)
    w.put([(b"a%d" % i, b"x") for i in range(30)])
    log.roll(0)
    w.put([(b"z", b"z")])
    tiny = LogCleanerManager(str(tmp_path), CleanerConfig(dedupe_buffer_size=ENTRY_BYTES * 10))
    with pytest.raises(CleanerBufferTooSmallError):
        tiny.clean_now(KEY, log, now_ms=0)
    assert not [n for n in os.listdir(log.directory) if n.endswith(".cleaned")]
    assert not tiny.in_progress


@pytest.mark.parametrize("codec", list(Compression))
def test_rewritten_batches_keep_codec_offsets_and_metadata(open_log, cleaner, codec):
    log = open_log(CFG)
    w = cm.Writer(log)
    for i in range(40):
        w.put([(b"k%d" % (j % 4), b"value-%d-%d" % (i, j)) for j in range(i % 3, 6)], codec=codec)
        w.now_ms += 1
    old = {v.base_offset: v for v in cm.scan_batches(log)}
    cleaner.clean_now(KEY, log, now_ms=w.now_ms)
    check_against_model(log, w)
    end = cleaner.first_dirty_offset(KEY)
    for v in cm.scan_batches(log):
        o = old[v.base_offset]
        assert v.is_valid()
        assert (v.last_offset_delta, v.compression, v.partition_leader_epoch) == (
            o.last_offset_delta,
            o.compression,
            o.partition_leader_epoch,
        )
        if v.base_offset < end:
            originals = {
                o.base_offset + r.offset_delta: o.base_timestamp + r.timestamp_delta
                for r in decode_records(o)
            }
            for r in decode_records(v):
                assert (
                    v.base_timestamp + r.timestamp_delta
                    == originals[v.base_offset + r.offset_delta]
                )


def test_records_without_a_key_are_removed(open_log, cleaner):
    log = open_log(CFG)
    w = cm.Writer(log)
    for i in range(100):
        w.put([(None if i % 2 else b"k", b"v%d" % i)])
    cleaner.clean_now(KEY, log, now_ms=0)
    end = cleaner.first_dirty_offset(KEY)
    assert all(k is not None for o, k, _ in cm.read_committed(log) if o < end)


def test_aborted_data_goes_and_markers_follow_after_the_horizon(open_log, cleaner):
    log = open_log(CFG)
    w = cm.Writer(log)
    w.put([(b"a", b"committed")], mode="txn")
    commit_at = w.end_txn(commit=True)
    w.put([(b"a", b"aborted"), (b"b", b"aborted")], mode="txn")
    abort_at = w.end_txn(commit=False)
    w.put([(b"c", b"later")], mode="txn")  # the producer's last data moves on
    w.end_txn(commit=True)
    fill(w, n=150, keys=3)  # other keys; pushes everything out of the active segment
    now = w.now_ms
    cleaner.clean_now(KEY, log, now_ms=now)
    got = check_against_model(log, w)
    assert got[b"a"][1] == b"committed" and b"b" not in got
    offsets = {v.base_offset for v in cm.scan_batches(log)}
    # the aborted batch is gone; both markers remain: the commit's data was seen, and
    # the abort's data was removed in this very pass
    assert abort_at - 2 not in offsets
    assert commit_at in offsets and abort_at in offsets
    # the next pass finds the abort marker alone and gives it a delete horizon; a
    # pass after that horizon removes it.  The commit marker stays with its data.
    cleaner.clean_now(KEY, log, now_ms=now + 1)
    marker = {v.base_offset: v for v in cm.scan_batches(log)}[abort_at]
    assert marker.has_delete_horizon and marker.base_timestamp == now + 1 + CFG.delete_retention_ms
    cleaner.clean_now(KEY, log, now_ms=now + 1000)
    assert abort_at in {v.base_offset for v in cm.scan_batches(log)}
    cleaner.clean_now(KEY, log, now_ms=now + 1001)
    offsets = {v.base_offset for v in cm.scan_batches(log)}
    assert abort_at not in offsets and commit_at in offsets
    check_against_model(log, w)
    # once the committed record is superseded, its marker goes the same way
    w.put([(b"a", b"newer")])
    fill(w, n=100, keys=3)
    for step in range(3):
        cleaner.clean_now(KEY, log, now_ms=w.now_ms + 3000 * (step + 1))
    assert commit_at not in {v.base_offset for v in cm.scan_batches(log)}
    assert latest_per_key(cm.read_committed(log))[b"a"][1] == b"newer"


def test_an_aborted_last_batch_of_a_live_producer_stays_empty(open_log, cleaner):
    log = open_log(CFG)
    w = cm.Writer(log)
    w.put([(b"a", b"aborted")], mode="txn")
    abort_at = w.end_txn(commit=False)
    fill(w, n=150, keys=3)
    for step in range(3):
        cleaner.clean_now(KEY, log, now_ms=w.now_ms + 3000 * step)
    batches = {v.base_offset: v for v in cm.scan_batches(log)}
    # Kafka keeps the producer's last batch (its sequence) and so the marker too
    assert batches[abort_at - 1].record_count == 0 and abort_at in batches
    assert b"a" not in latest_per_key(cm.read_committed(log))


def test_open_transaction_bounds_the_clean(open_log, cleaner):
    log = open_log(CFG)
    w = cm.Writer(log)
    fill(w, n=50, keys=2)
    first_open = w.put([(b"k0", b"in-txn")], mode="txn")
    fill(w, n=150, keys=2)
    assert log.last_stable_offset == first_open
    outcome = cleaner.clean_now(KEY, log, now_ms=w.now_ms)
    assert outcome is not None and outcome.end_offset <= first_open
    w.end_txn(commit=True)
    check_against_model(log, w)


def test_last_batch_of_an_idempotent_producer_is_kept_empty(open_log, cleaner):
    log = open_log(CFG)
    w = cm.Writer(log)
    last = w.put([(b"k", b"idempotent")], mode="idempotent")
    for i in range(80):
        w.put([(b"k", b"plain%d" % i)])
    cleaner.clean_now(KEY, log, now_ms=0)
    kept = [v for v in cm.scan_batches(log) if v.base_offset == last]
    assert len(kept) == 1 and kept[0].record_count == 0
    assert (kept[0].producer_id, kept[0].base_sequence) == (cm.IDEMPOTENT_PID, 0)
    log.close()
    reopened = type(log)(log.directory, CFG, now_ms=0, had_clean_shutdown=False)
    try:
        entry = reopened.producer_state.producers[cm.IDEMPOTENT_PID]
        assert entry.last_seq == 0
    finally:
        reopened.close()


def test_small_cleaned_segments_are_grouped(open_log, cleaner):
    log = open_log(CFG)
    w = cm.Writer(log)
    fill(w, n=400, keys=3)
    cleaner.clean_now(KEY, log, now_ms=w.now_ms)
    fill(w, n=100, keys=3)
    n_before = len(log.segments)
    cleaner.clean_now(KEY, log, now_ms=w.now_ms)
    assert len(log.segments) < n_before / 2
    for seg in log.segments[:-1]:
        assert seg.size_bytes <= CFG.segment_bytes
    check_against_model(log, w)


def test_cleaned_log_survives_restarts(open_log, cleaner):
    log = open_log(CFG)
    w = cm.Writer(log)
    fill(w, n=200, keys=7, tomb_every=9)
    cleaner.clean_now(KEY, log, now_ms=w.now_ms)
    view = cm.read_committed(log)
    log.close()
    log = open_log(CFG, had_clean_shutdown=True, recovery_point=log.log_end_offset)
    assert cm.read_committed(log) == view
    for seg in log.segments:
        seg.close()
    log = open_log(CFG, had_clean_shutdown=False, recovery_point=0)
    assert cm.read_committed(log) == view
    w.log = log
    w.put([(b"after", b"restart")])
    assert log.log_end_offset == max(w.records) + 1


def test_offset_map_capacity_and_latest():
    m = OffsetMap(ENTRY_BYTES * 10, load_factor=0.5)
    assert m.capacity == 5
    for i in range(5):
        m.put(key_digest(b"%d" % i), i)
    m.put(key_digest(b"0"), 9)
    assert m.get(key_digest(b"0")) == 9 and m.latest_offset == 9 and m.free == 0
    assert not m.has_room_for({key_digest(b"new")})
    with pytest.raises(OverflowError):
        m.put(key_digest(b"new"), 10)
    with pytest.raises(ValueError):
        OffsetMap(10)


def test_throttler_sleeps_to_the_rate():
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    t = Throttler(1000, clock=lambda: now[0], sleep=sleep)
    for _ in range(10):
        now[0] += 0.1
        t.maybe_throttle(500)  # 5000 B/s offered against 1000 B/s
    total_bytes = 5000
    assert now[0] >= total_bytes / 1000 * 0.8
    assert slept


def test_expired_producers_are_forgotten_and_their_last_batch_goes(open_log, cleaner):
    log = open_log(CFG)
    w = cm.Writer(log)
    last = w.put([(b"k", b"idempotent")], mode="idempotent")
    w.put([(b"t", b"open")], mode="txn")  # an open transaction never expires
    w.end_txn(commit=True)
    w.put([(b"t2", b"open")], mode="txn")
    assert log.remove_expired_producers(now_ms=99, expiration_ms=100) == 0
    assert log.remove_expired_producers(now_ms=100, expiration_ms=100) == 1
    assert set(log.producer_state.producers) == {cm.TXN_PID}
    w.end_txn(commit=True)
    for i in range(80):
        w.put([(b"k", b"plain%d" % i)])
    cleaner.clean_now(KEY, log, now_ms=200)
    assert last not in {v.base_offset for v in cm.scan_batches(log)}
    check_against_model(log, w)


def test_log_manager_expires_producers_at_its_interval(tmp_path):
    from kbroker.log import LogManager
    from kbroker.wire.records import make_batch

    manager = LogManager(
        str(tmp_path),
        CFG,
        0,
        producer_id_expiration_ms=1000,
        producer_id_expiration_check_interval_ms=5000,
    )
    manager.open_all()
    log = manager.create("t", 0)
    batch = make_batch([b"v"], [b"k"], producer_id=3, producer_epoch=0, base_sequence=0)
    log.append(batch, leader_epoch=0, now_ms=0)
    manager.run_periodic(4999)
    assert 3 in log.producer_state.producers
    manager.run_periodic(5000)
    assert 3 not in log.producer_state.producers
    manager.close()


def test_a_kept_batch_with_an_expired_horizon_does_not_call_for_more_passes(open_log, cleaner):
    log = open_log(CFG)
    w = cm.Writer(log)
    w.put([(b"x", None), (b"y", b"live")])
    fill(w, n=60, keys=2)
    cleaner.clean_now(KEY, log, now_ms=w.now_ms)
    assert cleaner.delete_horizons[KEY] == w.now_ms + CFG.delete_retention_ms
    picked = cleaner.begin({KEY: log}, now_ms=w.now_ms + CFG.delete_retention_ms)
    assert picked is not None
    cleaner.finish(KEY, log, cleaner.build(picked[1]))
    [batch] = [v for v in cm.scan_batches(log) if v.base_offset == 0]
    assert batch.has_delete_horizon and [r.key for r in decode_records(batch)] == [b"y"]
    assert cleaner.begin({KEY: log}, now_ms=w.now_ms + 10**6) is None


@pytest.mark.parametrize("codec", list(Compression))
def test_key_scan_agrees_with_the_records_codec(codec):
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from kbroker.log.cleaner import _scan
    from kbroker.wire.records import RecordBatchView, build_record_batch

    record = st.tuples(
        st.one_of(st.none(), st.binary(max_size=300)),
        st.one_of(st.none(), st.binary(max_size=300)),
        st.lists(st.tuples(st.text(max_size=5), st.one_of(st.none(), st.binary(max_size=9))), max_size=3),
        st.integers(0, 2**40),
    )

    @settings(max_examples=40, deadline=None)
    @given(st.lists(record, min_size=1, max_size=70))
    def check(items):
        view = RecordBatchView(build_record_batch(items, compression=codec))
        scanned = _scan(view)
        decoded = decode_records(view)
        assert list(zip(scanned.offsets, scanned.digests, scanned.tombstones, strict=True)) == [
            (r.offset_delta, None if r.key is None else key_digest(r.key), int(r.value is None))
            for r in decoded
        ]

    check()


def test_short_keys_are_their_own_digest():
    assert key_digest(b"k" * 16) == b"k" * 16
    long_key = b"k" * 17
    assert len(key_digest(long_key)) == 16 and key_digest(long_key) != long_key[:16]


def test_a_pass_is_held_to_io_max_bytes_per_second(open_log):
    """build_clean feeds every batch it reads to the throttler, which sleeps the pass
    down to the rate (an injected clock: each read costs 1 ms of "work")."""
    from kbroker.log.cleaner import build_clean
    from kbroker.log.swap import discard_cleaned

    log = open_log(CFG)
    w = cm.Writer(log)
    fill(w, n=300, keys=10)
    plan = plan_clean(log, 0, w.now_ms, force=True)
    assert plan is not None
    now = [0.0]
    slept: list[float] = []

    def clock() -> float:
        now[0] += 0.1
        return now[0]

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    rate = 200.0  # bytes/s: far below the ~700 B/s the fake work alone allows
    outcome = build_clean(plan, OffsetMap(1 << 20), Throttler(rate, clock=clock, sleep=sleep))
    assert outcome is not None
    for group in outcome.groups:
        discard_cleaned(log.directory, group.base_offset)
    throttled = 2 * sum(s.size_bytes for s in plan.segments)  # mapped, then copied
    assert outcome.stats.bytes_read == throttled / 2
    # only the last window (a few batches) is not slept for
    assert now[0] >= 0.9 * throttled / rate
    assert len(slept) >= 2


def test_retention_keeps_segments_being_replaced(open_log, cleaner):
    """Between begin_replace and end_replace (the file step runs on another thread)
    retention deletes no segment of the group; the swap then completes."""
    from dataclasses import replace

    log = open_log(replace(CFG, cleanup_policy="compact,delete", retention_ms=10))
    w = cm.Writer(log)
    # every record but the first stays (the cleaned segments have timestamps); that
    # one is updated later, so the first segment changes and is rewritten (an unchanged
    # one is not)
    fill(w, n=200, keys=200)
    w.put([(b"k0", b"again")])
    log.roll(w.now_ms)
    plan = plan_clean(log, 0, w.now_ms, force=True)
    assert plan is not None
    outcome = cleaner.build(plan)
    group = outcome.groups[0]
    pending = log.begin_replace(group.base_offset, group.end_offset, group.old_bases)
    assert pending is not None
    held = list(group.old_bases)
    log.enforce_retention(now_ms=10**9)  # every closed segment has expired
    assert [s.base_offset for s in log.segments][: len(held)] == held
    log.swap_files(pending)
    log.end_replace(pending)
    assert log.segments[0].base_offset == group.base_offset
    assert log.segments[0] is pending.cleaned
    assert log.enforce_retention(now_ms=10**9) > 0  # no longer held


def test_a_segment_emptied_by_cleaning_does_not_hold_back_time_retention(open_log, cleaner):
    """compact,delete: a pass that removes every record of the first segment leaves it
    empty, without a timestamp; time retention goes by its file's mtime (Kafka's
    largestTimestamp) instead of stopping there for good."""
    from dataclasses import replace

    log = open_log(replace(CFG, cleanup_policy="compact,delete", retention_ms=1000))
    w = cm.Writer(log)
    fill(w, n=200, keys=10)
    cleaner.clean_now(KEY, log, now_ms=w.now_ms)
    first = log.segments[0]
    assert first.size_bytes == 0 and first.max_timestamp == -1
    far_future_ms = 10**13  # later than any file's mtime
    assert log.enforce_retention(now_ms=far_future_ms) > 0
    assert log.segments[0] is not first


def test_a_segment_nothing_leaves_is_not_rewritten(open_log, cleaner):
    """A one-segment group whose batches all stay byte for byte is not written (Kafka
    rewrites it to the same bytes): no cleaned files, the segment files untouched, the
    checkpoint still moves to the end of the pass."""
    log = open_log(CFG)
    w = cm.Writer(log)
    fill(w, n=200, keys=200)  # every key unique: nothing to remove
    closed = log.segments[:-1]
    assert len(closed) > 1
    inodes = [os.stat(s.log_path).st_ino for s in closed]
    outcome = cleaner.clean_now(KEY, log, now_ms=w.now_ms)
    assert outcome is not None and outcome.groups == []
    assert outcome.end_offset == log.active_segment.base_offset
    assert cleaner.checkpoints[KEY] == outcome.end_offset
    assert [os.stat(s.log_path).st_ino for s in log.segments[:-1]] == inodes
    assert not [f for f in os.listdir(log.directory) if f.endswith(".cleaned")]
    assert len(check_against_model(log, w)) == 200


def test_a_change_mid_segment_copies_the_unchanged_prefix(open_log, cleaner):
    """The first changed batch of a one-segment group comes after batches that stay:
    they are copied from the segment (copy_file_range) and the result matches the
    model, records and positions alike (the offset index points at batch starts)."""
    log = open_log(CFG)
    w = cm.Writer(log)
    fill(w, n=200, keys=200)
    # a later update of a key in the middle of the first segment
    first = log.segments[0]
    mid_offset = (first.base_offset + log.segments[1].base_offset) // 2
    w.put([(b"k%d" % mid_offset, b"new")])
    log.roll(w.now_ms)
    outcome = cleaner.clean_now(KEY, log, now_ms=w.now_ms)
    assert outcome is not None and len(outcome.groups) == 1
    assert outcome.groups[0].base_offset == first.base_offset
    got = check_against_model(log, w)
    assert len(got) == 200
    seg = log.segments[0]
    for offset, position in zip(seg.index.keys, seg.index.values, strict=True):
        with open(seg.log_path, "rb") as f:
            f.seek(position)
            assert int.from_bytes(f.read(8), "big") == offset


@pytest.mark.skipif(not cleaner_scan.NATIVE, reason="the C extension is not built")
def test_the_c_offset_table_and_the_dict_clean_alike(open_log):
    """A pass with the C offset table writes the same cleaned files, byte for byte, as
    one with the dict fallback (overwrites, tombstones, keys past 16 bytes)."""
    from kbroker.log.cleaner import build_clean
    from kbroker.log.swap import discard_cleaned

    log = open_log(CFG)
    w = cm.Writer(log)
    for i in range(300):
        key = (b"key-%d" % (i % 37)) * (3 if i % 2 else 1)
        w.put([(key, None if i % 11 == 0 else b"v%d" % i)])
        w.now_ms += 1
    plan = plan_clean(log, 0, w.now_ms, force=True)
    assert plan is not None
    written = []
    for native in (False, True):
        outcome = build_clean(plan, OffsetMap(1 << 20, native=native))
        assert outcome is not None and outcome.groups
        files = {}
        for name in sorted(os.listdir(log.directory)):
            if name.endswith(".cleaned"):
                with open(os.path.join(log.directory, name), "rb") as f:
                    files[name] = f.read()
        for group in outcome.groups:
            discard_cleaned(log.directory, group.base_offset)
        written.append((outcome.end_offset, outcome.stats, files))
    assert written[0] == written[1]
    assert any(name.endswith(".log.cleaned") and data for name, data in written[0][2].items())

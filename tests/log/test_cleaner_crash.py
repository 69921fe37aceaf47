"""Crashes at every phase of the cleaner's segment swap (injected fault and SIGKILL)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from kbroker.log import LogConfig, PartitionLog
from kbroker.log.cleaner_manager import CleanerConfig, LogCleanerManager
from kbroker.log.swap import CLEANED_SUFFIX, SWAP_END_SUFFIX, SWAP_SUFFIX
from kbroker.wire.records import decode_records, iter_batches, make_batch

CFG = LogConfig(
    segment_bytes=1500,
    index_interval_bytes=100,
    cleanup_policy="compact",
    file_delete_delay_ms=0,
)
PHASES = ["cleaned", "swap", "deleted", "renamed", "final"]


class Crash(Exception):
    pass


def fill(directory: str) -> None:
    log = PartitionLog(directory, CFG, now_ms=0)
    for i in range(300):
        value = None if i % 11 == 10 else b"v%04d" % i
        batch = make_batch([value], [b"k%d" % (i % 9)], timestamp_ms=i)
        log.append(batch, leader_epoch=1, now_ms=i)
    log.close()


def records(log: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
    out = []
    for seg in log.segments:
        with open(seg.log_path, "rb") as f:
            data = f.read()[: seg.size_bytes]
        for v in iter_batches(data):
            out += [(v.base_offset + r.offset_delta, r.key, r.value) for r in decode_records(v)]
    return out


def reads(log: PartitionLog) -> list[int]:
    """Offsets reached through the log's own reads (indexes) from the start."""
    offset, seen = log.log_start_offset, []
    while offset < log.log_end_offset:
        s = log.read(offset, 1)
        for v in iter_batches(bytes(s.records)):
            seen.append(v.base_offset)
        offset = s.next_offset
    return seen


def crash(log: PartitionLog) -> None:
    for seg in log.segments:
        seg.close()


def expected_states(tmp_path: Path) -> tuple[list, list]:
    """(records before cleaning, records after a crash past the commit point).

    The fault fires in the first group's swap, so only that group (the first
    segment: segments are as large as segment.bytes, each is its own group) is
    cleaned; the ``.cleaned`` files of the later groups are discarded at load."""
    ref = str(tmp_path / "ref" / "t-0")
    fill(ref)
    log = PartitionLog(ref, CFG, now_ms=0, had_clean_shutdown=True, recovery_point=1 << 40)
    before = records(log)
    first_group_end = log.segments[1].base_offset
    LogCleanerManager(str(tmp_path / "ref"), CleanerConfig()).clean_now(("t", 0), log, 400)
    after = records(log)
    log.close()
    assert len(after) < len(before)
    first_swapped = [r for r in after if r[0] < first_group_end]
    first_swapped += [r for r in before if r[0] >= first_group_end]
    return before, first_swapped


def records_of_a_complete_clean(tmp_path: Path) -> list:
    ref = str(tmp_path / "ref2" / "t-0")
    fill(ref)
    log = PartitionLog(ref, CFG, now_ms=0, had_clean_shutdown=True, recovery_point=1 << 40)
    LogCleanerManager(str(tmp_path / "ref2"), CleanerConfig()).clean_now(("t", 0), log, 400)
    out = records(log)
    log.close()
    return out


def _batches(seg) -> list:
    with open(seg.log_path, "rb") as f:
        data = f.read()[: seg.size_bytes]
    return list(iter_batches(data))


def leftovers(directory: str) -> list[str]:
    return [
        n
        for n in os.listdir(directory)
        if n.endswith((CLEANED_SUFFIX, SWAP_SUFFIX, SWAP_END_SUFFIX, ".deleted"))
    ]


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("clean_shutdown_flag", [False, True])
def test_injected_crash_at_each_phase(tmp_path, phase, clean_shutdown_flag):
    before, after = expected_states(tmp_path)
    complete = records_of_a_complete_clean(tmp_path)
    directory = str(tmp_path / "data" / "t-0")
    fill(directory)
    log = PartitionLog(directory, CFG, now_ms=0, had_clean_shutdown=True, recovery_point=1 << 40)

    def fault(p: str) -> None:
        if p == phase:
            raise Crash(p)

    manager = LogCleanerManager(str(tmp_path / "data"), CleanerConfig())
    with pytest.raises(Crash):
        manager.clean_now(("t", 0), log, 400, fault=fault)
    crash(log)
    # a restart after the kill: the flag says whether the broker had stopped cleanly
    log = PartitionLog(
        directory, CFG, now_ms=0, had_clean_shutdown=clean_shutdown_flag, recovery_point=0
    )
    try:
        got = records(log)
        assert got == (before if phase == "cleaned" else after)
        assert log.load_report.completed_swaps == (1 if phase in ("swap", "deleted") else 0)
        assert not leftovers(directory)
        batch_offsets = [v.base_offset for s in log.segments for v in _batches(s)]
        assert reads(log) == batch_offsets
        # the log goes on, and a later clean reaches the uninterrupted result
        manager.clean_now(("t", 0), log, 400)
        assert records(log) == complete
    finally:
        log.close()


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from kbroker.log import LogConfig, PartitionLog
    from kbroker.log.cleaner_manager import CleanerConfig, LogCleanerManager
    cfg = LogConfig(segment_bytes=1500, index_interval_bytes=100, cleanup_policy="compact",
                    file_delete_delay_ms=0)
    data, phase = sys.argv[1], sys.argv[2]
    log = PartitionLog(os.path.join(data, "t-0"), cfg, now_ms=0, had_clean_shutdown=True,
                       recovery_point=1 << 40)
    def fault(p):
        if p == phase:
            os.kill(os.getpid(), signal.SIGKILL)
    LogCleanerManager(data, CleanerConfig()).clean_now(("t", 0), log, 400, fault=fault)
    print("finished", flush=True)
    """
)


@pytest.mark.parametrize("phase", PHASES)
def test_sigkill_at_each_phase(tmp_path, phase):
    before, after = expected_states(tmp_path)
    data = tmp_path / "data"
    fill(str(data / "t-0"))
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(data), phase],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    log = PartitionLog(str(data / "t-0"), CFG, now_ms=0, recovery_point=0)
    try:
        assert records(log) == (before if phase == "cleaned" else after)
        assert not leftovers(str(data / "t-0"))
    finally:
        log.close()
    shutil.rmtree(data)

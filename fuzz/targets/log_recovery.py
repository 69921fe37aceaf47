"""Log recovery from arbitrary partition-directory files, then reads and an append.

Input: ``flags, log_start_offset``, then entries ``kind(1) base(1) length(2) bytes``;
each entry becomes a file of a fresh partition directory (kind picks the suffix below,
``base`` the 20-digit base offset in its name).  ``flags`` bit 0 says whether the last
stop was clean; bits 1-7 are the recovery point.

Property, opening ``PartitionLog`` over those files:

* opening never raises: whatever the bytes, recovery truncates what it cannot trust;
* with an unclean stop and recovery point 0 every segment is rescanned, and then every
  batch a read returns has a valid CRC-32C, offsets only grow and reads make progress;
* after a clean stop (segments trusted, as Kafka trusts them) reads and lookups raise
  nothing but ``LogError`` (which the handlers map to Kafka error codes) or
  ``CorruptRecordBatch``;
* after a full rescan the recovered log takes an append, reads it back, and a second
  unclean open truncates nothing and ends at the same offset (recovery is idempotent).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import tempfile

from kbroker.log import LogConfig, PartitionLog
from kbroker.log.checkpoints import LeaderEpochCache
from kbroker.log.errors import LogError
from kbroker.log.results import AppendOrigin
from kbroker.wire.exceptions import DecodeError
from kbroker.wire.records import (
    ControlRecordType,
    build_control_batch,
    iter_batches,
    make_batch,
)

from fuzz.seeds import golden_batches

SUFFIXES = (
    ".log",
    ".index",
    ".timeindex",
    ".txnindex",
    ".snapshot",
    LeaderEpochCache.FILE_NAME,  # no base offset in the name
    ".log.swap",
    ".log.cleaned",
    ".log.deleted",
    ".index.tmp",
)
CONFIG = LogConfig(segment_bytes=2048, index_interval_bytes=128, segment_index_bytes=4096)
NOW_MS = 1_700_000_000_000
READ_BYTES = 1024
_ENTRY = struct.Struct(">BBH")
# /dev/shm keeps the per-input files in memory (fsync is free there) where it exists.
_TMP_ROOT = "/dev/shm" if os.path.isdir("/dev/shm") else None


def _file_name(kind: int, base: int) -> str:
    suffix = SUFFIXES[kind % len(SUFFIXES)]
    if suffix == LeaderEpochCache.FILE_NAME:
        return suffix
    return f"{base:020d}{suffix}"


def unpack(data: bytes) -> tuple[bool, int, int, dict[str, bytes]]:
    """(clean stop, recovery point, log start offset, {file name: bytes})."""
    if len(data) < 2:
        return False, 0, 0, {}
    files: dict[str, bytes] = {}
    pos = 2
    while len(data) - pos >= _ENTRY.size:
        kind, base, length = _ENTRY.unpack_from(data, pos)
        pos += _ENTRY.size
        files[_file_name(kind, base)] = data[pos : pos + length]
        pos += length
    return bool(data[0] & 1), data[0] >> 1, data[1], files


def pack(clean: bool, recovery_point: int, log_start_offset: int, files: dict[str, bytes]) -> bytes:
    out = bytearray([(recovery_point << 1) | int(clean), log_start_offset])
    for name, body in sorted(files.items()):
        if name == LeaderEpochCache.FILE_NAME:
            kind, base = SUFFIXES.index(name), 0
        else:
            stem, _, _ = name.partition(".")
            kind, base = SUFFIXES.index(name[len(stem) :]), int(stem)
        out += _ENTRY.pack(kind, base, len(body)) + body
    return bytes(out)


def prepare() -> None:
    pass


def _read_all(log: PartitionLog, *, check_crc: bool) -> int:
    """Read from the log start to the end; return how many batches came back."""
    offset = log.log_start_offset
    batches = 0
    previous_next = -1
    while offset < log.log_end_offset:
        fetched = log.read(offset, READ_BYTES)
        if not fetched.records:
            break
        assert fetched.next_offset > offset, f"a read at {offset} made no progress"
        for view in iter_batches(fetched.records):
            if check_crc:
                assert view.is_valid(), f"recovered batch at {view.base_offset} fails its CRC"
                assert view.base_offset >= previous_next, "offsets went backwards"
            previous_next = view.next_offset
            batches += 1
        offset = fetched.next_offset
    return batches


def _lookups(log: PartitionLog) -> None:
    for ts in (-1, -2, -3, 0, NOW_MS):
        log.offset_for_timestamp(ts)
    log.aborted_transactions(log.log_start_offset, log.log_end_offset)
    log.active_producers()
    log.end_offset_for_epoch(max(log.latest_epoch, 0))


def _check(directory: str, clean: bool, recovery_point: int, log_start_offset: int) -> None:
    full_rescan = not clean and recovery_point == 0
    log = PartitionLog(
        directory,
        CONFIG,
        now_ms=NOW_MS,
        log_start_offset=log_start_offset,
        recovery_point=recovery_point,
        had_clean_shutdown=clean,
    )
    try:
        assert 0 <= log.log_start_offset <= log.log_end_offset, "start offset past the end"
        if not full_rescan:
            try:
                _read_all(log, check_crc=False)
                _lookups(log)
            except (LogError, DecodeError):
                pass
            return
        _read_all(log, check_crc=True)
        _lookups(log)
        end = log.log_end_offset
        result = log.append(
            make_batch([b"after recovery"]), leader_epoch=log.latest_epoch, now_ms=NOW_MS
        )
        assert result.base_offset == end, (
            f"append after recovery at {result.base_offset}, not {end}"
        )
        assert log.read(end, READ_BYTES).records, "the appended batch cannot be read back"
        end = log.log_end_offset
        start = log.log_start_offset
    finally:
        log.close(clean=False)
    again = PartitionLog(
        directory, CONFIG, now_ms=NOW_MS, log_start_offset=start, had_clean_shutdown=False
    )
    try:
        assert again.load_report.truncated_bytes == 0, "a second recovery truncated more"
        assert again.log_end_offset == end, "a second recovery moved the log end"
    finally:
        again.close(clean=False)


def test_one_input(data: bytes) -> None:
    clean, recovery_point, log_start_offset, files = unpack(data)
    directory = tempfile.mkdtemp(prefix="kbroker-fuzz-log-", dir=_TMP_ROOT)
    try:
        for name, body in files.items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(body)
        _check(directory, clean, recovery_point, log_start_offset)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _real_log_files() -> list[dict[str, bytes]]:
    """Partition directories the log itself writes: golden batches, an idempotent and a
    transactional producer, an aborted and a committed transaction, several segments."""
    variants = []
    directory = tempfile.mkdtemp(prefix="kbroker-fuzz-seed-", dir=_TMP_ROOT)
    try:
        log = PartitionLog(directory, CONFIG, now_ms=NOW_MS)
        for i, batch in enumerate(golden_batches()):
            with contextlib.suppress(LogError):  # some share a producer id and sequence
                log.append(batch, leader_epoch=i // 2, now_ms=NOW_MS)
        for seq in range(3):
            log.append(
                make_batch([b"i"] * 2, producer_id=5, producer_epoch=0, base_sequence=2 * seq),
                leader_epoch=3,
                now_ms=NOW_MS,
            )
        for seq, kind in enumerate((ControlRecordType.ABORT, ControlRecordType.COMMIT)):
            log.append(
                make_batch(
                    [b"t"],
                    producer_id=9,
                    producer_epoch=0,
                    base_sequence=seq,
                    is_transactional=True,
                ),
                leader_epoch=3,
                now_ms=NOW_MS,
            )
            log.append(
                build_control_batch(
                    kind, producer_id=9, producer_epoch=0, coordinator_epoch=1, timestamp_ms=NOW_MS
                ),
                leader_epoch=3,
                now_ms=NOW_MS,
                origin=AppendOrigin.COORDINATOR,
            )
        log.close(clean=True)
        files = {}
        for name in os.listdir(directory):
            with open(os.path.join(directory, name), "rb") as f:
                files[name] = f.read()
        variants.append(files)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    one_segment = {n: b for n, b in files.items() if n.startswith("0" * 20)}
    variants.append(one_segment)
    return variants


def seeds() -> list[bytes]:
    out = []
    for files in _real_log_files():
        for clean, recovery_point in ((False, 0), (True, 0), (False, 5)):
            out.append(pack(clean, recovery_point, 0, files))
        torn = dict(files)
        last_log = max(n for n in files if n.endswith(".log"))
        torn[last_log] = files[last_log][:-7]
        out.append(pack(False, 0, 0, torn))
        out.append(pack(False, 0, 3, files))
    return out

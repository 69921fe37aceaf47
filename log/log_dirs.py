"""Several log directories: placement, directory ids, and crash-safe partition moves.

Theory of operation
-------------------
Each log directory holds ``meta.properties`` with a ``directory.id`` (a random UUID
in Kafka's base64 form, KIP-858), written once and kept.  A new partition goes to
the directory holding the fewest partitions (Kafka's rule; ties go to the directory
listed first).  Where a partition lives is simply where its directory is: a restart
finds it there again.

Moving a partition (AlterReplicaLogDirs) follows Kafka's "future replica" shape, in
phases, each crash-safe:

=================  ==================================================================
phase              what a crash (SIGKILL) here leaves, and what start-up does
=================  ==================================================================
COPY               ``<dest>/<topic>-<p>.<hex>-future`` partly written: start-up
                   discards it (roll back); the source is untouched and authoritative.
SWITCH             the future directory, complete and fsynced with a ``.kbroker_moved``
                   record (log start offset, recovery point), is renamed to
                   ``<dest>/<topic>-<p>`` (one atomic rename, directory fsynced).  From
                   here the destination is authoritative: if the source still exists,
                   start-up deletes it (the record tells which copy is the new one).
RETIRE             the source is renamed to ``*.<hex>-delete`` and removed; the record
                   is dropped once both directories' checkpoints name the new place.
=================  ==================================================================

Never both copies live: before the rename only the source is opened, after it only
the destination.  The copy is finished with the source log closed (flushed, producer
state snapshotted), in one synchronous step of its owner, so no append can land
between the copy and the switch: no record is lost, reordered or duplicated.

To keep that step short, ``precopy`` first copies the sealed segments into the future
directory on a worker thread while the log stays open and keeps taking appends (a
sealed segment's files only change by being replaced or deleted: retention, the
cleaner).  The final step then copies only what is not already there unchanged: the
files whose (inode, size, mtime) differ from when they were pre-copied, the segments
from the one active when the pre-copy began, and every non-segment file (producer
snapshots, the leader-epoch checkpoint); files gone from the source are dropped.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from kbroker.log.checkpoints import fsync_directory, write_atomically

META_PROPERTIES = "meta.properties"
FUTURE_DIR_SUFFIX = "-future"
# Written inside a moved partition's directory before the switch; names the offsets
# the checkpoints of the destination directory do not hold yet.
MOVED_RECORD = ".kbroker_moved"
# Copy buffer for the segment files of a move (large enough to keep syscalls few).
COPY_CHUNK_BYTES = 1 << 20


class MovePhase(Enum):
    COPY = "copy"
    SWITCH = "switch"
    RETIRE = "retire"


# The phases a move passes through, in order (asserted by move_partition_files).
MOVE_TRANSITIONS: dict[MovePhase | None, MovePhase | None] = {
    None: MovePhase.COPY,
    MovePhase.COPY: MovePhase.SWITCH,
    MovePhase.SWITCH: MovePhase.RETIRE,
    MovePhase.RETIRE: None,
}

# A test hook: called as each phase begins (raising there simulates a crash).
PhaseHook = Callable[[MovePhase], None]

_SEALABLE = re.compile(r"^(\d{20})\.(log|index|timeindex|txnindex)$")


def _stat_key(path: str) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


@dataclass
class Precopy:
    """What ``precopy`` put in a future directory (read by the final step)."""

    future: str
    active_base_offset: int
    copied: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    # Base offset of the latest segment pre-copied (DescribeLogDirs' lag: an upper bound).
    copied_up_to_offset: int = 0
    copied_bytes: int = 0


def new_future_dir(source: str, dest_dir: str) -> str:
    name = os.path.basename(source)
    return os.path.join(dest_dir, f"{name}.{uuid.uuid4().hex}{FUTURE_DIR_SUFFIX}")


def precopy(source: str, pre: Precopy) -> None:
    """Copy the sealed segments of ``source`` (base below ``pre.active_base_offset``)
    into ``pre.future`` (thread-safe with respect to the log's owner: see the module
    docstring).  A file that vanishes or changes meanwhile is left for the final step."""
    os.makedirs(pre.future, exist_ok=True)
    names = sorted(n for n in os.listdir(source) if (m := _SEALABLE.match(n)) and int(m.group(1)) < pre.active_base_offset)
    for name in names:
        src = os.path.join(source, name)
        try:
            before = _stat_key(src)
            _copy_file(src, os.path.join(pre.future, name))
            if _stat_key(src) == before:
                pre.copied[name] = before
                pre.copied_bytes += before[1]
        except FileNotFoundError:
            continue
        pre.copied_up_to_offset = int(name[:20])


def directory_id(log_dir: str) -> str:
    """The log directory's id from its meta.properties, created on first use."""
    path = os.path.join(log_dir, META_PROPERTIES)
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                name, eq, value = line.strip().partition("=")
                if eq and name.strip() == "directory.id":
                    return value.strip()
    except FileNotFoundError:
        pass
    dir_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if os.path.exists(path):  # a broker meta.properties without a directory id
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if text and not text.endswith("\n"):
            text += "\n"
    else:
        text = "version=1\n"
    write_atomically(path, f"{text}directory.id={dir_id}\n".encode())
    return dir_id


def least_loaded(log_dirs: list[str], counts: dict[str, int]) -> str:
    """The directory with the fewest partitions (first listed on a tie)."""
    return min(log_dirs, key=lambda d: (counts.get(d, 0), log_dirs.index(d)))


def is_future_dir(name: str) -> bool:
    return name.endswith(FUTURE_DIR_SUFFIX)


def read_moved_record(partition_dir: str) -> tuple[int, int] | None:
    """(log_start_offset, recovery_point) of a move's record, or None if absent."""
    try:
        with open(os.path.join(partition_dir, MOVED_RECORD), encoding="ascii") as f:
            start, recovery = f.read().split()
        return int(start), int(recovery)
    except (FileNotFoundError, ValueError):
        return None


def drop_moved_record(partition_dir: str) -> None:
    try:
        os.unlink(os.path.join(partition_dir, MOVED_RECORD))
    except FileNotFoundError:
        return
    fsync_directory(partition_dir)


def _copy_file(src: str, dst: str) -> None:
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(COPY_CHUNK_BYTES):
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())


def move_partition_files(
    source: str,
    dest_dir: str,
    *,
    log_start_offset: int,
    recovery_point: int,
    hook: PhaseHook | None = None,
    pre: Precopy | None = None,
) -> tuple[str, bool]:
    """Move the (closed) partition directory ``source`` into ``dest_dir`` crash-safely
    (see the module docstring); returns (the new partition directory, whether the source is
    gone).  The caller keeps the moved record until its checkpoints are written and the
    source is gone, then drops it.  An OSError before the switch leaves the source alone
    and authoritative; the switch itself is one rename."""
    name = os.path.basename(source)
    phase: MovePhase | None = None

    def advance(to: MovePhase) -> None:
        nonlocal phase
        assert MOVE_TRANSITIONS[phase] is to, f"move phase {phase} -> {to}"
        phase = to
        if hook is not None:
            hook(to)

    advance(MovePhase.COPY)
    future = pre.future if pre is not None else new_future_dir(source, dest_dir)
    try:
        os.makedirs(future, exist_ok=pre is not None)
        present = {e for e in os.listdir(source) if os.path.isfile(os.path.join(source, e))}
        present.discard(MOVED_RECORD)
        for entry in os.listdir(future):
            if entry not in present:
                os.unlink(os.path.join(future, entry))  # gone from the source meanwhile
        for entry in sorted(present):
            path = os.path.join(source, entry)
            if pre is not None and pre.copied.get(entry) == _stat_key(path):
                m = _SEALABLE.match(entry)
                if m and int(m.group(1)) < pre.active_base_offset:
                    continue  # pre-copied and unchanged since
            _copy_file(path, os.path.join(future, entry))
        record = f"{log_start_offset} {recovery_point}\n".encode()
        write_atomically(os.path.join(future, MOVED_RECORD), record)
        fsync_directory(future)
        fsync_directory(dest_dir)
    except OSError:
        shutil.rmtree(future, ignore_errors=True)  # roll back: the source is whole
        raise
    advance(MovePhase.SWITCH)
    target = os.path.join(dest_dir, name)
    os.rename(future, target)
    fsync_directory(dest_dir)
    advance(MovePhase.RETIRE)
    try:
        doomed = f"{source}.{uuid.uuid4().hex}-delete"
        os.rename(source, doomed)
        fsync_directory(os.path.dirname(source))
    except OSError:
        return target, False  # the moved record stays: start-up removes the source
    shutil.rmtree(doomed, ignore_errors=True)
    return target, True

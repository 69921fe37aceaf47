"""Several log directories: placement, persistence, directory ids, partition moves and
their crash safety (SIGKILL of a real process at each phase), storage-error isolation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from kbroker.log import LogConfig, LogManager
from kbroker.log.errors import LogStorageError, UnknownPartitionError
from kbroker.log.log_dirs import MOVE_TRANSITIONS, MOVED_RECORD, MovePhase, directory_id, precopy

CFG = LogConfig(segment_bytes=3000, index_interval_bytes=200)


def dirs(tmp_path: Path, n: int = 2) -> list[str]:
    return [str(tmp_path / f"d{i}") for i in range(n)]


def manager(log_dirs: list[str]) -> LogManager:
    m = LogManager(log_dirs[0], CFG, 0, log_dirs=log_dirs)
    m.open_all()
    return m


def fill(m: LogManager, h, topic: str, partition: int, batches: int) -> list[bytes]:
    log = m.get(topic, partition)
    assert log is not None
    sent = []
    for i in range(batches):
        batch = h.batch(3, size=40 + i % 7)
        log.append(batch, leader_epoch=0, now_ms=0)
        sent.append(bytes(batch))
    return sent


def filled_partition(tmp_path: Path, h, batches: int) -> tuple[list[str], LogManager]:
    """Two log dirs and their manager, with partition t-0 (in the first) holding ``batches``
    batches."""
    d = dirs(tmp_path)
    m = manager(d)
    m.create("t", 0)
    fill(m, h, "t", 0, batches)
    return d, m


def values(m: LogManager, h, topic: str, partition: int) -> list[tuple[int, int]]:
    log = m.get(topic, partition)
    assert log is not None
    return [(base, last) for base, last, _ in h.all_batches(log)]


def test_partitions_go_to_the_least_loaded_dir_and_stay_there(tmp_path, h):
    d = dirs(tmp_path, 3)
    m = manager(d)
    m.create_many("a", range(4))  # d0 d1 d2 d0
    m.create("b", 0)  # d1 (d0 has 2)
    assert [m.dir_of("a", p) for p in range(4)] == [d[0], d[1], d[2], d[0]]
    assert m.dir_of("b", 0) == d[1]
    assert m.partition_counts() == {d[0]: 2, d[1]: 2, d[2]: 1}
    fill(m, h, "a", 1, 5)
    ids = dict(m.directory_ids)
    assert len(set(ids.values())) == 3
    m.close()
    m = manager(d)
    assert [m.dir_of("a", p) for p in range(4)] == [d[0], d[1], d[2], d[0]]
    assert m.get("a", 1).log_end_offset == 15
    assert m.directory_ids == ids  # meta.properties keeps each id
    assert os.path.isdir(os.path.join(d[1], "a-1"))
    m.close()


def test_directory_id_is_added_to_an_existing_meta_properties(tmp_path):
    (tmp_path / "meta.properties").write_text("version=1\ncluster.id=abc\nnode.id=1\n")
    dir_id = directory_id(str(tmp_path))
    text = (tmp_path / "meta.properties").read_text()
    assert "cluster.id=abc" in text and f"directory.id={dir_id}" in text
    assert directory_id(str(tmp_path)) == dir_id


def test_checkpoints_are_kept_per_directory(tmp_path, h):
    d = dirs(tmp_path)
    m = manager(d)
    m.create_many("t", range(2))
    fill(m, h, "t", 0, 3)
    fill(m, h, "t", 1, 4)
    m.delete_records("t", 1, 5)
    m.close()
    assert "t 0" in (Path(d[0]) / "log-start-offset-checkpoint").read_text()
    assert "t 1 5" in (Path(d[1]) / "log-start-offset-checkpoint").read_text()
    assert "t 1" not in (Path(d[0]) / "log-start-offset-checkpoint").read_text()
    m = manager(d)
    assert m.get("t", 1).log_start_offset == 5
    m.close()


def test_a_duplicate_without_a_move_record_refuses_to_start(tmp_path):
    d = dirs(tmp_path)
    for x in d:
        os.makedirs(os.path.join(x, "t-0"))
    with pytest.raises(LogStorageError, match="several log directories"):
        manager(d)


def test_move_keeps_every_record_in_order_and_appends_continue(tmp_path, h):
    d, m = filled_partition(tmp_path, h, 40)  # several segments, in d0
    log = m.get("t", 0)
    assert len(log.segments) > 2
    m.delete_records("t", 0, 7)
    before = values(m, h, "t", 0)
    assert m.move_partition("t", 0, d[1])
    assert m.dir_of("t", 0) == d[1]
    assert not os.path.exists(os.path.join(d[0], "t-0"))
    assert not os.path.exists(os.path.join(d[1], "t-0", MOVED_RECORD))
    assert values(m, h, "t", 0) == before
    assert m.get("t", 0).log_start_offset == 7
    assert m.get("t", 0).append(h.batch(2), leader_epoch=0, now_ms=0).base_offset == 120
    assert not m.move_partition("t", 0, d[1])  # already there: nothing to do
    m.close()
    m = manager(d)
    assert m.dir_of("t", 0) == d[1]
    assert values(m, h, "t", 0) == [*before, (120, 121)]
    assert m.get("t", 0).log_start_offset == 7
    m.close()


def test_a_precopied_move_sees_appends_rolls_and_deletions_made_meanwhile(tmp_path, h):
    d, m = filled_partition(tmp_path, h, 40)
    log = m.get("t", 0)
    pre = m.begin_move("t", 0, d[1])
    assert pre is not None and m.begin_move("t", 0, d[1]) is None  # one move at a time
    precopy(log.directory, pre)
    assert pre.copied and all(int(name[:20]) < pre.active_base_offset for name in pre.copied)
    # Meanwhile: more appends (rolling new segments) and old segments deleted.
    fill(m, h, "t", 0, 40)
    m.delete_records("t", 0, 60)
    log.enforce_retention(0)
    log.delete_pending_files(None)
    before = values(m, h, "t", 0)
    assert m.move_partition("t", 0, d[1], pre=pre)
    m.end_move("t", 0)
    assert values(m, h, "t", 0) == before
    moved = sorted(os.listdir(os.path.join(d[1], "t-0")))
    assert not [n for n in moved if n.endswith(".log") and int(n[:20]) < before[0][0]]
    m.close()
    m = manager(d)
    assert values(m, h, "t", 0) == before
    assert m.get("t", 0).log_start_offset == 60
    m.close()


def test_an_abandoned_move_leaves_no_future_dir(tmp_path, h):
    d, m = filled_partition(tmp_path, h, 20)
    pre = m.begin_move("t", 0, d[1])
    assert pre is not None
    precopy(m.get("t", 0).directory, pre)
    assert os.path.isdir(pre.future)
    m.end_move("t", 0)
    assert not os.path.exists(pre.future) and m.dir_of("t", 0) == d[0]
    m.close()


def test_move_rejects_unknown_dirs_and_partitions(tmp_path):
    d = dirs(tmp_path)
    m = manager(d)
    m.create("t", 0)
    with pytest.raises(ValueError):
        m.move_partition("t", 0, str(tmp_path / "elsewhere"))
    with pytest.raises(UnknownPartitionError):
        m.move_partition("nope", 0, d[1])
    m.close()


def test_move_phases_are_a_chain():
    order, phase = [], None
    while (phase := MOVE_TRANSITIONS[phase]) is not None:
        order.append(phase)
    assert order == [MovePhase.COPY, MovePhase.SWITCH, MovePhase.RETIRE]


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import kbroker.log.log_dirs as log_dirs
    import kbroker.log.manager as manager_module
    from kbroker.log import LogConfig, LogManager
    from kbroker.wire.records import make_batch

    d0, d1, phase = sys.argv[1], sys.argv[2], sys.argv[3]
    m = LogManager(d0, LogConfig(segment_bytes=3000, index_interval_bytes=200), 0, log_dirs=[d0, d1])
    m.open_all()
    m.create("t", 0)
    log = m.get("t", 0)
    for i in range(40):
        log.append(make_batch([b"v%d-%d" % (i, j) for j in range(3)], timestamp_ms=1), leader_epoch=0, now_ms=0)
    m.delete_records("t", 0, 4)
    print(log.log_end_offset, flush=True)

    def die(*_):
        os.kill(os.getpid(), signal.SIGKILL)

    if phase == "copy-midway":
        real, copied = log_dirs._copy_file, []
        def copy_then_die(src, dst):
            real(src, dst)
            copied.append(src)
            if len(copied) == 2:
                die()
        log_dirs._copy_file = copy_then_die
        hook = None
    elif phase == "after-record-kept":  # finished, but the moved record not dropped yet
        manager_module.drop_moved_record = die
        hook = None
    else:
        hook = lambda p: die() if p.value == phase else None
    m.move_partition("t", 0, d1, hook)
    print("moved", flush=True)
    """
)


@pytest.mark.parametrize(
    ("phase", "lands_in"),
    [
        ("copy", 0),
        ("copy-midway", 0),
        ("switch", 0),
        ("retire", 1),
        ("after-record-kept", 1),
    ],
)
def test_sigkill_at_each_move_phase_leaves_one_whole_copy(tmp_path, h, phase, lands_in):
    d = dirs(tmp_path)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, d[0], d[1], phase], capture_output=True, text=True, timeout=120
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    end = int(child.stdout.split()[0])
    assert end == 120
    m = manager(d)
    assert m.dir_of("t", 0) == d[lands_in]
    assert not os.path.exists(os.path.join(d[1 - lands_in], "t-0"))
    for x in d:
        assert not [n for n in os.listdir(x) if n.endswith(("-future", "-delete"))]
    log = m.get("t", 0)
    assert (log.log_start_offset, log.log_end_offset) == (4, end)
    assert [b for b, _, _ in h.all_batches(log)] == list(range(0, 120, 3))
    assert log.append(h.batch(1), leader_epoch=0, now_ms=0).base_offset == end
    m.close()
    m = manager(d)  # and the outcome is stable
    assert m.dir_of("t", 0) == d[lands_in]
    assert not os.path.exists(os.path.join(d[lands_in], "t-0", MOVED_RECORD))
    assert m.get("t", 0).log_end_offset == end + 1
    m.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (the tests run as root here and in CI)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_log_dir_does_not_stop_the_other(small_disk, tmp_path, h):
    d = [str(small_disk), str(tmp_path / "roomy")]
    reserve = small_disk / "reserve"
    reserve.write_bytes(b"\0" * 32768)  # deleted below: "space returns"
    m = manager(d)
    m.create_many("t", range(2))
    full, fine = m.get("t", 0), m.get("t", 1)
    assert (m.dir_of("t", 0), m.dir_of("t", 1)) == (d[0], d[1])
    acked = 0
    with pytest.raises(LogStorageError):
        for _ in range(100_000):
            full.append(h.batch(1, size=400), leader_epoch=0, now_ms=0)
            acked += 1
    assert acked > 0
    # The full directory still serves reads; the other one takes appends and moves.
    assert full.read(0, 1 << 20).next_offset > 0
    for _ in range(50):
        fine.append(h.batch(2, size=400), leader_epoch=0, now_ms=0)
    assert fine.log_end_offset == 100
    # A move into the full directory fails and leaves the source whole.
    with pytest.raises(LogStorageError):
        m.move_partition("t", 1, d[0])
    assert m.dir_of("t", 1) == d[1]
    assert not [n for n in os.listdir(d[0]) if n.endswith("-future")]
    assert m.get("t", 1).log_end_offset == 100
    assert m.get("t", 1).append(h.batch(1), leader_epoch=0, now_ms=0).base_offset == 100
    with pytest.raises(LogStorageError):  # the full directory's checkpoint: no room
        m.close()
    assert "t 1 " in (tmp_path / "roomy" / "recovery-point-offset-checkpoint").read_text()
    reserve.unlink()
    m = manager(d)
    assert m.get("t", 0).log_end_offset == acked
    assert m.get("t", 1).log_end_offset == 101
    m.close()

"""The test-only file layer itself: the fsync journal and the power cut it drives, and
fault rules (the layer is what the soak and the full-disk tests rely on)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from kbroker.log.fault_layer import file_sizes, install, parse_fault_rules, simulate_power_loss


def _write(path: Path, data: bytes, *, sync: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def test_a_power_cut_keeps_what_was_synced(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "old").write_bytes(b"x" * 10)  # there before the broker started
    durable = file_sizes(str(data))
    journal = tmp_path / "journal"
    uninstall = install(str(journal), None)
    try:
        _write(data / "old", b"y" * 5, sync=False)  # unsynced growth of an old file
        _write(data / "seg", b"a" * 100, sync=True)
        _write(data / "seg", b"b" * 50, sync=False)  # the unsynced tail
        _write(data / "tmp", b"c" * 30, sync=True)
        os.replace(data / "tmp", data / "renamed")  # synced, then renamed
        _write(data / "never", b"d" * 20, sync=False)
    finally:
        uninstall()
    cut = dict(simulate_power_loss(str(data), durable, str(journal)))
    assert {os.path.basename(p): n for p, n in cut.items()} == {"old": 5, "seg": 50, "never": 20}
    assert (data / "old").read_bytes() == b"x" * 10
    assert (data / "seg").read_bytes() == b"a" * 100
    assert (data / "renamed").read_bytes() == b"c" * 30
    assert (data / "never").read_bytes() == b""


def test_fault_rules_fail_matching_calls_until_removed(tmp_path: Path) -> None:
    control = tmp_path / "faults"
    control.write_text("write ENOSPC target\nfsync EIO\n")
    uninstall = install(None, str(control))
    try:
        with pytest.raises(OSError) as info:
            _write(tmp_path / "target", b"x", sync=False)
        assert info.value.errno == errno.ENOSPC
        _write(tmp_path / "other", b"x", sync=False)  # the rule names another path
        with pytest.raises(OSError) as info:
            _write(tmp_path / "other", b"x", sync=True)
        assert info.value.errno == errno.EIO
        control.unlink()
        _write(tmp_path / "target", b"x", sync=True)
    finally:
        uninstall()
    assert (tmp_path / "target").read_bytes() == b"x"


def test_a_bad_rule_is_refused() -> None:
    with pytest.raises(ValueError):
        list(parse_fault_rules("scribble EIO"))
    with pytest.raises(ValueError):
        list(parse_fault_rules("write ENOTANERRNO"))

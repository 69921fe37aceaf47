"""log.cleaner_io.copy_range: the kernel copy, its user-space fallback, short writes."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from kbroker.log import cleaner_io, segment


def _files(tmp_path: Path, size: int) -> tuple[int, int, bytes]:
    data = os.urandom(size)
    (tmp_path / "src").write_bytes(data + b"tail that is not copied")
    src = os.open(tmp_path / "src", os.O_RDONLY)
    dst = os.open(tmp_path / "dst", os.O_RDWR | os.O_CREAT)
    return src, dst, data


def _copied(tmp_path: Path, src: int, dst: int) -> bytes:
    os.close(src)
    os.close(dst)
    return (tmp_path / "dst").read_bytes()


def test_copy_range_in_the_kernel(tmp_path: Path) -> None:
    src, dst, data = _files(tmp_path, 3 * 4096 + 17)
    cleaner_io.copy_range(src, dst, len(data))
    assert _copied(tmp_path, src, dst) == data


@pytest.mark.parametrize("code", [errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP])
def test_copy_range_falls_back_to_user_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    def unsupported(*_args: object) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "copy_file_range", unsupported)
    # several fallback buffers, the last one partial
    monkeypatch.setattr(cleaner_io, "_COPY_FALLBACK_CHUNK_BYTES", 1000)
    src, dst, data = _files(tmp_path, 4321)
    cleaner_io.copy_range(src, dst, len(data))
    assert _copied(tmp_path, src, dst) == data


def test_copy_range_finishes_in_user_space_after_a_partial_kernel_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.copy_file_range
    calls = []

    def once_then_unsupported(src: int, dst: int, count: int, offset_src: int, offset_dst: int) -> int:
        calls.append(count)
        if len(calls) > 1:
            raise OSError(errno.EXDEV, "cross-device")
        return real(src, dst, min(count, 1000), offset_src, offset_dst)

    monkeypatch.setattr(os, "copy_file_range", once_then_unsupported)
    src, dst, data = _files(tmp_path, 5000)
    cleaner_io.copy_range(src, dst, len(data))
    assert len(calls) == 2
    assert _copied(tmp_path, src, dst) == data


def test_copy_range_other_errors_are_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*_args: object) -> int:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "copy_file_range", failing)
    src, dst, data = _files(tmp_path, 100)
    with pytest.raises(OSError) as caught:
        cleaner_io.copy_range(src, dst, len(data))
    _copied(tmp_path, src, dst)
    assert caught.value.errno == errno.EIO


def test_copy_range_refuses_a_source_shorter_than_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "copy_file_range", lambda *_args: 0)  # as at end of file
    src, dst, data = _files(tmp_path, 100)
    with pytest.raises(OSError) as caught:
        cleaner_io.copy_range(src, dst, len(data) + 1000)
    _copied(tmp_path, src, dst)
    assert caught.value.errno == errno.EIO


def test_pwrite_all_retries_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.pwrite
    sizes = []

    def short(fd: int, data: memoryview, position: int) -> int:
        sizes.append(len(data))
        return real(fd, data[:7], position)  # at most 7 bytes a call

    monkeypatch.setattr(os, "pwrite", short)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        end = segment.pwrite_all(fd, b"0123456789abcdefghij", 5)
    finally:
        os.close(fd)
    assert end == 25
    assert (tmp_path / "f").read_bytes() == b"\0" * 5 + b"0123456789abcdefghij"
    assert sizes == [20, 13, 6]


def test_pwrite_all_without_progress_is_enospc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "pwrite", lambda *_args: 0)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(OSError) as caught:
            segment.pwrite_all(fd, b"data", 0)
    finally:
        os.close(fd)
    assert caught.value.errno == errno.ENOSPC

"""A test-only file layer: an fsync journal (power-loss simulation) and injected I/O errors.

Nothing here runs in a normal broker.  ``install_from_environment()`` (called once by the
broker's command line at start-up) installs the layer only when one of these environment
variables is set:

``KBROKER_TEST_FSYNC_JOURNAL=PATH``
    After every successful ``os.fsync`` / ``os.fdatasync`` of a regular file, one line
    ``"<st_dev> <st_ino> <st_size>\\n"`` is appended to PATH (one ``write`` of an
    ``O_APPEND`` descriptor, so a SIGKILL never leaves half a line).  Keyed by inode, a
    file renamed after its fsync (tmp + fsync + rename) keeps its entry.  A harness that
    SIGKILLs the broker can then cut every file back to its size at its last fsync
    (``power_loss_sizes`` below): what a power cut does to data still in the page cache.

``KBROKER_TEST_FAULTS=PATH``
    A control file read (when its modification time changes) before each write-side call.
    While it exists, each line ``<op> <ERRNO> [path-substring]`` makes calls of ``op`` on
    regular files whose path contains the substring (any file without one) fail with
    ``OSError(ERRNO)``: ``op`` is ``write`` (``os.write``, ``os.pwrite``, ``os.pwritev``),
    ``fsync`` (``os.fsync``, ``os.fdatasync``), ``create`` (``os.open`` with ``O_CREAT``
    and ``open()`` for writing) or ``truncate`` (``os.ftruncate``).  Deleting the file
    (or emptying it) ends the faults: "the disk has space again".

The layer wraps the ``os`` functions process-wide (every module here calls them as
``os.<name>`` at call time), so the broker's own code paths run unchanged.
"""

from __future__ import annotations

import builtins
import errno
import os
import stat
import threading
from collections.abc import Callable, Iterable
from typing import Any

FSYNC_JOURNAL_ENV = "KBROKER_TEST_FSYNC_JOURNAL"
FAULTS_ENV = "KBROKER_TEST_FAULTS"
FAULT_OPS = ("write", "fsync", "create", "truncate")

_installed = False


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


class _Faults:
    """The parsed control file, reloaded when its mtime changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._mtime_ns: int | None = None
        self._rules: list[tuple[str, int, str]] = []
        self._lock = threading.Lock()

    def rules(self) -> list[tuple[str, int, str]]:
        try:
            mtime_ns = os.stat(self.path).st_mtime_ns
        except OSError:
            return []
        with self._lock:
            if mtime_ns != self._mtime_ns:
                self._mtime_ns = mtime_ns
                self._rules = list(parse_fault_rules(_read_text(self.path)))
            return self._rules

    def check(self, op: str, path: str) -> None:
        for rule_op, code, where in self.rules():
            if rule_op == op and path.startswith("/") and where in path:
                raise OSError(code, f"{os.strerror(code)} (injected)", path)

    def check_fd(self, op: str, fd: int) -> None:
        if self.rules():
            self.check(op, _fd_path(fd))


def _read_text(path: str) -> str:
    try:
        with builtins.open(path) as f:  # the real open: never faulted
            return f.read()
    except OSError:
        return ""


def parse_fault_rules(text: str) -> Iterable[tuple[str, int, str]]:
    """``"write ENOSPC .log"`` lines -> (op, errno code, path substring)."""
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        op, name = words[0], words[1] if len(words) > 1 else "EIO"
        if op not in FAULT_OPS or not hasattr(errno, name):
            raise ValueError(
                f"bad fault rule {line!r}: want '<{'|'.join(FAULT_OPS)}> <ERRNO> [path]'"
            )
        yield op, int(getattr(errno, name)), words[2] if len(words) > 2 else ""


_WRAPPED = ("fsync", "fdatasync", "write", "pwrite", "pwritev", "ftruncate", "open")


def install(journal_path: str | None, faults_path: str | None) -> Callable[[], None]:
    """Wrap the ``os`` file functions; returns the function that puts them back.
    A second install before that does nothing."""
    global _installed
    if _installed or not (journal_path or faults_path):
        return lambda: None
    _installed = True
    saved = {name: getattr(os, name) for name in _WRAPPED}
    saved_open = builtins.open

    def uninstall() -> None:
        global _installed
        for name, real in saved.items():
            setattr(os, name, real)
        builtins.open = saved_open
        if journal_fd >= 0:
            os.close(journal_fd)
        _installed = False

    faults = _Faults(faults_path) if faults_path else None
    journal_fd = (
        os.open(journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if journal_path else -1
    )

    def wrap_fsync(real: Callable[[Any], None]) -> Callable[[Any], None]:
        def fsync(fd: Any) -> None:
            n = fd if isinstance(fd, int) else fd.fileno()
            if faults is not None:
                faults.check_fd("fsync", n)
            real(fd)
            if journal_fd >= 0:
                st = os.fstat(n)
                if stat.S_ISREG(st.st_mode):
                    os.write(journal_fd, f"{st.st_dev} {st.st_ino} {st.st_size}\n".encode())

        return fsync

    setattr(os, "fsync", wrap_fsync(os.fsync))  # noqa: B010 - setattr: a typed module
    setattr(os, "fdatasync", wrap_fsync(os.fdatasync))  # noqa: B010
    if faults is None:
        return uninstall

    def wrap_fd_call(real: Callable[..., Any], op: str) -> Callable[..., Any]:
        def call(fd: int, *args: Any) -> Any:
            if fd != journal_fd:
                faults.check_fd(op, fd)
            return real(fd, *args)

        return call

    os.write = wrap_fd_call(os.write, "write")
    os.pwrite = wrap_fd_call(os.pwrite, "write")
    os.pwritev = wrap_fd_call(os.pwritev, "write")
    os.ftruncate = wrap_fd_call(os.ftruncate, "truncate")
    real_os_open = os.open
    real_open = builtins.open

    def os_open(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        if flags & os.O_CREAT and isinstance(path, (str, os.PathLike)):
            faults.check("create", os.path.abspath(os.fspath(path)))
        return real_os_open(path, flags, mode, **kw)

    def open_(file: Any, mode: str = "r", *args: Any, **kw: Any) -> Any:
        if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+"):
            faults.check("create", os.path.abspath(os.fspath(file)))
        return real_open(file, mode, *args, **kw)

    os.open = os_open
    builtins.open = open_
    return uninstall


def install_from_environment() -> None:
    install(os.environ.get(FSYNC_JOURNAL_ENV) or None, os.environ.get(FAULTS_ENV) or None)


def read_fsync_journal(path: str) -> dict[tuple[int, int], int]:
    """(st_dev, st_ino) -> size at the last fsync, from a journal (a torn last line is skipped)."""
    sizes: dict[tuple[int, int], int] = {}
    try:
        with builtins.open(path) as f:
            lines = f.read().split("\n")[:-1]  # whole lines only
    except FileNotFoundError:
        return sizes
    for line in lines:
        dev, ino, size = (int(w) for w in line.split())
        sizes[(dev, ino)] = size
    return sizes


def file_sizes(root: str) -> dict[tuple[int, int], int]:
    """(st_dev, st_ino) -> size of every regular file under ``root``."""
    sizes: dict[tuple[int, int], int] = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                sizes[(st.st_dev, st.st_ino)] = st.st_size
    return sizes


def simulate_power_loss(
    root: str, durable_at_start: dict[tuple[int, int], int], journal_path: str
) -> list[tuple[str, int]]:
    """Cut every regular file under ``root`` back to what a power cut would have left:
    its size at its last fsync in the journal, else its size when the broker started
    (``durable_at_start``, from ``file_sizes`` then), else nothing.  Call only after the
    broker was SIGKILLed.  Returns (path, bytes dropped) of every file cut.

    Modelled: unsynced appends and files never synced.  Not modelled: directory entries
    (creations, renames and unlinks are taken as durable) and in-place overwrites of
    synced bytes (the log rewrites no file in place: segments and indexes only grow or
    are truncated, everything else is written to a new file and renamed).
    """
    synced = read_fsync_journal(journal_path)
    cut: list[tuple[str, int]] = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                continue
            key = (st.st_dev, st.st_ino)
            durable = synced.get(key, durable_at_start.get(key, 0))
            if st.st_size > durable:
                os.truncate(path, durable)
                cut.append((path, st.st_size - durable))
    return cut

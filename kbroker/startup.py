"""What start-up needs from the machine: the data directory, its lock, the listening socket.

Every failure here is a :class:`StartupError` whose message is one line a user can act on
(the CLI prints it as ``kbroker: error: ...`` and exits 1).

The data-dir lock is Kafka's: a ``.lock`` file in the directory, locked with ``flock``
for as long as the broker runs.  The kernel drops the lock when the process dies however
it dies (SIGKILL included), so a stale file never blocks a restart; the file itself stays.
The lock holder's pid is written into the file so the refusal can name it.  ``flock``
locks belong to the open file, so a second broker in the same process is refused too.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from pathlib import Path

LOCK_FILE = ".lock"
# Pending connections the kernel queues before the broker accepts them (asyncio's default).
LISTEN_BACKLOG = 100


class StartupError(RuntimeError):
    """The broker cannot start; the message says why, in one line."""


def _reason(exc: OSError) -> str:
    return exc.strerror.lower() if exc.strerror else str(exc)


def prepare_data_dir(path: Path) -> None:
    """Create ``path`` if needed and check that it is a writable directory."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StartupError(f"data dir {path} is not a directory") from None
    except NotADirectoryError:
        raise StartupError(f"cannot create data dir {path}: a parent is not a directory") from None
    except OSError as exc:
        raise StartupError(f"cannot create data dir {path}: {_reason(exc)}") from None
    if not path.is_dir():
        raise StartupError(f"data dir {path} is not a directory")


class DataDirLock:
    """The ``.lock`` of one data directory, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        data_dir = self.path.parent
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StartupError(f"data dir {data_dir} is not writable: {_reason(exc)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                who = f"pid {holder}" if holder else "another process"
                raise StartupError(f"data dir {data_dir} is in use by {who}") from None
            raise StartupError(f"cannot lock data dir {data_dir}: {_reason(exc)}") from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:
            os.close(fd)
            raise StartupError(f"data dir {data_dir} is not writable: {_reason(exc)}") from None
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; ``""`` is every interface (IPv6 and IPv4
    on one dual-stack socket where the system has one, as Java's wildcard address)."""
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        if host == "":
            if socket.has_dualstack_ipv6():
                return socket.create_server(
                    ("", port), family=socket.AF_INET6, backlog=LISTEN_BACKLOG, reuse_port=False, dualstack_ipv6=True
                )
            return socket.create_server(("0.0.0.0", port), backlog=LISTEN_BACKLOG)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        return socket.create_server(address, family=family, backlog=LISTEN_BACKLOG)
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen on {shown}: unknown host ({exc.strerror})") from None
    except OSError as exc:
        raise StartupError(f"cannot listen on {shown}: {_reason(exc)}") from None

"""Accepting connections on a listening socket, within the broker's limits.

Theory of operation
-------------------
asyncio's and uvloop's ``create_server`` accept for us, but each reacts to running out of
descriptors in its own way (asyncio logs a traceback for every failed ``accept()`` and
retries a second later; libuv drops pending clients), and neither lets the broker refuse
a client before its TLS handshake.  An :class:`Acceptor` owns one non-blocking listening
socket instead: a reader callback accepts up to ``ACCEPT_BATCH`` pending connections per
wake-up, refuses at once (closes) a client over ``max.connections`` or its address's
``max.connections.per.ip`` quota, and hands the others to
``loop.connect_accepted_socket`` with the listener's protocol factory and TLS context.

Before each accept the acceptor checks the connection count against the budget the
descriptor limit leaves (``kbroker.limits.connection_fd_budget``): at it, it stops
watching the socket until a connection closes (``room_freed``), so connections never
take the descriptors the rest of the broker needs.

Out of descriptors all the same (EMFILE, ENFILE) or kernel memory (ENOBUFS, ENOMEM), the acceptor
stops watching the socket for ``ACCEPT_BACKOFF_S`` and tries again then; pending clients
wait in the kernel's backlog meanwhile.  Existing connections are served as before (they
are other sockets, on the same loop).  It logs one WARNING when a run of failures
begins and one INFO line when accepting works again (with the number of failed attempts
and how long it lasted), and at most one such pair per ``ACCEPT_WARNING_INTERVAL_S``, so
a broker stuck at its limit does not flood its log and never spins.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

# Pending connections accepted per wake-up: enough to drain a burst, few enough that one
# listener cannot keep the loop from serving existing connections.
ACCEPT_BATCH = 64
# How long accepting pauses after the process or system ran out of descriptors or memory:
# long enough not to spin on a limit that holds, short enough that clients retrying see
# the broker again soon after descriptors are freed.
ACCEPT_BACKOFF_S = 0.5
# At most one WARNING per this interval about running out: a broker that keeps hitting
# its limit (each close lets one more client in, then the next accept fails) says so
# once a minute, not once per client.
ACCEPT_WARNING_INTERVAL_S = 60.0
# accept() errors that mean "out of a resource": back off, do not spin.
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# The TLS handshake of a new client on a TLS listener (asyncio's default is 60 s).
TLS_HANDSHAKE_TIMEOUT_S = 60.0


class Acceptor:
    """Accepts on ``sock`` for the connection ``factory``; see the module docstring.

    ``at_fd_budget(pending)`` says whether the registered connections plus ``pending``
    (accepted, not registered yet) fill the descriptor budget.  ``admits(host)`` says whether a new client from ``host`` is within the connection
    limits (checked before the transport exists; the connection checks again when it
    registers, which counts it).
    """

    def __init__(
        self,
        sock: socket.socket,
        factory: Callable[[], asyncio.BaseProtocol],
        ssl_context: ssl.SSLContext | None,
        admits: Callable[[str], bool],
        at_fd_budget: Callable[[int], bool] = lambda pending: False,
    ) -> None:
        self.sock = sock
        self._factory = factory
        self._ssl = ssl_context
        self._admits = admits
        self._at_fd_budget = at_fd_budget
        self._paused_for_budget = False
        self._budget_warned_at: float | None = None
        self._loop = asyncio.get_running_loop()
        self._fd = sock.fileno()
        self._watching = False
        self._closed = False
        self._handshakes: set[asyncio.Task[None]] = set()
        self._failures = 0  # failed accept() calls in the current run of failures
        self._failing_since = 0.0
        self._warned_at: float | None = None  # when the last WARNING was logged
        self._run_warned = False  # whether the current run of failures was logged
        self.refused = 0  # clients closed at once: over max.connections or their IP's quota
        self.backoffs = 0  # pauses after running out of descriptors or memory

    async def start(self) -> None:
        """Start accepting (a coroutine, as ``loop.create_server`` is: the point where the
        broker starts listening can be awaited)."""
        self.sock.setblocking(False)
        self._watch()

    def _watch(self) -> None:
        if not self._closed and not self._watching:
            self._loop.add_reader(self._fd, self._on_readable)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._loop.remove_reader(self._fd)
            self._watching = False

    def _on_readable(self) -> None:
        for _ in range(ACCEPT_BATCH):
            if self._at_fd_budget(len(self._handshakes)):
                self._pause_for_budget()
                return
            try:
                conn, address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRNOS:
                    self._back_off(exc)
                    return
                # ECONNABORTED and the like: that client gave up; the next may not have.
                logger.debug("accept() failed: %s", exc)
                continue
            if self._failures:
                if self._run_warned:
                    logger.info(
                        "accepting connections again after %d failed attempts over %.1f s",
                        self._failures,
                        time.monotonic() - self._failing_since,
                    )
                self._failures = 0
            self._admit(conn, address)

    def _admit(self, conn: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else ""
        if not self._admits(host):
            self.refused += 1
            conn.close()
            return
        conn.setblocking(False)
        if conn.family in (socket.AF_INET, socket.AF_INET6):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = self._loop.create_task(self._connect(conn))
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            if self._ssl is None:
                await self._loop.connect_accepted_socket(self._factory, conn)
            else:
                await self._loop.connect_accepted_socket(
                    self._factory, conn, ssl=self._ssl, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S
                )
        except (TimeoutError, OSError, ssl.SSLError) as exc:  # the client's failure, not ours
            logger.debug("connection setup failed: %s", exc)
            conn.close()

    def _back_off(self, exc: OSError) -> None:
        self.backoffs += 1
        if self._failures == 0:
            now = self._failing_since = time.monotonic()
            self._run_warned = self._warned_at is None or now - self._warned_at >= ACCEPT_WARNING_INTERVAL_S
            if self._run_warned:
                self._warned_at = now
                logger.warning(
                    "cannot accept connections: %s; retrying every %.1f s (existing connections "
                    "are served; said at most every %.0f s)",
                    exc.strerror or exc,
                    ACCEPT_BACKOFF_S,
                    ACCEPT_WARNING_INTERVAL_S,
                )
        self._failures += 1
        self._unwatch()
        self._loop.call_later(ACCEPT_BACKOFF_S, self._watch)

    def _pause_for_budget(self) -> None:
        self._unwatch()
        self._paused_for_budget = True
        now = time.monotonic()
        if self._budget_warned_at is None or now - self._budget_warned_at >= ACCEPT_WARNING_INTERVAL_S:
            self._budget_warned_at = now
            logger.warning(
                "not accepting connections for now: the descriptor limit (RLIMIT_NOFILE) leaves "
                "room for no more; new clients wait until one closes (said at most every %.0f s)",
                ACCEPT_WARNING_INTERVAL_S,
            )

    def room_freed(self) -> None:
        """A connection closed: accepting resumes if it paused at the descriptor budget."""
        if self._paused_for_budget and not self._at_fd_budget(len(self._handshakes)):
            self._paused_for_budget = False
            self._watch()

    def close(self) -> None:
        """Stop accepting and close the listening socket (connections stay)."""
        self._closed = True
        self._unwatch()
        self.sock.close()
        for task in list(self._handshakes):
            task.cancel()

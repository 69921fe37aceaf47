"""The broker-wide bounds on clients: connection counts and queued request bytes.

``ConnectionLimits`` also holds the number of connections the descriptor limit leaves
room for (``connection_fd_budget``): at it the acceptor stops accepting until one closes,
as Kafka's acceptor waits for a slot at ``max.connections``.

``ConnectionLimits`` holds Kafka's ``max.connections``, ``max.connections.per.ip`` and
``max.connections.per.ip.overrides`` (``host:count`` pairs; host names are resolved once,
at start-up) and counts the registered connections by client address.  The acceptor
asks :meth:`ConnectionLimits.admits` before a client costs anything (a refused one is
closed at once, as Kafka's acceptor does); a connection counts itself in with
:meth:`add` (which checks again: a TLS handshake may have run meanwhile) and out with
:meth:`remove`.

``RequestMemory`` is Kafka's ``queued.max.request.bytes`` memory pool: every request
frame larger than a connection's receive buffer takes its size from the pool before its
buffer is allocated, and gives it back once it has been answered.  A connection whose
frame does not fit stops reading (its kernel buffers fill, and TCP slows the client)
until enough is given back; it is then woken, oldest first.  As in Kafka, one frame is
always let through when nothing is taken (a frame larger than the whole pool would
otherwise wait for ever), so the pool is exceeded by at most one frame.

``ResponseMemory`` is kbroker's ``kbroker.queued.max.response.bytes``: the bytes of Fetch
answers built and not yet handed to the kernel, across all connections (Kafka bounds
requests with ``queued.max.request.bytes`` and answers only per channel, one in flight;
kbroker bounds both).  Fetch asks :meth:`ResponseMemory.room` before it reads and reads no
more than that; the record bytes it read are taken when it answers, the connection adds
the encoded answer and gives the records back once it is written to the transport, and
gives the answer back when the transport's buffer is empty (at once when the kernel took
it all; else at ``resume_writing`` with a low-water mark of 0) or the connection is lost.
A Fetch that finds no room still gets its first batch (Kafka's first-batch rule: no
consumer starves while slow readers hold the budget), so the budget is exceeded by at
most one batch per answer built while it is full.  Between the handler's return and the
write the records and their encoded copy coexist for one synchronous step (no other Fetch
runs meanwhile): ``peak_bytes`` counts both.
"""

from __future__ import annotations

import ipaddress
import resource
import socket
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from kbroker.config import BrokerConfig, ConfigError

# Descriptors kept free of both connections and segment files: the interpreter's own
# files, handler modules imported on a key's first request, checkpoint and snapshot
# writes, index flushes, the event loop and the listeners.  Without them a broker full
# of connections could not even import the handler of a new request.
FD_RESERVE = 32


def connection_fd_budget(max_open_segment_files: int) -> int | None:
    """How many connections the process's soft RLIMIT_NOFILE leaves room for, after the
    segment-file cache and FD_RESERVE; None when unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    return max(1, soft - max_open_segment_files - FD_RESERVE)


def parse_overrides(text: str) -> dict[str, int]:
    """``max.connections.per.ip.overrides``: ``"host:count,host2:count"`` -> {address: count}.

    Host names are resolved (every address they have); ConfigError if one does not
    resolve or a count is not a non-negative integer."""
    out: dict[str, int] = {}
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        host, sep, count_text = item.rpartition(":")
        if not sep or not host or not count_text.strip().isdigit():
            raise ConfigError(f"max.connections.per.ip.overrides: {item!r} is not host:count")
        count = int(count_text)
        host = host.strip().strip("[]")
        try:
            out[str(ipaddress.ip_address(host))] = count
            continue
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ConfigError(f"max.connections.per.ip.overrides: cannot resolve {host!r}: {exc}") from None
        for info in infos:
            out[str(info[4][0])] = count
    return out


@dataclass
class ConnectionLimits:
    """Connection counts against ``max.connections`` and the per-address quotas."""

    max_connections: int
    max_per_ip: int
    overrides: dict[str, int] = field(default_factory=dict)
    total: int = 0
    by_host: dict[str, int] = field(default_factory=dict)
    # Connections the descriptor limit leaves room for (connection_fd_budget); at it the
    # acceptor pauses (clients wait in the backlog) rather than run out of descriptors.
    fd_budget: int | None = None

    def at_fd_budget(self, pending: int = 0) -> bool:
        """Whether the connections, with ``pending`` ones not registered yet, fill it."""
        return self.fd_budget is not None and self.total + pending >= self.fd_budget

    @classmethod
    def from_config(cls, config: BrokerConfig) -> ConnectionLimits:
        max_per_ip = config.get_int("max.connections.per.ip")
        overrides = parse_overrides(config.get("max.connections.per.ip.overrides") or "")
        if max_per_ip == 0 and not overrides:
            # KafkaConfig's rule: 0 refuses everyone, so it only makes sense with overrides.
            raise ConfigError("max.connections.per.ip=0 needs max.connections.per.ip.overrides")
        return cls(config.get_int("max.connections"), max_per_ip, overrides)

    def quota(self, host: str) -> int:
        return self.overrides.get(host, self.max_per_ip)

    def admits(self, host: str) -> bool:
        """Whether one more connection from ``host`` fits (counts nothing)."""
        return self.total < self.max_connections and self.by_host.get(host, 0) < self.quota(host)

    def add(self, host: str) -> bool:
        """Count a connection from ``host`` in; False (not counted) if it does not fit."""
        if not self.admits(host):
            return False
        self.total += 1
        self.by_host[host] = self.by_host.get(host, 0) + 1
        return True

    def remove(self, host: str) -> None:
        self.total -= 1
        left = self.by_host.get(host, 0) - 1
        if left > 0:
            self.by_host[host] = left
        else:
            self.by_host.pop(host, None)


class RequestMemory:
    """``queued.max.request.bytes`` (see the module docstring); -1 is unbounded."""

    __slots__ = ("capacity_bytes", "used_bytes", "_waiting", "denied")

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self.used_bytes = 0
        # Connections waiting for room, oldest first, each with its wake-up callback.
        self._waiting: OrderedDict[object, Callable[[], None]] = OrderedDict()
        self.denied = 0  # times a frame had to wait

    def try_take(self, owner: object, size: int, wake: Callable[[], None]) -> bool:
        """Take ``size`` bytes for ``owner``'s frame, or queue ``wake`` for when there may
        be room (False).  A waiting owner is served only in turn."""
        fits = (
            self.capacity_bytes < 0
            or self.used_bytes == 0
            or self.used_bytes + size <= self.capacity_bytes
        )
        if fits and (not self._waiting or next(iter(self._waiting)) is owner):
            self._waiting.pop(owner, None)
            self.used_bytes += size
            return True
        if owner not in self._waiting:
            self.denied += 1
        self._waiting[owner] = wake
        return False

    def give_back(self, size: int) -> None:
        self.used_bytes -= size
        if self._waiting:
            next(iter(self._waiting.values()))()

    def forget(self, owner: object) -> None:
        """``owner`` stopped waiting (its connection closed); the next one gets its turn."""
        if self._waiting.pop(owner, None) is not None and self._waiting:
            next(iter(self._waiting.values()))()


class ResponseMemory:
    """``kbroker.queued.max.response.bytes`` (see the module docstring); -1 is unbounded."""

    __slots__ = ("capacity_bytes", "used_bytes", "peak_bytes", "trimmed")

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self.used_bytes = 0
        self.peak_bytes = 0  # the most held at once since start
        self.trimmed = 0  # Fetch reads whose byte limit the budget lowered

    def room(self) -> int:
        """Bytes a Fetch may read now (never negative)."""
        if self.capacity_bytes < 0:
            return 1 << 62
        return max(self.capacity_bytes - self.used_bytes, 0)

    def take(self, size: int) -> None:
        self.used_bytes += size
        if self.used_bytes > self.peak_bytes:
            self.peak_bytes = self.used_bytes

    def give_back(self, size: int) -> None:
        self.used_bytes -= size
        assert self.used_bytes >= 0, "response budget given back twice"

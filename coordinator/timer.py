"""Injected time: a keyed ``Timer`` protocol and a deterministic fake for tests.

Timeouts are keyed by strings (``heartbeat-<group>-<member>``, ``join-<group>``...),
so scheduling a key again replaces the earlier timeout; this is how Kafka's
``CoordinatorTimer`` behaves and what makes "reset the session timer" one call.

A timeout callback returns a ``Result[None]``: records to append and replies to send,
exactly like a request handler. The timer implementation hands that result to its
``sink`` (kbroker: append to ``__consumer_offsets`` and deliver; tests: the same).
Callbacks must run on the coordinator's single owner (the event loop thread), never
concurrently with a handler.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any, Protocol

from kbroker.coordinator.result import Result

__all__ = ["CallLaterTimer", "FakeTimer", "ManualClock", "Timer", "TimeoutCallback"]

TimeoutCallback = Callable[[], Result[Any]]


class Timer(Protocol):
    def schedule(self, key: str, delay_ms: int, callback: TimeoutCallback) -> None:
        """Run ``callback`` after ``delay_ms``; replaces any timeout with the same key."""

    def cancel(self, key: str) -> None:
        """Forget the timeout with this key, if any."""


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class CallLaterTimer:
    """A ``Timer`` over any ``call_later(seconds, fn) -> handle`` (asyncio's
    ``loop.call_later``), so kbroker needs no timer code of its own::

        timer = CallLaterTimer(loop.call_later, sink=lambda r: apply_result(r, append))

    The coordinator stays free of asyncio; the loop runs callbacks on its own thread,
    which is the coordinator's single owner.
    """

    def __init__(
        self,
        call_later: Callable[[float, Callable[[], None]], Cancellable],
        sink: Callable[[Result[Any]], None],
    ) -> None:
        self._call_later = call_later
        self.sink = sink
        self._handles: dict[str, tuple[object, Cancellable]] = {}

    def schedule(self, key: str, delay_ms: int, callback: TimeoutCallback) -> None:
        self.cancel(key)
        token = object()

        def fire() -> None:
            entry = self._handles.get(key)
            if entry is None or entry[0] is not token:
                return  # cancelled or replaced after the loop had already queued us
            del self._handles[key]
            self.sink(callback())

        self._handles[key] = (token, self._call_later(max(0, delay_ms) / 1000.0, fire))

    def cancel(self, key: str) -> None:
        entry = self._handles.pop(key, None)
        if entry is not None:
            entry[1].cancel()

    def cancel_all(self) -> None:
        """Shutdown: drop every pending timeout."""
        for key in list(self._handles):
            self.cancel(key)


class ManualClock:
    """A clock that moves only when told to; ``now_ms()`` is the injected clock."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.ms = start_ms

    def now_ms(self) -> int:
        return self.ms


class FakeTimer:
    """A ``Timer`` driven by ``advance(ms)``; due timeouts fire in deadline order.

    Ties fire in scheduling order. The clock is set to each timeout's deadline before it
    fires, so the callback sees the time it was due. Timeouts scheduled by a callback
    fire in the same ``advance`` when they fall due inside it.
    """

    def __init__(
        self, clock: ManualClock, sink: Callable[[Result[Any]], None] | None = None
    ) -> None:
        self.clock = clock
        self.sink = sink
        self._heap: list[tuple[int, int, str]] = []
        self._live: dict[str, tuple[int, int, TimeoutCallback]] = {}
        self._seq = itertools.count()

    def schedule(self, key: str, delay_ms: int, callback: TimeoutCallback) -> None:
        deadline = self.clock.ms + max(0, delay_ms)
        seq = next(self._seq)
        self._live[key] = (deadline, seq, callback)
        heapq.heappush(self._heap, (deadline, seq, key))

    def cancel(self, key: str) -> None:
        self._live.pop(key, None)

    def is_scheduled(self, key: str) -> bool:
        return key in self._live

    def deadline_of(self, key: str) -> int | None:
        entry = self._live.get(key)
        return None if entry is None else entry[0]

    @property
    def keys(self) -> list[str]:
        return sorted(self._live)

    def advance(self, ms: int) -> list[Result[Any]]:
        """Move the clock by ``ms``, firing due timeouts; returns their results in order."""
        end = self.clock.ms + ms
        fired: list[Result[Any]] = []
        while self._heap and self._heap[0][0] <= end:
            deadline, seq, key = heapq.heappop(self._heap)
            entry = self._live.get(key)
            if entry is None or entry[1] != seq:
                continue  # cancelled or replaced
            del self._live[key]
            self.clock.ms = max(self.clock.ms, deadline)
            result = entry[2]()
            fired.append(result)
            if self.sink is not None:
                self.sink(result)
        self.clock.ms = end
        return fired

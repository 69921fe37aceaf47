"""Waiting for data: the Fetch long poll.

A Fetch that has fewer than ``min_bytes`` to return parks on a :class:`DataWaiter` for the
partitions it reads.  Every successful append calls :meth:`DataWaiters.notify` for its
partition, which wakes the parked fetches at once (no polling loop); the fetch then reads
again and either answers or parks for the rest of its ``max_wait_ms``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

TopicPartition = tuple[str, int]


class DataWaiters:
    """Futures keyed by partition, resolved when that partition gets new data."""

    def __init__(self) -> None:
        self._waiters: dict[TopicPartition, set[asyncio.Future[bool]]] = {}

    def notify(self, tp: TopicPartition) -> None:
        futures = self._waiters.pop(tp, None)
        if futures:
            for fut in futures:
                _resolve(fut, True)

    def notify_all(self) -> None:
        for tp in list(self._waiters):
            self.notify(tp)

    async def wait(self, partitions: Iterable[TopicPartition], timeout_s: float) -> bool:
        """Wait until one of ``partitions`` is notified or the timeout passes; True if notified.

        A plain future and a ``call_later`` timer (not ``asyncio.wait_for``/``asyncio.timeout``,
        whose implementation differs between Python versions): the timer resolves the future
        with False, a notify with True, whichever comes first."""
        if timeout_s <= 0:
            return False
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        keys = list(partitions)
        for tp in keys:
            self._waiters.setdefault(tp, set()).add(fut)
        timer = loop.call_later(timeout_s, _resolve, fut, False)
        try:
            return await fut
        finally:
            timer.cancel()
            for tp in keys:
                waiting = self._waiters.get(tp)
                if waiting is not None:
                    waiting.discard(fut)
                    if not waiting:
                        del self._waiters[tp]


def _resolve(fut: asyncio.Future[bool], value: bool) -> None:
    if not fut.done():
        fut.set_result(value)

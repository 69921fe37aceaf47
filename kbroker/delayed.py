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
        self._waiters: dict[TopicPartition, set[asyncio.Future[None]]] = {}

    def notify(self, tp: TopicPartition) -> None:
        futures = self._waiters.pop(tp, None)
        if futures:
            for fut in futures:
                if not fut.done():
                    fut.set_result(None)

    def notify_all(self) -> None:
        for tp in list(self._waiters):
            self.notify(tp)

    async def wait(self, partitions: Iterable[TopicPartition], timeout_s: float) -> bool:
        """Wait until one of ``partitions`` is notified or the timeout passes; True if notified."""
        if timeout_s <= 0:
            return False
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        keys = list(partitions)
        for tp in keys:
            self._waiters.setdefault(tp, set()).add(fut)
        try:
            await asyncio.wait_for(fut, timeout_s)  # fut is ours alone: cancelling it on timeout is fine
            return True
        except TimeoutError:
            return False
        finally:
            for tp in keys:
                waiting = self._waiters.get(tp)
                if waiting is not None:
                    waiting.discard(fut)
                    if not waiting:
                        del self._waiters[tp]

"""The broker's log cleaner: compaction passes on worker threads, off the event loop.

A pass over one partition has three steps (see ``kbroker.log.cleaner``): planning and
the final segment swap touch the partition log and run on the event loop; the middle
step -- reading the segments, building the offset map, writing ``.cleaned`` files --
only reads immutable segment files and runs on one of ``log.cleaner.threads`` worker
threads.  The housekeeping tick calls :meth:`LogCleanerService.tick` once a second;
it starts a pass on each idle thread whose backoff (``log.cleaner.backoff.ms`` after a
tick that found nothing to clean) has passed.  A finished build is handed back to the
loop with ``call_soon_threadsafe`` and swapped in there, unless the partition was
deleted or replaced meanwhile.

Throttling (``log.cleaner.io.max.bytes.per.second``) sleeps in the worker.  A worker
holds the GIL while it decodes, which the event loop feels as at most one switch
interval (``sys.getswitchinterval()``, 5 ms by default) per wake-up; BENCHMARKS.md has
the measured stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from kbroker.config import BrokerConfig
from kbroker.log import LogManager, PartitionLog
from kbroker.log.cleaner import CleanOutcome, CleanPlan
from kbroker.log.cleaner_manager import CleanerConfig, LogCleanerManager

logger = logging.getLogger(__name__)

# log.cleaner.io.max.bytes.per.second's default is Double.MAX_VALUE: no throttle.
_DOUBLE_MAX = 1.7976931348623157e308


def cleaner_config(config: BrokerConfig) -> CleanerConfig:
    """The ``log.cleaner.*`` broker properties as a CleanerConfig."""
    rate = float(config.get("log.cleaner.io.max.bytes.per.second") or _DOUBLE_MAX)
    return CleanerConfig(
        enable=config.get_bool("log.cleaner.enable"),
        threads=config.get_int("log.cleaner.threads"),
        dedupe_buffer_size=config.get_int("log.cleaner.dedupe.buffer.size"),
        io_buffer_load_factor=float(config.get("log.cleaner.io.buffer.load.factor") or 0.9),
        io_max_bytes_per_second=float("inf") if rate >= _DOUBLE_MAX else rate,
        backoff_ms=config.get_int("log.cleaner.backoff.ms"),
    )


@dataclass
class _Job:
    key: tuple[str, int]
    log: PartitionLog
    plan: CleanPlan
    future: Future[CleanOutcome | None] | None = None


class LogCleanerService:
    """See the module doc.  All methods run on the event loop."""

    def __init__(self, data_dir: str, logs: LogManager, config: CleanerConfig) -> None:
        self.logs = logs
        self.manager = LogCleanerManager(data_dir, config)
        self.config = config
        self._executor: ThreadPoolExecutor | None = None
        self._jobs: dict[tuple[str, int], _Job] = {}
        self._stopping = threading.Event()
        self._idle_until_ms = 0
        self.passes_completed = 0
        self.last_error: BaseException | None = None

    @property
    def enabled(self) -> bool:
        return self.config.enable and self.config.threads > 0

    def tick(self, now_ms: int) -> None:
        """Start passes on idle threads (called by the housekeeping loop)."""
        if not self.enabled or self._stopping.is_set() or now_ms < self._idle_until_ms:
            return
        while len(self._jobs) < self.config.threads:
            try:
                picked = self.manager.begin(self.logs.logs, now_ms)
            except OSError:
                logger.exception("log cleaner could not plan a pass")
                picked = None
            if picked is None:
                self._idle_until_ms = now_ms + self.config.backoff_ms
                return
            key, plan = picked
            log = self.logs.logs[key]
            job = _Job(key, log, plan)
            self._jobs[key] = job
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.config.threads, thread_name_prefix="kbroker-log-cleaner"
                )
            job.future = self._executor.submit(self.manager.build, plan, self._stopping.is_set)
            job.future.add_done_callback(functools.partial(self._hand_back, asyncio.get_running_loop(), job))

    def _hand_back(self, loop: asyncio.AbstractEventLoop, job: _Job, _done: object) -> None:
        """Worker thread: queue the swap on the loop.  A closed loop (shutdown) raises
        RuntimeError: stop() has released the partition itself."""
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._finish, job)

    def _finish(self, job: _Job) -> None:
        self._jobs.pop(job.key, None)
        assert job.future is not None
        outcome: CleanOutcome | None = None
        try:
            outcome = job.future.result()
        except Exception as exc:  # a worker failure: log it, release the partition
            self.last_error = exc
            logger.warning("cleaning %s-%d failed: %s", job.key[0], job.key[1], exc)
        current = self.logs.logs.get(job.key)
        log = current if current is job.log else None
        try:
            self.manager.finish(job.key, log, outcome)
        except Exception as exc:
            self.last_error = exc
            logger.exception("swapping the cleaned segments of %s-%d failed", *job.key)
            return
        if outcome is not None and log is not None:
            self.passes_completed += 1

    def forget(self, topic: str) -> None:
        """A topic was deleted: drop its checkpoint entries."""
        for key in [k for k in self.manager.checkpoints if k[0] == topic]:
            self.manager.forget(key)

    def stop(self) -> None:
        """Stop the workers (a running build ends at its next batch; its files go)."""
        self._stopping.set()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        for job in list(self._jobs.values()):
            self.manager.finish(job.key, None, None)
        self._jobs.clear()

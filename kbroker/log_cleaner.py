"""The broker's log cleaner: compaction passes in worker processes, off the event loop.

A pass over one partition has three steps (see ``kbroker.log.cleaner``): planning and
the final segment swap touch the partition log and run on the event loop; the middle
step -- reading the segments, building the offset map, writing ``.cleaned`` files --
only reads immutable segment files and runs in one of ``log.cleaner.threads`` worker
*processes* (a ``spawn`` multiprocessing pool, at a lower CPU priority).  Processes rather than threads because
a cleaning thread holds the GIL while it decodes records, and the event loop then
waits for it: measured on a 2-core machine, a 1 ms ticker's p99 lateness was ~15-30 ms
with a cleaner thread and ~3 ms with a cleaner process (BENCHMARKS.md).  The plan and
the outcome are plain frozen data, pickled across.

The housekeeping tick calls :meth:`LogCleanerService.tick` once a second; it starts a
pass on each idle worker whose backoff (``log.cleaner.backoff.ms`` after a tick that
found nothing to clean) has passed.  A finished build is handed back to the loop with
``call_soon_threadsafe``; unless the partition was deleted or replaced meanwhile, its
cleaned segments are swapped in by :meth:`PartitionLog.replace_segments`'s three steps:
the checks and the final splice of the segment list on the loop, the file work between
(renames, fsyncs, opening the cleaned segment) and the checkpoint write on one "swap"
thread, so that none of it stalls request handling.  Throttling (``log.cleaner.io.max.bytes.per.second``) sleeps in
the worker.  At shutdown the pool is terminated; the ``.cleaned`` files of a pass cut
short are removed then (and would be at the next load anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.pool import Pool

from kbroker.config import BrokerConfig
from kbroker.log import LogManager, PartitionLog
from kbroker.log.cleaner import CleanOutcome, CleanPlan, build_clean
from kbroker.log.cleaner_io import Throttler
from kbroker.log.cleaner_manager import CleanerConfig, LogCleanerManager
from kbroker.log.swap import CLEANED_SUFFIX

logger = logging.getLogger(__name__)

# How much lower than the broker's the worker processes' CPU priority is (os.nice):
# cleaning is background work, and on a busy machine the event loop should get the CPU
# first (BENCHMARKS.md, "log cleaner").
CLEANER_NICENESS = 10

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
        io_buffer_size=config.get_int("log.cleaner.io.buffer.size"),
    )


def worker_started() -> None:
    """A worker process's initializer: lower its CPU priority (``CLEANER_NICENESS``)."""
    with contextlib.suppress(OSError):
        os.nice(CLEANER_NICENESS)


def build_in_worker(
    plan: CleanPlan, config: CleanerConfig, broker_pid: int | None = None
) -> CleanOutcome | None:
    """The worker process's side of a pass (module level: the pool pickles it by name).
    A worker whose broker died (SIGKILL) stops at the next batch instead of writing
    ``.cleaned`` files into a directory a new broker may own by then."""

    def broker_gone() -> bool:
        return broker_pid is not None and os.getppid() != broker_pid

    return build_clean(
        plan,
        config.new_offset_map(),
        Throttler(config.io_max_bytes_per_second),
        broker_gone,
        config.io_buffer_bytes_per_thread,
    )


@dataclass
class _Job:
    key: tuple[str, int]
    log: PartitionLog
    plan: CleanPlan
    started_s: float = 0.0  # time.monotonic() when the pass was handed to a worker


@dataclass
class _HandBack:
    """The pool's result thread hands a pass back to the loop.  A closed loop (shutdown)
    raises RuntimeError: stop() has released the partition itself."""

    service: LogCleanerService
    loop: asyncio.AbstractEventLoop
    job: _Job

    def done(self, outcome: CleanOutcome | None) -> None:
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.service._finish, self.job, outcome, None)

    def failed(self, error: BaseException) -> None:
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.service._finish, self.job, None, error)


class LogCleanerService:
    """See the module doc.  All methods run on the event loop."""

    def __init__(self, data_dir: str, logs: LogManager, config: CleanerConfig) -> None:
        self.logs = logs
        self.manager = LogCleanerManager(data_dir, config)
        self.config = config
        self._pool: Pool | None = None
        self._retired_pools: list[Pool] = []
        self._jobs: dict[tuple[str, int], _Job] = {}
        # File work of the swaps and checkpoint writes, one at a time, off the loop.
        self._swapper = ThreadPoolExecutor(1, thread_name_prefix="kbroker-cleaner-swap")
        self._swaps: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._idle_until_ms = 0
        self.passes_completed = 0
        self.last_error: BaseException | None = None
        # Figures for /metrics (kbroker.metrics), in the spirit of Kafka's LogCleaner metrics.
        self.passes_failed = 0
        self.bytes_read_total = 0
        self.bytes_written_total = 0
        # The last completed pass: written bytes as a percentage of read bytes (Kafka's
        # cleaner-recopy-percent) and its duration in seconds (max-clean-time-secs).
        self.last_recopy_percent = 0.0
        self.last_clean_time_s = 0.0

    @property
    def enabled(self) -> bool:
        return self.config.enable and self.config.threads > 0

    def tick(self, now_ms: int) -> None:
        """Start passes on idle threads (called by the housekeeping loop)."""
        if not self.enabled or self._stopping or now_ms < self._idle_until_ms:
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
            job = _Job(key, log, plan, time.monotonic())
            self._jobs[key] = job
            if self._pool is None:
                self._pool = multiprocessing.get_context("spawn").Pool(
                    self.config.threads, initializer=worker_started
                )
            hand_back = _HandBack(self, asyncio.get_running_loop(), job)
            self._pool.apply_async(
                build_in_worker,
                (plan, self.config, os.getpid()),
                callback=hand_back.done,
                error_callback=hand_back.failed,
            )

    def _finish(self, job: _Job, outcome: CleanOutcome | None, error: BaseException | None) -> None:
        if self._jobs.get(job.key) is not job:
            return  # stop() gave it up already
        if error is not None:  # a worker failure: log it, release the partition
            self.last_error = error
            self.passes_failed += 1
            logger.warning("cleaning %s-%d failed: %s", job.key[0], job.key[1], error)
        current = self.logs.logs.get(job.key)
        log = current if current is job.log else None
        if outcome is None or log is None:
            del self._jobs[job.key]
            self.manager.finish(job.key, log, outcome)
            return
        task = asyncio.get_running_loop().create_task(self._swap(job, log, outcome))
        self._swaps.add(task)
        task.add_done_callback(self._swaps.discard)

    async def _swap(self, job: _Job, log: PartitionLog, outcome: CleanOutcome) -> None:
        """Swap the pass's cleaned segments in: checks and splice here, files on the
        swap thread; then the checkpoint, written there too."""
        loop = asyncio.get_running_loop()
        try:
            for group in outcome.groups:
                pending = log.begin_replace(group.base_offset, group.end_offset, group.old_bases)
                if pending is None:
                    continue
                try:
                    await loop.run_in_executor(
                        self._swapper, functools.partial(log.swap_files, pending)
                    )
                finally:
                    log.end_replace(pending)
            self.manager.record_pass(job.key, outcome)
            snapshot = dict(self.manager.checkpoints)
            await loop.run_in_executor(
                self._swapper, functools.partial(self.manager.write_checkpoint, snapshot)
            )
            self.passes_completed += 1
            self._count_pass(job, outcome)
        except Exception as exc:
            self.last_error = exc
            self.passes_failed += 1
            logger.exception("swapping the cleaned segments of %s-%d failed", *job.key)
        finally:
            self.manager.in_progress.discard(job.key)
            if self._jobs.get(job.key) is job:
                del self._jobs[job.key]

    def _count_pass(self, job: _Job, outcome: CleanOutcome) -> None:
        stats = outcome.stats
        self.bytes_read_total += stats.bytes_read
        self.bytes_written_total += stats.bytes_written
        self.last_recopy_percent = 100.0 * stats.bytes_written / stats.bytes_read if stats.bytes_read else 0.0
        self.last_clean_time_s = time.monotonic() - job.started_s

    def reconfigure(self, config: CleanerConfig) -> None:
        """Dynamic broker configs changed: passes started from now on use ``config``
        (running ones finish with the old; a new thread count gets a new pool)."""
        if config.threads != self.config.threads and self._pool is not None:
            self._pool.close()  # its running passes still hand back their results
            self._retired_pools.append(self._pool)
            self._pool = None
        self.config = config
        self.manager.config = config
        self._idle_until_ms = 0

    def forget(self, topic: str) -> None:
        """A topic was deleted: drop its checkpoint entries."""
        changed = False
        for key in [k for k in self.manager.checkpoints if k[0] == topic]:
            changed |= self.manager.forget(key, write=False)
        if changed and not self._stopping:
            snapshot = dict(self.manager.checkpoints)
            self._swapper.submit(self.manager.write_checkpoint, snapshot)

    def stop(self) -> None:
        """Terminate the workers; the files of passes cut short are removed."""
        self._stopping = True
        for pool in [*self._retired_pools, *([self._pool] if self._pool is not None else [])]:
            pool.terminate()
            pool.join()
        self._pool = None
        self._retired_pools.clear()
        # A swap's file step finishes (the log's files stay consistent); its splice and
        # checkpoint are not needed any more: the logs are closing.
        for task in self._swaps:
            task.cancel()
        self._swapper.shutdown(wait=True)
        for job in list(self._jobs.values()):
            self.manager.finish(job.key, None, None)
            with contextlib.suppress(OSError):
                for name in os.listdir(job.plan.directory):
                    if name.endswith(CLEANED_SUFFIX):
                        os.unlink(os.path.join(job.plan.directory, name))
        self._jobs.clear()

"""Kafka's windowed rate and throttle time (its ``Rate`` over a ``WindowedSum``, and
``QuotaUtils.throttleTime``), on an injected clock in milliseconds.

Theory of operation
-------------------
A rate keeps up to ``samples + 1`` samples, each a sum over a window of ``window_ms``
(``quota.window.num`` x ``quota.window.size.seconds``).  Recording adds the value to the
current sample, first starting a new one (recycling the oldest) when the current one is
``window_ms`` old.  A sample with no event for ``samples * window_ms`` is reset when the rate
is measured.  The rate is the sum of the samples over the elapsed time since the oldest
sample started, counted as at least ``samples - 1`` full windows: a fresh client is measured
as if it had been idle for the windows it has not lived through, which is Kafka's burst
allowance (1 MB/s with 11 one-second windows lets a new producer send about 10 MB at once).

After recording, a rate above the quota is a violation; the throttle time is how long the
client must stay silent for the rate to fall back to the quota:
``(rate - quota) / quota * window``, in milliseconds, rounded.  Until ``samples - 1`` full
windows have passed the window stays padded to about ``samples - 1`` windows, so after a
burst of the whole allowance each request is throttled for the whole excess again: the
burst is paid back until its sample leaves the rate (no event for ``samples`` windows), as
in Kafka.  The quota holds over the measured window, not over shorter spans.
"""

from __future__ import annotations

__all__ = ["SampledRate"]


class _Sample:
    __slots__ = ("value", "start_ms", "last_event_ms")

    def __init__(self, now_ms: int) -> None:
        self.value = 0.0
        self.start_ms = now_ms
        self.last_event_ms = now_ms

    def reset(self, now_ms: int) -> None:
        self.value = 0.0
        self.start_ms = now_ms
        self.last_event_ms = now_ms


class SampledRate:
    """A per-second rate over ``samples`` windows of ``window_ms``; loop thread only."""

    __slots__ = ("samples", "window_ms", "_samples", "_current", "last_record_ms")

    def __init__(self, samples: int, window_ms: int) -> None:
        assert samples >= 1 and window_ms >= 1
        self.samples = samples
        self.window_ms = window_ms
        self._samples: list[_Sample] = []
        self._current = 0
        self.last_record_ms = 0

    def record(self, value: float, now_ms: int) -> None:
        sample = self._current_sample(now_ms)
        if now_ms - sample.start_ms >= self.window_ms:
            sample = self._advance(now_ms)
        sample.value += value
        sample.last_event_ms = now_ms
        self.last_record_ms = now_ms

    def measure(self, now_ms: int) -> float:
        """The rate per second at ``now_ms``."""
        window_ms = self.window_size_ms(now_ms)  # purges first
        total = sum(s.value for s in self._samples)
        return total / (window_ms / 1000.0)

    def window_size_ms(self, now_ms: int) -> int:
        """The elapsed time the rate is measured over (Kafka's ``Rate.windowSize``)."""
        self._purge(now_ms)
        oldest = min((s.start_ms for s in self._samples), default=now_ms)
        elapsed = now_ms - oldest
        full_windows = elapsed // self.window_ms
        min_full_windows = self.samples - 1
        if full_windows < min_full_windows:
            elapsed += (min_full_windows - full_windows) * self.window_ms
        return max(elapsed, 1)

    def record_and_throttle_ms(self, value: float, quota: float, now_ms: int) -> int:
        """Record ``value``; the throttle time in ms if the rate now exceeds ``quota``, else 0."""
        self.record(value, now_ms)
        window_ms = self.window_size_ms(now_ms)
        rate = sum(s.value for s in self._samples) / (window_ms / 1000.0)
        if rate <= quota:
            return 0
        return round((rate - quota) / quota * window_ms)

    def _current_sample(self, now_ms: int) -> _Sample:
        if not self._samples:
            self._samples.append(_Sample(now_ms))
        return self._samples[self._current]

    def _advance(self, now_ms: int) -> _Sample:
        # One sample more than ``samples`` is kept, as Kafka does: the oldest may still
        # overlap the measured window.
        self._current = (self._current + 1) % (self.samples + 1)
        if self._current >= len(self._samples):
            sample = _Sample(now_ms)
            self._samples.append(sample)
            return sample
        sample = self._samples[self._current]
        sample.reset(now_ms)
        return sample

    def _purge(self, now_ms: int) -> None:
        expire_ms = self.samples * self.window_ms
        for sample in self._samples:
            if now_ms - sample.last_event_ms >= expire_ms:
                sample.reset(now_ms)

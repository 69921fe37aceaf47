"""The broker's request-path counters (see ``kbroker.metrics`` for how they are exposed).

Plain ``dict``/``int`` increments, on the event-loop thread only; nothing Prometheus-specific
runs per request, and this module imports only the standard library, so a broker without
the HTTP listener loads no metrics library at all.
"""

from __future__ import annotations

import bisect

# Upper bounds (seconds) of the request-latency histogram's buckets (+Inf is implied).
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)


class _RequestStats:
    """One API key's figures: count, latency sum and per-bucket (non-cumulative) counts."""

    __slots__ = ("count", "seconds", "buckets")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * (len(LATENCY_BUCKETS_S) + 1)


class BrokerStats:
    """The counters the broker bumps while serving (see the module docstring)."""

    def __init__(self) -> None:
        self.requests: dict[int, _RequestStats] = {}
        self.errors: dict[tuple[int, int], int] = {}  # (api key, error code) -> count
        self.messages_in: dict[str, int] = {}
        self.bytes_in: dict[str, int] = {}
        self.bytes_out: dict[str, int] = {}
        self.connections_accepted = 0
        # SASL authentications per listener: (listener name, succeeded) -> count.
        self.authentications: dict[tuple[str, bool], int] = {}

    def request(self, api_key: int, error_code: int, elapsed_s: float) -> None:
        stats = self.requests.get(api_key)
        if stats is None:
            stats = self.requests[api_key] = _RequestStats()
        stats.count += 1
        stats.seconds += elapsed_s
        stats.buckets[bisect.bisect_left(LATENCY_BUCKETS_S, elapsed_s)] += 1
        if error_code:
            self.error(api_key, error_code)

    def error(self, api_key: int, error_code: int) -> None:
        key = (api_key, error_code)
        self.errors[key] = self.errors.get(key, 0) + 1

    def produced(self, topic: str, record_count: int, size_bytes: int) -> None:
        self.messages_in[topic] = self.messages_in.get(topic, 0) + record_count
        self.bytes_in[topic] = self.bytes_in.get(topic, 0) + size_bytes

    def authenticated(self, listener: str, succeeded: bool) -> None:
        key = (listener, succeeded)
        self.authentications[key] = self.authentications.get(key, 0) + 1

    def fetched(self, topic: str, size_bytes: int) -> None:
        self.bytes_out[topic] = self.bytes_out.get(topic, 0) + size_bytes

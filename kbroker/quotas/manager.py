"""Client quotas: the configured values and their enforcement (Kafka's ClientQuotaManager
and RequestQuotaManager for one broker).

Theory of operation
-------------------
Values: ``entities`` maps each quota entity to its keys and values, written to the
:class:`~kbroker.quotas.store.QuotaStore` before they take effect.  For enforcement each
enforced key (``producer_byte_rate``, ``consumer_byte_rate``, ``request_percentage``) has
its own index ``entity -> value``.

Which quota applies: for a client (user U from the session's principal, client id C from
the request header) and one key, the first entity of Kafka's precedence that has the key
wins::

    (user=U, client-id=C)  (user=U, client-id=<default>)  (user=U)
    (user=<default>, client-id=C)  (user=<default>, client-id=<default>)  (user=<default>)
    (client-id=C)  (client-id=<default>)

The winning level also names the *sensor*, the rate the client is measured by, as Kafka's
metric tags do: a user-and-client-id level measures each (U, C) apart; a user-only level
measures all of U's clients together; a client-id-only level all clients using C,
whatever their user.  A client no level covers has no quota for that key and records
nothing.  The resolution is cached per (key, U, C) and the cache emptied on every change.

Recording (per request, in ``Broker.dispatch``, only when some enforced key has a value:
``active``; otherwise the whole cost is that one attribute check): Produce records the
request's size against ``producer_byte_rate``; Fetch the bytes of records it returns
against ``consumer_byte_rate``; every request its handler's busy time (seconds x 100, a
percentage of one thread over the window) against ``request_percentage``, except a Produce
with acks=0.  Each gives a throttle time (:class:`~kbroker.quotas.rate.SampledRate`;
a request-time throttle is bounded by one window, as Kafka's RequestQuotaManager does);
the larger is the request's.  A throttled Fetch is answered without its records, and those
bytes are taken off its rate again (Kafka's KIP-219 behaviour).  The throttle time goes in
the response's ``throttle_time_ms`` and the connection reads no further request for that
long (KIP-219: the answer goes at once, the channel is muted).

Idle sensors are dropped once there are more than ``MAX_SENSORS``: a rate with no event
for all its windows measures the same as a new one, so dropping it changes no decision.
Loop thread only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kbroker.quotas.model import (
    CLIENT_ID,
    CONSUMER_BYTE_RATE,
    PRODUCER_BYTE_RATE,
    REQUEST_PERCENTAGE,
    USER,
    DescribeFilter,
    QuotaEntity,
)
from kbroker.quotas.rate import SampledRate
from kbroker.quotas.store import QuotaStore
from kbroker.wire.api import ApiKey

logger = logging.getLogger(__name__)

ENFORCED_KEYS = (PRODUCER_BYTE_RATE, CONSUMER_BYTE_RATE, REQUEST_PERCENTAGE)
# Kafka's quota types, the names of its throttle-time metrics (kafka.server:type=<type>).
QUOTA_TYPE = {
    PRODUCER_BYTE_RATE: "Produce",
    CONSUMER_BYTE_RATE: "Fetch",
    REQUEST_PERCENTAGE: "Request",
}
# Bound of live rate sensors (one per measured client or user); past it idle ones are dropped.
MAX_SENSORS = 10_000
# Bound of the resolution cache ((key, user, client id) -> sensor and limit); emptied when full.
MAX_RESOLVED = 65_536
# Bound of the (quota type, user, client id) label sets of the throttle metrics; past it a
# new client's throttling is counted under empty labels.
MAX_THROTTLE_SERIES = 10_000
# throttle_time_ms is an int32 on the wire; a bandwidth throttle is otherwise unbounded
# (1 B/s against a 1 MB request is months), so it is capped here.
MAX_THROTTLE_MS = 2**31 - 1
# Seconds of handler time -> Kafka's request-time units (percent of one thread).
PERCENT_PER_SECOND = 100.0

# (key, user tag, client-id tag): a sensor.
SensorKey = tuple[str, str, str]


def principal_user(principal: str) -> str:
    """The user name of a ``User:name`` principal (Kafka's ``KafkaPrincipal.getName``)."""
    return principal.partition(":")[2]


class ClientQuotas:
    """Quota values and the rates they are enforced on; see the module doc."""

    def __init__(self, data_dir: Path, samples: int, window_s: int) -> None:
        self.store = QuotaStore(data_dir)
        self.samples = samples
        self.window_ms = window_s * 1000
        self.entities: dict[QuotaEntity, dict[str, float]] = self.store.load()
        self._limits: dict[str, dict[QuotaEntity, float]] = {}
        self._resolved: dict[tuple[str, str, str], tuple[SensorKey, float] | None] = {}
        self._sensors: dict[SensorKey, SampledRate] = {}
        # (quota type, user, client id) -> [throttled responses, total throttle ms]
        self.throttles: dict[tuple[str, str, str], list[int]] = {}
        self.active = False
        self._index()

    # -- values ------------------------------------------------------------------------------

    def describe(self, entity_filter: DescribeFilter) -> list[tuple[QuotaEntity, dict[str, float]]]:
        return [
            (entity, dict(values))
            for entity, values in self.entities.items()
            if entity_filter.matches(entity)
        ]

    def alter(self, changes: Iterable[tuple[QuotaEntity, dict[str, float | None]]]) -> None:
        """Apply checked changes (a None value removes the key) and persist them: the file
        first, so a failed write changes nothing."""
        updated = {entity: dict(values) for entity, values in self.entities.items()}
        for entity, ops in changes:
            values = updated.setdefault(entity, {})
            for key, value in ops.items():
                if value is None:
                    values.pop(key, None)
                else:
                    values[key] = value
            if not values:
                del updated[entity]
        self.store.save(updated)
        self.entities = updated
        self._index()

    def _index(self) -> None:
        self._limits = {key: {} for key in ENFORCED_KEYS}
        for entity, values in self.entities.items():
            for key, value in values.items():
                if key in self._limits:
                    self._limits[key][entity] = value
        self._resolved.clear()
        self.active = any(self._limits.values())

    # -- enforcement ---------------------------------------------------------------------------

    def resolve(self, key: str, user: str, client_id: str) -> tuple[SensorKey, float] | None:
        """The sensor and limit of ``key`` for this client, or None (no quota)."""
        cache_key = (key, user, client_id)
        try:
            return self._resolved[cache_key]
        except KeyError:
            pass
        found: tuple[SensorKey, float] | None = None
        limits = self._limits[key]
        if limits:
            for entity, tags in _precedence(user, client_id):
                limit = limits.get(entity)
                if limit is not None:
                    found = ((key, *tags), limit)
                    break
        if len(self._resolved) >= MAX_RESOLVED:
            self._resolved.clear()
        self._resolved[cache_key] = found
        return found

    def record(
        self,
        key: str,
        user: str,
        client_id: str,
        value: float,
        now_ms: int,
        *,
        max_throttle_ms: int | None = None,
    ) -> int:
        """Record ``value`` for this client's ``key``; the throttle time in ms (0: within quota)."""
        resolved = self.resolve(key, user, client_id)
        if resolved is None:
            return 0
        sensor_key, limit = resolved
        rate = self._sensors.get(sensor_key)
        if rate is None:
            if len(self._sensors) >= MAX_SENSORS:
                self._drop_idle_sensors(now_ms)
            rate = self._sensors[sensor_key] = SampledRate(self.samples, self.window_ms)
        throttle_ms = rate.record_and_throttle_ms(value, limit, now_ms)
        if throttle_ms and logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "quota violated for %s: recorded %.0f at %d, rate %.0f over %d ms, throttle %d ms",
                sensor_key,
                value,
                now_ms,
                rate.measure(now_ms),
                rate.window_size_ms(now_ms),
                throttle_ms,
            )
        return min(throttle_ms, MAX_THROTTLE_MS if max_throttle_ms is None else max_throttle_ms)

    def unrecord(self, key: str, user: str, client_id: str, value: float, now_ms: int) -> None:
        """Take ``value`` off this client's rate (a throttled Fetch returned nothing)."""
        resolved = self.resolve(key, user, client_id)
        if resolved is not None:
            rate = self._sensors.get(resolved[0])
            if rate is not None:
                rate.record(-value, now_ms)

    def rate(self, key: str, user: str, client_id: str, now_ms: int) -> float | None:
        """This client's measured rate of ``key`` (None: no quota applies)."""
        resolved = self.resolve(key, user, client_id)
        if resolved is None:
            return None
        rate = self._sensors.get(resolved[0])
        return 0.0 if rate is None else rate.measure(now_ms)

    def max_value_in_window(self, key: str, principal: str, client_id: str | None) -> int:
        """The most one request may record without being throttled for sure (Kafka's
        maxValueInQuotaWindow: quota x (windows - 1) x window); a large int if no quota."""
        resolved = self.resolve(key, principal_user(principal), client_id or "")
        if resolved is None:
            return 2**31 - 1
        return int(resolved[1] * (self.samples - 1) * self.window_ms / 1000)

    def measured_rates(self, now_ms: int) -> dict[SensorKey, float]:
        """Every live sensor's rate now (for the metrics endpoint)."""
        return {sensor_key: rate.measure(now_ms) for sensor_key, rate in self._sensors.items()}

    def _drop_idle_sensors(self, now_ms: int) -> None:
        idle_ms = self.samples * self.window_ms
        for sensor_key in [
            k for k, r in self._sensors.items() if now_ms - r.last_record_ms >= idle_ms
        ]:
            del self._sensors[sensor_key]

    def throttle_request(
        self,
        api_key: int,
        request: Any,
        response: Any,
        principal: str,
        client_id: str | None,
        request_bytes: int,
        busy_s: float,
        now_ms: int,
    ) -> int:
        """Record one answered request against every quota that applies; its throttle time in
        ms (0: not throttled).  A throttled Fetch ``response`` is emptied of its records."""
        user = principal_user(principal)
        cid = client_id or ""
        bandwidth_key = None
        bandwidth_ms = request_ms = 0
        fetched_bytes = 0
        if api_key == ApiKey.PRODUCE:
            bandwidth_key = PRODUCER_BYTE_RATE
            bandwidth_ms = self.record(PRODUCER_BYTE_RATE, user, cid, request_bytes, now_ms)
        elif api_key == ApiKey.FETCH and response is not None:
            bandwidth_key = CONSUMER_BYTE_RATE
            fetched_bytes = _fetched_bytes(response)
            bandwidth_ms = self.record(CONSUMER_BYTE_RATE, user, cid, fetched_bytes, now_ms)
        if not (api_key == ApiKey.PRODUCE and request.acks == 0):
            request_ms = self.record(
                REQUEST_PERCENTAGE,
                user,
                cid,
                busy_s * PERCENT_PER_SECOND,
                now_ms,
                max_throttle_ms=self.window_ms,
            )
        throttle_ms = max(bandwidth_ms, request_ms)
        if throttle_ms <= 0:
            return 0
        if bandwidth_key == CONSUMER_BYTE_RATE:
            self.unrecord(CONSUMER_BYTE_RATE, user, cid, fetched_bytes, now_ms)
            response.responses = []
        key = (
            bandwidth_key
            if bandwidth_key is not None and bandwidth_ms > request_ms
            else REQUEST_PERCENTAGE
        )
        self._count_throttle(key, user, cid, throttle_ms)
        return throttle_ms

    def _count_throttle(self, key: str, user: str, client_id: str, throttle_ms: int) -> None:
        resolved = self.resolve(key, user, client_id)
        tags = ("", "") if resolved is None else resolved[0][1:]
        series = (QUOTA_TYPE[key], *tags)
        counts = self.throttles.get(series)
        if counts is None:
            if len(self.throttles) >= MAX_THROTTLE_SERIES:
                series = (QUOTA_TYPE[key], "", "")
                counts = self.throttles.setdefault(series, [0, 0])
            else:
                counts = self.throttles[series] = [0, 0]
        counts[0] += 1
        counts[1] += throttle_ms


def _precedence(user: str, client_id: str) -> list[tuple[QuotaEntity, tuple[str, str]]]:
    """Kafka's eight levels for (user, client id), most specific first, each with the
    (user, client-id) tags of the sensor it measures by."""
    both = (user, client_id)
    return [
        (((CLIENT_ID, client_id), (USER, user)), both),
        (((CLIENT_ID, None), (USER, user)), both),
        (((USER, user),), (user, "")),
        (((CLIENT_ID, client_id), (USER, None)), both),
        (((CLIENT_ID, None), (USER, None)), both),
        (((USER, None),), (user, "")),
        (((CLIENT_ID, client_id),), ("", client_id)),
        (((CLIENT_ID, None),), ("", client_id)),
    ]


def _fetched_bytes(response: Any) -> int:
    """Bytes of records in a Fetch response (what Kafka's fetch quota counts, give or take
    the response's few framing bytes)."""
    total = 0
    for topic in response.responses:
        for partition in topic.partitions:
            records = partition.records
            if records:
                total += len(records)
    return total

"""Client telemetry (KIP-714): which metrics each client is asked to push, and what it pushed.

Theory of operation
-------------------
A client asks GetTelemetrySubscriptions with its instance id (the zero UUID the first time:
the broker assigns one).  The broker keeps a :class:`ClientInstance` per id: the client's
facts (instance id, client id, software name and version from ApiVersions, source address
and port), and its subscription, computed from the CLIENT_METRICS subscriptions
(``kbroker.client_metrics``) whose ``match`` it fully matches: the union of their metric
prefixes (``*`` alone if any asks for all), the smallest of their intervals (300 s when
none matches, with no metrics: the client then pushes nothing) and a subscription id
derived from both and the instance id.  When the subscriptions change (the store's
``version``), an instance's subscription is recomputed on its next request, which gives
it a new id: a push with the old one is UNKNOWN_SUBSCRIPTION_ID and the client asks again.

Kafka's pacing: a GetTelemetrySubscriptions sooner than the push interval after the
instance's last request, or a PushTelemetry sooner than that after the last push with no
GetTelemetrySubscriptions in between, is THROTTLING_QUOTA_EXCEEDED (a terminating push is
always accepted; after it the instance accepts no push: INVALID_REQUEST).  A push must
carry the current subscription id, a compression type the broker offered (none, gzip,
snappy, lz4, zstd) and at most ``telemetry.max.bytes``.

A push's payload is an OTLP ``MetricsData`` protobuf (decoded with the maintained
``opentelemetry-proto`` bindings), compressed as a record batch would be.  Its gauge and
sum points are kept per (instance, metric name, attributes): a gauge or a cumulative sum
replaces the value, a delta sum (the broker asks for delta temporality) adds to it; the
metrics endpoint shows them (``kbroker.metrics``).  A payload that does not decode is
INVALID_RECORD.  Instances idle for three push intervals are forgotten with their values;
the number of instances and of kept series are bounded (``MAX_INSTANCES``, ``MAX_SERIES``).
Loop thread only.
"""

from __future__ import annotations

import base64
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

from kbroker.client_metrics import ALL_METRICS, DEFAULT_INTERVAL_MS, ClientMetricsStore
from kbroker.wire.compression import decompress
from kbroker.wire.errors import ErrorCode
from kbroker.wire.exceptions import DecodeError

# Compression types offered, in Kafka's order of preference (zstd, lz4, gzip, snappy).
ACCEPTED_COMPRESSION_TYPES = [4, 3, 1, 2]
_ACCEPTED = {0, *ACCEPTED_COMPRESSION_TYPES}
ZERO_UUID = uuid.UUID(int=0)
RESERVED_UUIDS = {ZERO_UUID, uuid.UUID(int=1)}
# Bound of the client instances kept (each a few hundred bytes); past it the longest idle go.
MAX_INSTANCES = 10_000
# Bound of the metric series kept for the metrics endpoint; points past it are dropped.
MAX_SERIES = 50_000
# An instance idle for this many push intervals is forgotten (Kafka's cache TTL).
EXPIRY_INTERVALS = 3
_DELTA = 1  # OTLP AGGREGATION_TEMPORALITY_DELTA
# A push may decompress to this many times telemetry.max.bytes (OTLP metrics compress about
# 3-5x; a larger ratio is a decompression bomb and the push is INVALID_RECORD).
MAX_DECOMPRESSION_RATIO = 64

# (client instance id, metric name, sorted attribute pairs)
SeriesKey = tuple[str, str, tuple[tuple[str, str], ...]]


class TelemetryError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def kafka_uuid(value: uuid.UUID) -> str:
    """Kafka's ``Uuid.toString``: URL-safe base64 of the 16 bytes, no padding."""
    return base64.urlsafe_b64encode(value.bytes).rstrip(b"=").decode()


@dataclass(slots=True)
class ClientInstance:
    instance_id: uuid.UUID
    facts: dict[str, str]
    version: int = -1  # the subscriptions' version this instance's subscription was computed from
    subscription_id: int = 0
    metrics: list[str] = field(default_factory=list)
    interval_ms: int = DEFAULT_INTERVAL_MS
    last_get_ms: int = 0
    last_push_ms: int = 0
    last_seen_ms: int = 0
    terminating: bool = False
    last_error: int = 0  # the error of the instance's last request (Kafka's lastKnownError)


@dataclass(slots=True)
class Series:
    kind: str  # "gauge" or "counter"
    value: float
    client_id: str


class TelemetryManager:
    """Client instances and their pushed metrics; see the module doc."""

    def __init__(self, store: ClientMetricsStore, max_bytes: int) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.instances: dict[uuid.UUID, ClientInstance] = {}
        self.series: dict[SeriesKey, Series] = {}
        self.dropped_points = 0

    def instance(self, instance_id: uuid.UUID, facts: dict[str, str], now_ms: int) -> ClientInstance:
        found = self.instances.get(instance_id)
        if found is None:
            if len(self.instances) >= MAX_INSTANCES:
                self.expire(now_ms, force=True)
            found = self.instances[instance_id] = ClientInstance(instance_id, {**facts, "client_instance_id": kafka_uuid(instance_id)})
        if found.version != self.store.version:
            if found.version != -1:  # the subscriptions changed: Kafka re-creates the instance
                found.last_get_ms = found.last_push_ms = 0
                found.terminating = False
            self._subscribe(found)
        found.last_seen_ms = now_ms
        return found

    def _subscribe(self, instance: ClientInstance) -> None:
        """Kafka's createClientInstance: the matching subscriptions' metrics and interval."""
        metrics: set[str] = set()
        interval_ms = DEFAULT_INTERVAL_MS
        everything = False
        for subscription in self.store.subscriptions.values():
            if subscription.matches(instance.facts):
                everything = everything or ALL_METRICS in subscription.metrics
                metrics.update(subscription.metrics)
                interval_ms = min(interval_ms, subscription.interval_ms)
        if everything:
            metrics = {ALL_METRICS}
        instance.metrics = sorted(metrics)
        instance.interval_ms = interval_ms
        digest = f"{','.join(instance.metrics)}|{interval_ms}|{instance.instance_id}".encode()
        instance.subscription_id = zlib.crc32(digest) - (1 << 31)  # an int32
        instance.version = self.store.version

    def get_subscriptions(self, instance_id: uuid.UUID | None, facts: dict[str, str], now_ms: int) -> ClientInstance:
        """The instance to answer with; TelemetryError if it asks too soon."""
        if instance_id is None or instance_id == ZERO_UUID:
            instance_id = uuid.uuid4()
        instance = self.instance(instance_id, facts, now_ms)
        if now_ms - max(instance.last_get_ms, instance.last_push_ms) >= instance.interval_ms:
            instance.last_get_ms = now_ms
        elif instance.last_error not in (ErrorCode.UNKNOWN_SUBSCRIPTION_ID, ErrorCode.UNSUPPORTED_COMPRESSION_TYPE):
            # too soon, unless the client was told its subscription or compression is wrong
            instance.last_error = ErrorCode.THROTTLING_QUOTA_EXCEEDED
            raise TelemetryError(
                ErrorCode.THROTTLING_QUOTA_EXCEEDED,
                f"Request from the client [{kafka_uuid(instance_id)}] arrived before the next push interval time",
            )
        instance.last_error = ErrorCode.NONE
        return instance

    def push(
        self, instance_id: uuid.UUID, facts: dict[str, str], subscription_id: int, terminating: bool,
        compression_type: int, metrics: bytes | memoryview, now_ms: int,
    ) -> None:
        """Check and keep one push; TelemetryError as Kafka refuses it."""
        if instance_id in RESERVED_UUIDS:
            raise TelemetryError(ErrorCode.INVALID_REQUEST, f"Invalid request from the client [{kafka_uuid(instance_id)}], invalid client instance id")
        instance = self.instance(instance_id, facts, now_ms)
        try:
            self._check_push(instance, subscription_id, terminating, compression_type, metrics, now_ms)
        except TelemetryError as exc:
            instance.last_error = exc.code
            raise
        instance.last_error = ErrorCode.NONE

    def _check_push(
        self, instance: ClientInstance, subscription_id: int, terminating: bool, compression_type: int,
        metrics: bytes | memoryview, now_ms: int,
    ) -> None:
        instance_id = instance.instance_id
        if instance.terminating:
            raise TelemetryError(
                ErrorCode.INVALID_REQUEST,
                f"Client [{kafka_uuid(instance_id)}] sent the previous request with state terminating to TRUE, can not accept any requests after that",
            )
        if not self._may_push(instance, now_ms) and not terminating:
            raise TelemetryError(
                ErrorCode.THROTTLING_QUOTA_EXCEEDED,
                f"Request from the client [{kafka_uuid(instance_id)}] arrived before the next push interval time",
            )
        if subscription_id != instance.subscription_id:
            raise TelemetryError(ErrorCode.UNKNOWN_SUBSCRIPTION_ID, f"Unknown client subscription id for the client [{kafka_uuid(instance_id)}]")
        if compression_type not in _ACCEPTED:
            raise TelemetryError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"Unknown compression type [{compression_type}] is received in telemetry request")
        if len(metrics) > self.max_bytes:
            raise TelemetryError(ErrorCode.TELEMETRY_TOO_LARGE, f"Telemetry request is larger than the maximum allowed size [{self.max_bytes}]")
        instance.terminating = terminating
        if len(metrics):
            try:
                self._keep(instance, decode_metrics(compression_type, metrics, self.max_bytes))
            except (DecodeError, ValueError) as exc:
                raise TelemetryError(ErrorCode.INVALID_RECORD, f"Telemetry metrics could not be decoded: {exc}") from None

    @staticmethod
    def _may_push(instance: ClientInstance, now_ms: int) -> bool:
        """Kafka's maybeUpdatePushRequestTimestamp."""
        can = instance.last_get_ms > instance.last_push_ms
        if not can:
            can = now_ms - max(instance.last_get_ms, instance.last_push_ms) >= instance.interval_ms
        if can:
            instance.last_push_ms = now_ms
        return can

    def _keep(self, instance: ClientInstance, metrics_data: Any) -> None:
        label = kafka_uuid(instance.instance_id)
        client_id = instance.facts.get("client_id", "")
        for resource_metrics in metrics_data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    if kind == "gauge":
                        points, counter, delta = metric.gauge.data_points, False, False
                    elif kind == "sum":
                        points, counter, delta = metric.sum.data_points, True, metric.sum.aggregation_temporality == _DELTA
                    else:
                        continue  # histograms and summaries: not kept
                    for point in points:
                        value = float(point.as_double if point.WhichOneof("value") == "as_double" else point.as_int)
                        attributes = tuple(sorted((a.key, _attribute_text(a.value)) for a in point.attributes))
                        self._set((label, metric.name, attributes), "counter" if counter else "gauge", value, delta, client_id)

    def _set(self, key: SeriesKey, kind: str, value: float, add: bool, client_id: str) -> None:
        series = self.series.get(key)
        if series is None:
            if len(self.series) >= MAX_SERIES:
                self.dropped_points += 1
                return
            self.series[key] = Series(kind, value, client_id)
        elif add:
            series.value += value
        else:
            series.value = value

    def expire(self, now_ms: int, force: bool = False) -> None:
        """Forget instances idle for EXPIRY_INTERVALS push intervals (and, with ``force``,
        the longest idle tenth when the table is full), with their series."""
        gone = {i for i, inst in self.instances.items() if now_ms - inst.last_seen_ms >= EXPIRY_INTERVALS * inst.interval_ms}
        if force and not gone:
            by_age = sorted(self.instances.values(), key=lambda inst: inst.last_seen_ms)
            gone = {inst.instance_id for inst in by_age[: max(len(by_age) // 10, 1)]}
        if not gone:
            return
        labels = {kafka_uuid(i) for i in gone}
        for instance_id in gone:
            del self.instances[instance_id]
        for key in [k for k in self.series if k[0] in labels]:
            del self.series[key]


def decode_metrics(compression_type: int, payload: bytes | memoryview, max_bytes: int) -> Any:
    """The OTLP ``MetricsData`` in a push (decompressed first); DecodeError/ValueError if not."""
    from google.protobuf.message import DecodeError as ProtobufDecodeError
    from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData

    raw = decompress(compression_type, payload, max_bytes=max_bytes * MAX_DECOMPRESSION_RATIO)
    data = MetricsData()
    try:
        data.ParseFromString(raw)
    except ProtobufDecodeError as exc:
        raise ValueError(str(exc)) from None
    return data


def _attribute_text(value: Any) -> str:
    kind = value.WhichOneof("value")
    return "" if kind is None else str(getattr(value, kind))


def client_facts(client_id: str | None, session: Any, peer: str) -> dict[str, str]:
    """The facts a ``match`` selector tests (the instance id is added by the manager)."""
    host, _, port = peer.rpartition(":")
    return {
        "client_id": client_id or "",
        "client_software_name": session.client_software_name,
        "client_software_version": session.client_software_version,
        "client_source_address": session.client_host or host,
        "client_source_port": port,
    }

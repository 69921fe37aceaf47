"""Broker metrics: cheap counters on the hot path, folded into Prometheus at scrape time.

Theory of operation: the request path only does plain ``dict``/``int`` increments on a
``kbroker.stats.BrokerStats`` (one per broker, touched on the event-loop thread only; that
module imports no metrics library, and this one is imported only with the HTTP listener).  Nothing
Prometheus-specific runs per request.  A scrape of ``/metrics`` calls
:meth:`BrokerCollector.collect`, which turns those counters into metric families and reads
the gauges that are cheaper to compute on demand than to maintain (partition offsets and
sizes, consumer-group lag, open connections) straight from the broker's state.  Each broker
has its own ``CollectorRegistry``, so several in-process brokers do not clash.

Names follow Kafka's JMX names in the form the Prometheus JMX exporter gives them
(``kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=T`` ->
``kafka_server_brokertopicmetrics_messagesin_total{topic="T"}``), and kafka-exporter's
``kafka_consumergroup_lag`` for lag.  Latency is a histogram in seconds (Prometheus units)
rather than the JMX ``TotalTimeMs`` percentiles.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from kbroker.clock import now_ms
from kbroker.quotas.manager import QUOTA_TYPE
from kbroker.quotas.model import CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE
from kbroker.stats import LATENCY_BUCKETS_S, BrokerStats
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode

if TYPE_CHECKING:
    from kbroker.server import Broker

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Kafka's quota-rate attribute per enforced key: (metric name suffix, help).
QUOTA_RATE_METRICS = {
    PRODUCER_BYTE_RATE: ("byte_rate", "Bytes per second produced, as the producer_byte_rate quota measures them."),
    CONSUMER_BYTE_RATE: ("byte_rate", "Bytes per second fetched, as the consumer_byte_rate quota measures them."),
    REQUEST_PERCENTAGE: ("request_time", "Percent of one thread's time used, as the request_percentage quota measures it."),
}


def _prometheus_name(name: str) -> str:
    """A metric or label name made of Prometheus' characters (others become ``_``)."""
    out = re.sub(r"[^a-zA-Z0-9_]", "_", name)
    return out if out and not out[0].isdigit() else f"_{out}"


def request_name(api_key: int) -> str:
    """Kafka's request name for an API key (``OFFSET_COMMIT`` -> ``OffsetCommit``)."""
    try:
        return "".join(part.capitalize() for part in ApiKey(api_key).name.split("_"))
    except ValueError:
        return str(api_key)


def error_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return str(code)


def _counter(name: str, doc: str, label: str, values: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


class BrokerCollector(Collector):
    """Turns a broker's :class:`BrokerStats` and state into metric families per scrape."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        # Set by the HTTP listener while it runs.
        self.probe: LoopLagProbe | None = None

    def collect(self) -> Iterator[Metric]:
        stats = self.broker.stats
        yield from self._requests(stats)
        yield _counter("kafka_server_brokertopicmetrics_messagesin", "Records appended per topic (from batch headers).", "topic", stats.messages_in)
        yield _counter("kafka_server_brokertopicmetrics_bytesin", "Record-batch bytes appended per topic.", "topic", stats.bytes_in)
        yield _counter("kafka_server_brokertopicmetrics_bytesout", "Record-batch bytes returned by Fetch per topic.", "topic", stats.bytes_out)
        connections = GaugeMetricFamily("kafka_server_socketservermetrics_connection_count", "Open Kafka-protocol connections.")
        connections.add_metric([], self.broker.connection_count)
        yield connections
        yield CounterMetricFamily(
            "kafka_server_socketservermetrics_connection_creation", "Kafka-protocol connections accepted.", value=stats.connections_accepted
        )
        auth_ok = CounterMetricFamily(
            "kafka_server_socketservermetrics_successful_authentication", "SASL authentications that succeeded.", labels=["listener"]
        )
        auth_failed = CounterMetricFamily(
            "kafka_server_socketservermetrics_failed_authentication", "SASL authentications that failed.", labels=["listener"]
        )
        for (listener, succeeded), n in sorted(stats.authentications.items()):
            (auth_ok if succeeded else auth_failed).add_metric([listener], n)
        yield auth_ok
        yield auth_failed
        yield from self._memory()
        yield from self._partitions()
        yield self._lag()
        yield from self._loop_lag()
        yield from self._cleaner()
        yield from self._quotas()
        yield from self._client_telemetry()

    def _client_telemetry(self) -> Iterator[Metric]:
        """Metrics clients pushed (KIP-714, ``kbroker.telemetry``), under their OTLP names made
        Prometheus-safe (``org.apache.kafka.producer.node.request.latency.avg`` ->
        ``org_apache_kafka_producer_node_request_latency_avg``), labelled with the client's
        instance id, its client id and the point's attributes."""
        telemetry = self.broker.telemetry_if_started
        if telemetry is None:
            return
        telemetry.expire(now_ms())
        families: dict[str, Metric] = {}
        for (instance_label, name, attributes), series in sorted(telemetry.series.items()):
            metric_name = _prometheus_name(name)
            family = families.get(metric_name)
            if family is None:
                family = families[metric_name] = Metric(metric_name, f"Pushed by clients as {name}.", series.kind)
            labels = {"client_instance_id": instance_label, "client_id": series.client_id}
            for key, value in attributes:
                label = _prometheus_name(key)
                labels[label if label not in labels else f"attribute_{label}"] = value
            family.add_sample(metric_name + ("_total" if series.kind == "counter" else ""), labels, series.value)
        yield from families.values()

    def _quotas(self) -> Iterator[Metric]:
        """Client-quota figures per quota type (Kafka's ``kafka.server:type=Produce|Fetch|Request``
        beans, labelled by the user and client-id of the quota's sensor, as Kafka tags them):
        throttle time handed out, throttled responses, and the rate each sensor measures now."""
        quotas = self.broker.quotas
        if quotas is None:
            return
        labels = ["user", "client_id"]
        throttle_ms: dict[str, CounterMetricFamily] = {}
        throttled: dict[str, CounterMetricFamily] = {}
        for quota_type in QUOTA_TYPE.values():
            prefix = f"kafka_server_{quota_type.lower()}"
            throttle_ms[quota_type] = CounterMetricFamily(
                f"{prefix}_throttle_time_ms", f"Milliseconds of throttle time given to {quota_type} quota violations.", labels=labels
            )
            throttled[quota_type] = CounterMetricFamily(
                f"{prefix}_throttled_requests", f"Responses throttled by a {quota_type} quota.", labels=labels
            )
        for (quota_type, user, client_id), (count, total_ms) in sorted(quotas.throttles.items()):
            throttle_ms[quota_type].add_metric([user, client_id], total_ms)
            throttled[quota_type].add_metric([user, client_id], count)
        yield from throttle_ms.values()
        yield from throttled.values()
        rates = {
            key: GaugeMetricFamily(f"kafka_server_{QUOTA_TYPE[key].lower()}_{name}", doc, labels=labels)
            for key, (name, doc) in QUOTA_RATE_METRICS.items()
        }
        for (key, user, client_id), measured in sorted(quotas.measured_rates(now_ms()).items()):
            rates[key].add_metric([user, client_id], measured)
        yield from rates.values()

    def _memory(self) -> Iterator[Metric]:
        """The request pool (queued.max.request.bytes) and the response budget
        (kbroker.queued.max.response.bytes): capacity (-1: unbounded) and bytes held."""
        requests, responses = self.broker.request_memory, self.broker.response_memory
        for name, doc, value in (
            ("kbroker_queued_request_capacity_bytes", "queued.max.request.bytes (-1: unbounded).", requests.capacity_bytes),
            ("kbroker_queued_request_bytes", "Request frame bytes held in the queued.max.request.bytes pool.", requests.used_bytes),
            ("kbroker_queued_response_capacity_bytes", "kbroker.queued.max.response.bytes (-1: unbounded).", responses.capacity_bytes),
            ("kbroker_queued_response_bytes", "Fetch answer bytes built and not yet taken by the kernel.", responses.used_bytes),
            ("kbroker_queued_response_peak_bytes", "The most Fetch answer bytes held at once since start.", responses.peak_bytes),
        ):
            yield GaugeMetricFamily(name, doc, value=value)
        yield CounterMetricFamily(
            "kbroker_queued_response_trimmed", "Fetch reads whose byte limit the response budget lowered.", value=responses.trimmed
        )

    def _loop_lag(self) -> Iterator[Metric]:
        probe = self.probe
        if probe is None:
            return
        last = GaugeMetricFamily("kbroker_eventloop_lag_seconds", "How late the last event-loop probe timer ran.")
        last.add_metric([], probe.last_s)
        worst = GaugeMetricFamily(
            "kbroker_eventloop_lag_max_seconds", "The latest any probe timer ran since the previous scrape."
        )
        worst.add_metric([], probe.take_max())
        yield last
        yield worst

    def _cleaner(self) -> Iterator[Metric]:
        cleaner = self.broker.topics.cleaner
        if cleaner is None or not cleaner.enabled:
            return
        yield CounterMetricFamily("kbroker_log_cleaner_passes", "Cleaning passes swapped in.", value=cleaner.passes_completed)
        yield CounterMetricFamily("kbroker_log_cleaner_failed_passes", "Cleaning passes that failed.", value=cleaner.passes_failed)
        yield CounterMetricFamily("kbroker_log_cleaner_read_bytes", "Bytes the cleaner read.", value=cleaner.bytes_read_total)
        yield CounterMetricFamily("kbroker_log_cleaner_written_bytes", "Bytes the cleaner wrote.", value=cleaner.bytes_written_total)
        recopy = GaugeMetricFamily("kafka_log_logcleaner_cleaner_recopy_percent", "Written as a percentage of read, last pass.")
        recopy.add_metric([], cleaner.last_recopy_percent)
        clean_time = GaugeMetricFamily("kafka_log_logcleaner_max_clean_time_secs", "Duration of the last pass in seconds.")
        clean_time.add_metric([], cleaner.last_clean_time_s)
        yield recopy
        yield clean_time

    def _requests(self, stats: BrokerStats) -> Iterator[Metric]:
        count = CounterMetricFamily("kafka_network_requestmetrics_requests", "Requests served per API.", labels=["request"])
        latency = HistogramMetricFamily(
            "kafka_network_requestmetrics_totaltime_seconds", "Time from decoded request to answer, per API.", labels=["request"]
        )
        for api_key, s in sorted(stats.requests.items()):
            name = request_name(api_key)
            count.add_metric([name], s.count)
            cumulative, buckets = 0, []
            for bound, n in zip((*map(str, LATENCY_BUCKETS_S), "+Inf"), s.buckets):
                cumulative += n
                buckets.append((bound, cumulative))
            latency.add_metric([name], buckets, s.seconds)
        errors = CounterMetricFamily(
            "kafka_network_requestmetrics_errors", "Error codes answered per API (NONE left out).", labels=["request", "error"]
        )
        for (api_key, code), n in sorted(stats.errors.items()):
            errors.add_metric([request_name(api_key), error_name(code)], n)
        yield count
        yield latency
        yield errors

    def _partitions(self) -> Iterator[Metric]:
        labels = ["topic", "partition"]
        start = GaugeMetricFamily("kafka_log_log_logstartoffset", "First offset of the partition's log.", labels=labels)
        end = GaugeMetricFamily("kafka_log_log_logendoffset", "Next offset the partition's log assigns.", labels=labels)
        size = GaugeMetricFamily("kafka_log_log_size", "Bytes in the partition's segments.", labels=labels)
        segments = GaugeMetricFamily("kafka_log_log_numlogsegments", "Segments of the partition's log.", labels=labels)
        logs = self.broker.topics.logs
        for (topic, partition), log in sorted(logs.logs.items() if logs is not None else ()):
            key = [topic, str(partition)]
            start.add_metric(key, log.log_start_offset)
            end.add_metric(key, log.log_end_offset)
            size.add_metric(key, log.size_bytes)
            segments.add_metric(key, len(log.segments))
        yield from (start, end, size, segments)

    def _lag(self) -> Metric:
        """High watermark minus committed offset, for every committed partition of every group
        (members or not), as kafka-exporter reports it."""
        lag = GaugeMetricFamily(
            "kafka_consumergroup_lag", "High watermark minus the group's committed offset.", labels=["consumergroup", "topic", "partition"]
        )
        runtime = self.broker.group_runtime_if_started
        coordinator = runtime.coordinator if runtime is not None else None
        if coordinator is None:
            return lag
        for group, topics in sorted(coordinator.offsets.store.offsets.items()):
            for topic, partitions in sorted(topics.items()):
                for partition, committed in sorted(partitions.items()):
                    log = self.broker.topics.log(topic, partition)
                    if log is not None:
                        lag.add_metric([group, topic, str(partition)], max(log.high_watermark - committed.committed_offset, 0))
        return lag


class LoopLagProbe:
    """Measures event-loop lag: a timer due every ``interval_s`` notes how late it ran.

    A loop blocked for B seconds runs the pending probe at least B - interval_s late, so
    a stall longer than the interval shows in ``max`` whatever its phase."""

    # Four probes a second: a few microseconds of loop time each, and stalls of more than
    # 0.25 s cannot hide between two probes.
    INTERVAL_S = 0.25

    def __init__(self, loop: asyncio.AbstractEventLoop, interval_s: float = INTERVAL_S) -> None:
        self.loop = loop
        self.interval_s = interval_s
        self.last_s = 0.0
        self._max_s = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._schedule()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self) -> None:
        due = self.loop.time() + self.interval_s
        self._handle = self.loop.call_at(due, self._fire, due)

    def _fire(self, due: float) -> None:
        self.observe(max(self.loop.time() - due, 0.0))
        self._schedule()

    def observe(self, lag_s: float) -> None:
        self.last_s = lag_s
        self._max_s = max(self._max_s, lag_s)

    def take_max(self) -> float:
        """The largest lag since the previous call (0.0 if no probe ran since)."""
        worst, self._max_s = self._max_s, 0.0
        return worst


def new_registry(broker: Broker) -> tuple[CollectorRegistry, BrokerCollector]:
    registry = CollectorRegistry(auto_describe=False)
    collector = BrokerCollector(broker)
    registry.register(collector)
    return registry, collector


def exposition(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)

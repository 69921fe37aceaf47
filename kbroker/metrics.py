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

from kbroker.stats import LATENCY_BUCKETS_S, BrokerStats
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode

if TYPE_CHECKING:
    from kbroker.server import Broker

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


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
        yield from self._partitions()
        yield self._lag()

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


def new_registry(broker: Broker) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BrokerCollector(broker))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)

"""/metrics figures beyond requests and topics: event-loop lag and the log cleaner's."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.create_topics_request import (
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
)
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.records import make_batch
from prometheus_client.parser import text_string_to_metric_families

from kbroker.metrics import LoopLagProbe
from kbroker.testing import BrokerThread

HTTP = {"kbroker.http.listen": "127.0.0.1:0"}
# Bounded wait for the cleaner's first pass (normally a second or two).
CLEANER_WAIT_S = 60.0


def _scrape(bt: BrokerThread) -> dict[str, float]:
    import urllib.request

    assert bt.broker is not None and bt.broker.http is not None
    with urllib.request.urlopen(bt.broker.http.url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples if not s.labels}


def test_loop_lag_probe_sees_a_blocked_loop() -> None:
    """A loop blocked for 1 s runs the probe's pending timer at least 0.75 s late (the
    interval is 0.25 s), and the max is reset by reading it."""

    async def run() -> tuple[float, float]:
        probe = LoopLagProbe(asyncio.get_running_loop())
        probe.start()
        try:
            await asyncio.sleep(0.3)  # the probe has run at least once and re-armed
            time.sleep(1.0)  # block the loop
            await asyncio.sleep(0.05)  # let the late timer run
            first = probe.take_max()
            return first, probe.take_max()
        finally:
            probe.stop()

    first, second = asyncio.run(run())
    assert first >= 0.7
    assert second == 0.0  # reading it reset the max, and no probe ran in between


def test_metrics_report_loop_lag_and_cleaner_figures(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data", {**HTTP, "log.cleaner.backoff.ms": "0"})
    bt.start()
    client = RawClient(bt.address)
    try:
        before = _scrape(bt)
        assert "kbroker_eventloop_lag_seconds" in before and "kbroker_eventloop_lag_max_seconds" in before
        assert before["kbroker_log_cleaner_passes_total"] == 0
        topic = CreatableTopic(
            name="c", num_partitions=1, replication_factor=-1,
            configs=[CreatableTopicConfig(name=k, value=v) for k, v in {"cleanup.policy": "compact", "internal.segment.bytes": "2000"}.items()],
        )
        assert client.request(CreateTopicsRequest(topics=[topic]), 7).topics[0].error_code == ErrorCode.NONE
        for i in range(300):
            batch = make_batch([b"v%d" % i], [b"k%d" % (i % 5)])
            produce = ProduceRequest(
                acks=-1, timeout_ms=5000,
                topic_data=[TopicProduceData(name="c", partition_data=[PartitionProduceData(index=0, records=bytes(batch))])],
            )
            assert client.request(produce, 9).responses[0].partition_responses[0].error_code == ErrorCode.NONE
        broker = bt.broker
        assert broker is not None and broker.topics.cleaner is not None
        cleaner = broker.topics.cleaner
        deadline = time.monotonic() + CLEANER_WAIT_S
        while cleaner.passes_completed == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert cleaner.passes_completed >= 1, cleaner.last_error
        after = _scrape(bt)
        assert after["kbroker_log_cleaner_passes_total"] == cleaner.passes_completed
        assert after["kbroker_log_cleaner_failed_passes_total"] == 0
        read, written = after["kbroker_log_cleaner_read_bytes_total"], after["kbroker_log_cleaner_written_bytes_total"]
        # 5 live keys out of 300 records: the pass wrote far less than it read
        assert read > written > 0
        assert 0 < after["kafka_log_logcleaner_cleaner_recopy_percent"] < 100
        assert after["kafka_log_logcleaner_max_clean_time_secs"] > 0
    finally:
        client.close()
        bt.close()

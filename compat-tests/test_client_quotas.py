"""Client quotas against a real broker process: AlterClientQuotas / DescribeClientQuotas as
kafka-python 3.0.12 encodes them, and confluent-kafka 2.16.1 producers and consumers really
slowed down by ``producer_byte_rate`` / ``consumer_byte_rate`` while unthrottled ones in the
same run are not (issue 12).

No admin client in the suite has a client-quota call: kafka-python 3.0.12's
KafkaAdminClient, confluent-kafka 2.16.1's AdminClient, aiokafka 0.14's and kafkajs 2.2.4's
admin have none.  kafka-python ships the protocol messages (``kafka.protocol.admin``), so
they are sent through its admin client's own connection manager, the way its admin methods
send theirs: kafka-python's encoding and decoding over TCP, nothing of ours.
"""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from helpers import unique_topic
from kafka import KafkaAdminClient
from kafka.protocol.admin import AlterClientQuotasRequest, DescribeClientQuotasRequest

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

MB = 1024 * 1024
INVALID_REQUEST, UNSUPPORTED_VERSION = 42, 35
EXACT, DEFAULT, SPECIFIED = 0, 1, 2

# The measured run: offered rate, quota, how long, and the measured interval (the issue's
# figures: after Kafka's initial burst allowance, from 3 s to 10 s).
OFFERED_BYTES_PER_S = 10 * MB
QUOTA_BYTES_PER_S = 1 * MB
MESSAGE_BYTES = 100 * 1024
RUN_S = 10.0
MEASURE_FROM_S, MEASURE_TO_S = 3.0, 10.0
# Kafka's algorithm enforces the quota over its whole measured window (quota.window.num x
# quota.window.size.seconds, 11 s by default): a new client is measured as if idle for the
# windows it has not lived through, so it may burst about 10 x the quota in its first second,
# and then pays that burst back until the burst's sample leaves the window (about 11 s
# later).  With the defaults the 3-10 s interval is that payback (about 0.1 MB/s for 100 KB
# requests), so only an upper bound holds there.  With 2 windows the burst is at most 2 x
# the quota and is paid back by 3 s: from then on a throttled client must get close to its
# quota, from below as well (a lower bound that catches over-throttling).  (With 3 windows
# the 3 s sawtooth of bursts and paybacks made 7 s measure 1.12-1.27 x the quota.)
CONVERGE_SETTINGS = {"quota.window.num": "2"}
# The bound over 3-10 s with the default windows; with 2 windows the rate over those
# 7 s still swings with the phase of the 2 s sawtooth (1.05-1.21 x the quota measured), so
# the bounds there are about the quota from below and loose above.
MAX_RATIO = 1.3
CONVERGED_MIN_RATIO, CONVERGED_MAX_RATIO = 0.5, 1.5
# A consumer's throttled Fetches come back empty, so its rate over 7 s moves in steps of a
# whole fetch (0.63-0.88 x measured); its floor still catches the 10x over-throttling
# (0.1 x) that the floor is there for.
CONSUMER_CONVERGED_MIN_RATIO = 0.3


def kp_admin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="compat-kp-quotas", request_timeout_ms=10_000
    )


def kp_send(admin: KafkaAdminClient, request):  # type: ignore[no-untyped-def]
    """Send one protocol message with kafka-python's connection manager (any broker)."""

    async def send():  # type: ignore[no-untyped-def]
        return await admin._manager.send(request)

    return admin._manager.run(send)


def kp_alter(
    admin: KafkaAdminClient, entries: list[tuple[dict, dict]], validate_only: bool = False
) -> list[tuple[dict, int]]:
    entry = AlterClientQuotasRequest.EntryData
    request = AlterClientQuotasRequest(
        entries=[
            entry(
                entity=[entry.EntityData(entity_type=k, entity_name=n) for k, n in entity.items()],
                ops=[
                    entry.OpData(key=key, value=0.0 if v is None else float(v), remove=v is None)
                    for key, v in ops.items()
                ],
            )
            for entity, ops in entries
        ],
        validate_only=validate_only,
    )
    response = kp_send(admin, request)
    return [
        ({e.entity_type: e.entity_name for e in r.entity}, r.error_code) for r in response.entries
    ]


def kp_describe(
    admin: KafkaAdminClient, components: list[tuple[str, int, str | None]], strict: bool = False
):  # type: ignore[no-untyped-def]
    component = DescribeClientQuotasRequest.ComponentData
    request = DescribeClientQuotasRequest(
        components=[component(entity_type=k, match_type=m, match=n) for k, m, n in components],
        strict=strict,
    )
    response = kp_send(admin, request)
    if response.error_code:
        return response.error_code
    return {
        tuple(sorted((e.entity_type, e.entity_name) for e in entry.entity)): {
            v.key: v.value for v in entry.values
        }
        for entry in response.entries
    }


@pytest.mark.feature("quotas", client="kafka-python")
def test_kafka_python_alters_and_describes_client_quotas(broker) -> None:  # type: ignore[no-untyped-def]
    admin = kp_admin(broker.bootstrap)
    try:
        alice, app, default_user = (
            {"user": "alice"},
            {"user": "alice", "client-id": "app"},
            {"user": None},
        )
        assert kp_alter(
            admin,
            [
                (alice, {"producer_byte_rate": 1024}),
                (app, {"request_percentage": 25.5}),
                (default_user, {"consumer_byte_rate": 2048}),
            ],
        ) == [(alice, 0), (app, 0), (default_user, 0)]
        assert kp_describe(admin, [("user", EXACT, "alice")], strict=True) == {
            (("user", "alice"),): {"producer_byte_rate": 1024.0}
        }
        assert set(kp_describe(admin, [("user", SPECIFIED, None)])) == {
            (("user", "alice"),),
            (("client-id", "app"), ("user", "alice")),
            (("user", None),),
        }
        assert kp_describe(admin, [("user", DEFAULT, None)]) == {
            (("user", None),): {"consumer_byte_rate": 2048.0}
        }
        # validate_only, refused entries, removal
        assert kp_alter(admin, [(alice, {"producer_byte_rate": 1})], validate_only=True) == [
            (alice, 0)
        ]
        assert kp_alter(
            admin,
            [
                ({"group": "g"}, {"producer_byte_rate": 1}),
                ({"client-id": "c"}, {"producer_byte_rate": 1.5}),
            ],
        ) == [({"group": "g"}, UNSUPPORTED_VERSION), ({"client-id": "c"}, INVALID_REQUEST)]
        assert kp_alter(admin, [(alice, {"producer_byte_rate": None})]) == [(alice, 0)]
        assert kp_describe(admin, [("user", EXACT, "alice")], strict=True) == {}
        assert kp_describe(admin, [("user", EXACT, None)]) == INVALID_REQUEST
    finally:
        admin.close()


class PacedProducer:
    """A confluent-kafka producer offering ``OFFERED_BYTES_PER_S`` in ``MESSAGE_BYTES``
    messages for ``RUN_S``; notes when each delivery was reported."""

    def __init__(self, bootstrap: str, topic: str, client_id: str) -> None:
        self.topic = topic
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "client.id": client_id,
                "broker.address.family": "v4",
                "linger.ms": 5,
                "acks": 1,
                "queue.buffering.max.kbytes": 64 * 1024,  # bounds what is offered but not sent
                "message.timeout.ms": 60_000,
                "throttle_cb": self._on_throttle,
            }
        )
        self.delivered: list[tuple[float, int]] = []  # (seconds since start, bytes)
        self.errors: list[str] = []
        self.throttle_events: list[float] = []  # librdkafka's report of throttle_time_ms (s)
        self.offered_bytes = 0
        self.started = 0.0

    def _on_delivery(self, err, msg) -> None:  # type: ignore[no-untyped-def]
        if err is not None:
            self.errors.append(str(err))
        else:
            self.delivered.append((time.monotonic() - self.started, len(msg.value())))

    def _on_throttle(self, event) -> None:  # type: ignore[no-untyped-def]
        self.throttle_events.append(event.throttle_time)

    def run(self, started: float) -> None:
        self.started = started
        payload = b"q" * MESSAGE_BYTES
        interval_s = MESSAGE_BYTES / OFFERED_BYTES_PER_S
        sent = 0
        while (now := time.monotonic() - started) < RUN_S:
            due = int(now / interval_s) + 1  # messages due by now at the offered rate
            while sent < due:
                try:
                    self.producer.produce(self.topic, payload, callback=self._on_delivery)
                    self.offered_bytes += MESSAGE_BYTES
                except BufferError:
                    pass  # the producer's queue is full: this offer is dropped
                sent += 1
            self.producer.poll(0.005)
        self.producer.poll(0)

    def rate(self, start_s: float, end_s: float) -> float:
        """Delivered bytes per second whose delivery was reported in [start_s, end_s)."""
        return sum(n for at, n in self.delivered if start_s <= at < end_s) / (end_s - start_s)

    def close(self) -> None:
        self.producer.purge()  # the throttled producer's backlog would take minutes to send
        self.producer.flush(10)
        # the delivery callback refers back to this object: drop the producer now (it is
        # destroyed at once) rather than leave the cycle to the garbage collector
        del self.producer


def run_producers(bootstrap: str) -> tuple[PacedProducer, PacedProducer]:
    """A producer of client id "throttled" under ``QUOTA_BYTES_PER_S`` and a free one, both
    offering ``OFFERED_BYTES_PER_S`` for ``RUN_S`` at once (closed by the caller)."""
    topic = unique_topic("quota")
    confluent_admin = AdminClient({"bootstrap.servers": bootstrap, "broker.address.family": "v4"})
    confluent_admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(10)
    admin = kp_admin(bootstrap)
    try:
        assert kp_alter(
            admin, [({"client-id": "throttled"}, {"producer_byte_rate": QUOTA_BYTES_PER_S})]
        ) == [({"client-id": "throttled"}, 0)]
    finally:
        admin.close()
    throttled = PacedProducer(bootstrap, topic, "throttled")
    free = PacedProducer(bootstrap, topic, "free")
    started = time.monotonic()
    runners = [threading.Thread(target=p.run, args=(started,)) for p in (throttled, free)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(RUN_S + 5)
    assert not any(r.is_alive() for r in runners)
    return throttled, free


def check_producers(
    throttled: PacedProducer, free: PacedProducer, max_ratio: float
) -> tuple[float, str]:
    """The checks that hold for any quota window; the throttled rate and the figures."""
    assert throttled.errors == [] and free.errors == []
    throttled_rate = throttled.rate(MEASURE_FROM_S, MEASURE_TO_S)
    free_rate = free.rate(MEASURE_FROM_S, MEASURE_TO_S)
    figures = f"throttled {throttled_rate / MB:.2f} MB/s, unthrottled {free_rate / MB:.2f} MB/s, offered {OFFERED_BYTES_PER_S / MB:.0f} MB/s each"
    print(figures)
    # it did offer far more than its quota
    assert throttled.offered_bytes > 5 * QUOTA_BYTES_PER_S * RUN_S, figures
    assert throttled_rate <= max_ratio * QUOTA_BYTES_PER_S, figures
    assert free_rate >= 3 * max(throttled_rate, QUOTA_BYTES_PER_S), figures
    # librdkafka saw the throttle times in the Produce responses, for the throttled one only
    assert throttled.throttle_events and max(throttled.throttle_events) > 0, figures
    assert free.throttle_events == [], figures
    return throttled_rate, figures


@pytest.mark.feature("quotas", client="confluent-kafka")
def test_a_producer_over_producer_byte_rate_is_slowed_and_another_is_not(broker) -> None:  # type: ignore[no-untyped-def]
    throttled, free = run_producers(broker.bootstrap)
    try:
        check_producers(throttled, free, MAX_RATIO)
    finally:
        throttled.close()
        free.close()


@pytest.mark.feature("quotas", client="confluent-kafka")
def test_a_throttled_producer_converges_on_its_quota(broker_factory) -> None:  # type: ignore[no-untyped-def]
    """With a quota window short enough for the first burst to be paid back by 3 s, the
    throttled producer gets about its quota from 3 s to 10 s: neither more nor far less."""
    broker = broker_factory(CONVERGE_SETTINGS)
    throttled, free = run_producers(broker.bootstrap)
    try:
        throttled_rate, figures = check_producers(throttled, free, CONVERGED_MAX_RATIO)
        assert throttled_rate >= CONVERGED_MIN_RATIO * QUOTA_BYTES_PER_S, figures
    finally:
        throttled.close()
        free.close()


CONSUMED_MESSAGES = 240
CONSUMED_TOPIC_BYTES = CONSUMED_MESSAGES * MESSAGE_BYTES  # about 24 MB


def consume_for(
    bootstrap: str,
    topic: str,
    client_id: str,
    started: float,
    until_s: float,
    out: list[tuple[float, int]],
) -> None:
    """Read ``topic`` from the start with a confluent-kafka consumer until ``until_s`` or the
    end; (seconds since ``started``, bytes) per message."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            "group.id": f"{client_id}-{topic}",
            "broker.address.family": "v4",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        total = 0
        while (now := time.monotonic() - started) < until_s and total < CONSUMED_TOPIC_BYTES:
            msg = consumer.poll(0.1)
            if msg is not None and msg.error() is None:
                out.append((now, len(msg.value())))
                total += len(msg.value())
    finally:
        consumer.close()


def run_consumers(bootstrap: str, max_ratio: float) -> tuple[float, str]:
    """A consumer of client id "slow-reader" under ``QUOTA_BYTES_PER_S`` and a free one read
    the same ~24 MB topic at once; the checks that hold for any quota window; the slow
    reader's rate from 3 s to 10 s and the figures."""
    topic = unique_topic("quota-fetch")
    confluent_admin = AdminClient({"bootstrap.servers": bootstrap, "broker.address.family": "v4"})
    confluent_admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(10)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "broker.address.family": "v4", "linger.ms": 5}
    )
    for _ in range(CONSUMED_MESSAGES):
        producer.produce(topic, b"c" * MESSAGE_BYTES)
        producer.poll(0)
    assert producer.flush(30) == 0
    admin = kp_admin(bootstrap)
    try:
        assert kp_alter(
            admin, [({"client-id": "slow-reader"}, {"consumer_byte_rate": QUOTA_BYTES_PER_S})]
        ) == [({"client-id": "slow-reader"}, 0)]
    finally:
        admin.close()
    slow: list[tuple[float, int]] = []
    fast: list[tuple[float, int]] = []
    started = time.monotonic()
    readers = [
        threading.Thread(
            target=consume_for, args=(bootstrap, topic, "slow-reader", started, RUN_S, slow)
        ),
        threading.Thread(
            target=consume_for, args=(bootstrap, topic, "fast-reader", started, RUN_S, fast)
        ),
    ]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(RUN_S + 15)
    assert not any(r.is_alive() for r in readers)
    slow_rate = sum(n for at, n in slow if MEASURE_FROM_S <= at < MEASURE_TO_S) / (
        MEASURE_TO_S - MEASURE_FROM_S
    )
    fast_total = sum(n for _, n in fast)
    fast_rate = fast_total / (
        max(at for at, _ in fast) - min(at for at, _ in fast)
    )  # while it read
    figures = (
        f"quota'd consumer {slow_rate / MB:.2f} MB/s (3-10 s), {sum(n for _, n in slow) / MB:.1f} MB in all;"
        f" other {fast_rate / MB:.2f} MB/s, {fast_total / MB:.1f} MB by {max(at for at, _ in fast):.1f} s"
    )
    print(figures)
    assert fast_total == CONSUMED_TOPIC_BYTES, figures  # the unthrottled one read everything
    assert slow_rate <= max_ratio * QUOTA_BYTES_PER_S, figures
    assert sum(n for _, n in slow) < CONSUMED_TOPIC_BYTES, figures
    assert fast_rate >= 3 * max(slow_rate, QUOTA_BYTES_PER_S), figures
    return slow_rate, figures


@pytest.mark.feature("quotas", client="confluent-kafka")
def test_a_consumer_over_consumer_byte_rate_is_slowed_and_another_is_not(broker) -> None:  # type: ignore[no-untyped-def]
    run_consumers(broker.bootstrap, MAX_RATIO)


@pytest.mark.feature("quotas", client="confluent-kafka")
def test_a_throttled_consumer_converges_on_its_quota(broker_factory) -> None:  # type: ignore[no-untyped-def]
    """As for the producer: with 2 quota windows the slow reader gets about its quota from
    3 s to 10 s (a throttled Fetch is answered empty and its bytes taken off the rate)."""
    slow_rate, figures = run_consumers(
        broker_factory(CONVERGE_SETTINGS).bootstrap, CONVERGED_MAX_RATIO
    )
    assert slow_rate >= CONSUMER_CONVERGED_MIN_RATIO * QUOTA_BYTES_PER_S, figures

"""The ``kbroker`` pytest fixture other projects use: a real broker their clients can reach."""

from __future__ import annotations

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def test_fixture_serves_a_real_client(kbroker) -> None:
    producer = KafkaProducer(bootstrap_servers=kbroker.bootstrap)
    producer.send("plugin-topic", b"hello").get(timeout=10)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=kbroker.bootstrap, consumer_timeout_ms=5000)
    consumer.assign([TopicPartition("plugin-topic", 0)])
    consumer.seek_to_beginning()
    assert [m.value for m in consumer] == [b"hello"]
    consumer.close()


def test_restart_keeps_the_port_and_the_data(kbroker) -> None:
    producer = KafkaProducer(bootstrap_servers=kbroker.bootstrap)
    producer.send("kept", b"x").get(timeout=10)
    producer.close()
    before = kbroker.bootstrap
    kbroker.restart()
    assert kbroker.bootstrap == before
    consumer = KafkaConsumer(bootstrap_servers=kbroker.bootstrap, consumer_timeout_ms=5000)
    consumer.assign([TopicPartition("kept", 0)])
    consumer.seek_to_beginning()
    assert [m.value for m in consumer] == [b"x"]
    consumer.close()

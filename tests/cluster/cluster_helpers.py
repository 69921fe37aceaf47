"""Helpers of the cluster tests: raw requests to a chosen node."""

from __future__ import annotations

from typing import Any

from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.create_topics_request import (
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
)
from kbroker.wire.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.records import make_batch

from kbroker.testing import BrokerThread


def node_address(bt: BrokerThread, node_id: int) -> tuple[str, int]:
    node = next(n for n in bt.cluster_state()["nodes"] if n["id"] == node_id)
    return node["host"], node["port"]


def client_for(bt: BrokerThread, node_id: int) -> RawClient:
    return RawClient(node_address(bt, node_id))


def create_topic(
    bt: BrokerThread,
    name: str,
    partitions: int,
    replication_factor: int = -1,
    configs: dict[str, str] | None = None,
) -> Any:
    c = client_for(bt, 1)
    try:
        topic = CreatableTopic(
            name=name,
            num_partitions=partitions,
            replication_factor=replication_factor,
            configs=[CreatableTopicConfig(name=k, value=v) for k, v in (configs or {}).items()],
        )
        return c.request(CreateTopicsRequest(topics=[topic]), 7).topics[0]
    finally:
        c.close()


def partition_state(bt: BrokerThread, topic: str, partition: int) -> dict[str, Any]:
    result: dict[str, Any] = bt.cluster_state()["topics"][topic]["partitions"][partition]
    return result


def produce(
    c: RawClient,
    topic: str,
    partition: int,
    values: list[bytes],
    *,
    acks: int = -1,
    version: int = 10,
) -> Any:
    batch = bytes(make_batch(values))
    req = ProduceRequest(
        acks=acks,
        timeout_ms=5000,
        topic_data=[
            TopicProduceData(
                name=topic, partition_data=[PartitionProduceData(index=partition, records=batch)]
            )
        ],
    )
    return c.request(req, version)


def metadata(c: RawClient, topics: list[str], version: int = 12) -> Any:
    return c.request(
        MetadataRequest(topics=[MetadataRequestTopic(name=t) for t in topics]), version
    )


def other_node(leader: int, nodes: int = 3) -> int:
    return leader % nodes + 1


__all__ = [
    "ErrorCode",
    "client_for",
    "create_topic",
    "metadata",
    "node_address",
    "other_node",
    "partition_state",
    "produce",
]

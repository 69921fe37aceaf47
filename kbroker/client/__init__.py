"""A small synchronous Kafka client on ``kbroker.wire``, used by the admin CLI.

It speaks only the Kafka protocol (no kbroker-only behaviour), so it works against any broker.
"""

from kbroker.client.client import Client, ClusterInfo, PartitionInfo, TopicInfo, parse_bootstrap
from kbroker.client.connection import BrokerConnection, ClientError, KafkaError

__all__ = [
    "BrokerConnection",
    "Client",
    "ClientError",
    "ClusterInfo",
    "KafkaError",
    "PartitionInfo",
    "TopicInfo",
    "parse_bootstrap",
]

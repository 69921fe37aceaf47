"""kafkajs 2.2.4's admin against a real broker process: issue 4's topic, config and
cluster admin through ``js/driver.js admin-ops`` (CreateTopics v3, DeleteTopics v1,
CreatePartitions v1, DeleteRecords v1, DescribeConfigs v2, AlterConfigs v1; describeCluster
is built on Metadata).  Expected behaviour is Kafka 4.x's for a single-node cluster.
"""

from __future__ import annotations

import base64

import pytest
from helpers import unique_topic
from test_kafkajs import kafkajs, run_js  # noqa: F401  (kafkajs is a fixture)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5


def ops(bootstrap: str, *operations: dict) -> list[dict]:
    return list(run_js("admin-ops", {"bootstrap": bootstrap, "ops": list(operations)})["results"])


def ok(result: dict):
    assert "error" not in result, result
    return result.get("ok")


def create_error(result: dict) -> str:
    """The Kafka error name of a failed single-topic createTopics."""
    err = result["error"]
    return err["errors"][0]["type"] if err["errors"] else err["type"]


def entries(result: dict) -> dict[str, dict]:
    [resource] = ok(result)["resources"]
    assert resource["errorCode"] == 0, resource
    return {e["configName"]: e for e in resource["configEntries"]}


@pytest.mark.feature("admin", client="kafkajs")
def test_admin_topics_partitions_records_configs_cluster(broker_factory, kafkajs) -> None:  # noqa: F811
    broker = broker_factory(settings={"log.retention.ms": "7200000"})
    base = unique_topic("jsa")
    t = lambda suffix, **kw: {"topic": f"{base}-{suffix}", **kw}  # noqa: E731
    results = ops(
        broker.bootstrap,
        {"op": "create", "topics": [t("a", numPartitions=2, configEntries=[{"name": "segment.bytes", "value": "1048576"}])]},
        {"op": "create", "topics": [t("rf3", numPartitions=1, replicationFactor=3)]},
        {"op": "create", "topics": [t("cfg", numPartitions=1, configEntries=[{"name": "no.such.config", "value": "1"}])]},
        {"op": "create", "topics": [t("a", numPartitions=2)]},
        {"op": "create", "topics": [{"topic": "bad name", "numPartitions": 1}]},
        {"op": "create", "validateOnly": True, "topics": [t("dry", numPartitions=1)]},
        {"op": "list"},
        {"op": "describeConfigs", "type": "TOPIC", "name": f"{base}-a", "includeSynonyms": True},
        {"op": "partitions", "topicPartitions": [{"topic": f"{base}-a", "count": 4}]},
        {"op": "partitions", "topicPartitions": [{"topic": f"{base}-a", "count": 3}]},
        {"op": "metadata", "topics": [f"{base}-a"]},
        {"op": "cluster"},
        {"op": "delete", "topics": [unique_topic("jsa-never")]},
    )
    assert ok(results[0]) is True
    assert create_error(results[1]) == "INVALID_REPLICATION_FACTOR"
    assert create_error(results[2]) == "INVALID_CONFIG"
    # kafkajs turns TOPIC_ALREADY_EXISTS into a false result (createTopics: "false if the topic exists")
    assert ok(results[3]) is False
    assert create_error(results[4]) == "INVALID_TOPIC_EXCEPTION"
    assert "error" not in results[5]
    listed = set(ok(results[6]))
    assert f"{base}-a" in listed and not {f"{base}-rf3", f"{base}-cfg", "bad name", f"{base}-dry"} & listed

    cfg = entries(results[7])
    seg = cfg["segment.bytes"]
    assert (seg["configValue"], seg["configSource"], seg["readOnly"]) == ("1048576", DYNAMIC_TOPIC_CONFIG, False)
    assert [(s["configName"], s["configSource"]) for s in seg["configSynonyms"]] == [
        ("segment.bytes", DYNAMIC_TOPIC_CONFIG),
        ("log.segment.bytes", DEFAULT_CONFIG),
    ]
    assert (cfg["retention.ms"]["configValue"], cfg["retention.ms"]["configSource"]) == ("7200000", STATIC_BROKER_CONFIG)
    assert cfg["cleanup.policy"]["configSource"] == DEFAULT_CONFIG

    assert "error" not in results[8]
    assert results[9]["error"].get("type") == "INVALID_PARTITIONS", results[9]
    [md] = ok(results[10])["topics"]
    assert sorted(p["partitionId"] for p in md["partitions"]) == [0, 1, 2, 3]
    cluster = ok(results[11])
    assert cluster["clusterId"] and [b["nodeId"] for b in cluster["brokers"]] == [cluster["controller"]]
    # kafkajs retries UNKNOWN_TOPIC_OR_PARTITION, then gives up with its message
    err = results[12]["error"]
    assert err.get("type") == "UNKNOWN_TOPIC_OR_PARTITION" or "does not host this topic-partition" in err["message"], err

    # produce over all four partitions, then DeleteRecords on each partition with data
    msgs = [
        {"key": base64.b64encode(f"k{i}".encode()).decode(), "value": base64.b64encode(f"v{i}".encode()).decode(), "timestamp": None, "headers": []}
        for i in range(40)
    ]
    produced = run_js("produce", {"bootstrap": broker.bootstrap, "topic": f"{base}-a", "messages": msgs})["results"]
    assert {r["partition"] for r in produced} == {0, 1, 2, 3}, "keys spread over the new partitions too"
    [offsets] = ops(broker.bootstrap, {"op": "offsets", "topic": f"{base}-a"})
    highs = {o["partition"]: o["high"] for o in ok(offsets)}
    assert sum(highs.values()) == 40 and all(h > 0 for h in highs.values()), highs
    cut = {p: h // 2 for p, h in highs.items()}
    results = ops(
        broker.bootstrap,
        {"op": "metadata", "topics": [f"{base}-a"]},
        {"op": "deleteRecords", "topic": f"{base}-a", "partitions": [{"partition": p, "offset": str(o)} for p, o in cut.items()]},
        {"op": "offsets", "topic": f"{base}-a"},
        {"op": "deleteRecords", "topic": f"{base}-a", "partitions": [{"partition": 0, "offset": str(highs[0] + 1)}]},
        {"op": "alterConfigs", "type": "TOPIC", "name": f"{base}-a", "configEntries": [{"name": "retention.ms", "value": "3600000"}]},
        {"op": "describeConfigs", "type": "TOPIC", "name": f"{base}-a", "configNames": ["retention.ms", "segment.bytes"]},
        {"op": "alterConfigs", "type": "TOPIC", "name": f"{base}-a", "configEntries": [{"name": "no.such.config", "value": "1"}]},
        {"op": "delete", "topics": [f"{base}-a"]},
        {"op": "list"},
    )
    assert "error" not in results[1], results[1]
    after = {o["partition"]: (o["low"], o["high"]) for o in ok(results[2])}
    assert after == {p: (cut[p], highs[p]) for p in highs}
    [bad] = results[3]["error"]["cause"]["partitions"]
    assert bad["error"]["type"] == "OFFSET_OUT_OF_RANGE"
    assert "error" not in results[4], results[4]
    cfg = entries(results[5])
    assert set(cfg) == {"retention.ms", "segment.bytes"}
    assert (cfg["retention.ms"]["configValue"], cfg["retention.ms"]["configSource"]) == ("3600000", DYNAMIC_TOPIC_CONFIG)
    # AlterConfigs replaces the override set: segment.bytes is back to its default
    assert (cfg["segment.bytes"]["configValue"], cfg["segment.bytes"]["configSource"]) == ("1073741824", DEFAULT_CONFIG)
    assert results[6]["error"].get("type") == "INVALID_CONFIG", results[6]
    assert "error" not in results[7]
    assert f"{base}-a" not in ok(results[8])

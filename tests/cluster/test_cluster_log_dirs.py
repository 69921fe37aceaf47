"""log.dirs under a virtual cluster (--nodes 3): the process has one set of log dirs, which
every node reports and any node's AlterReplicaLogDirs moves a (shared) partition log in."""

from __future__ import annotations

from pathlib import Path

from cluster_helpers import client_for, create_topic, partition_state, produce
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.alter_replica_log_dirs_request import (
    AlterReplicaLogDir,
    AlterReplicaLogDirsRequest,
    AlterReplicaLogDirTopic,
)
from kbroker.wire.messages.describe_log_dirs_request import DescribeLogDirsRequest

from kbroker.testing import BrokerThread


def placement(c, topic: str) -> dict[int, str]:
    resp = c.request(DescribeLogDirsRequest(topics=None), 4)
    return {
        p.partition_index: r.log_dir for r in resp.results for t in r.topics if t.name == topic for p in t.partitions
    }


def test_three_nodes_share_one_set_of_log_dirs(tmp_path: Path) -> None:
    dirs = [str((tmp_path / "a").absolute()), str((tmp_path / "b").absolute())]
    bt = BrokerThread(tmp_path / "meta", {"kbroker.nodes": "3", "log.dirs": ",".join(dirs)})
    bt.start()
    try:
        assert create_topic(bt, "cld", 2).error_code == ErrorCode.NONE
        leader = partition_state(bt, "cld", 0)["leader"]
        c = client_for(bt, leader)
        try:
            resp = produce(c, "cld", 0, [b"x", b"y"])
            assert resp.responses[0].partition_responses[0].error_code == ErrorCode.NONE
        finally:
            c.close()
        clients = [client_for(bt, n) for n in (1, 2, 3)]
        try:
            seen = [placement(c, "cld") for c in clients]
            assert seen[0] == seen[1] == seen[2] and sorted(seen[0].values()) == sorted(dirs)
            there = dirs[1] if seen[0][0] == dirs[0] else dirs[0]
            req = AlterReplicaLogDirsRequest(
                dirs=[AlterReplicaLogDir(path=there, topics=[AlterReplicaLogDirTopic(name="cld", partitions=[0])])]
            )
            resp = clients[2].request(req, 2)
            assert resp.results[0].partitions[0].error_code == ErrorCode.NONE
            assert all(placement(c, "cld")[0] == there for c in clients)
        finally:
            for c in clients:
                c.close()
        assert bt.broker is not None
        log = bt.broker.topics.log("cld", 0)
        assert log is not None and log.log_end_offset == 2
    finally:
        bt.close()

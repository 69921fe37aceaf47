"""Raw-protocol tests of several log directories (issue 12): DescribeLogDirs (35) v1-v4 and
AlterReplicaLogDirs (34) v1-v2 against a broker with ``log.dirs`` of two directories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.alter_replica_log_dirs_request import (
    AlterReplicaLogDir,
    AlterReplicaLogDirsRequest,
    AlterReplicaLogDirTopic,
)
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from kbroker.wire.messages.describe_log_dirs_request import DescribeLogDirsRequest
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.records import decode_records, iter_batches, make_batch

from kbroker.testing import BrokerThread


@pytest.fixture
def two_dirs(tmp_path: Path) -> Iterator[tuple[BrokerThread, list[Path]]]:
    dirs = [(tmp_path / "a").absolute(), (tmp_path / "b").absolute()]
    bt = BrokerThread(tmp_path / "meta", {"log.dirs": ",".join(map(str, dirs))})
    bt.start()
    try:
        yield bt, dirs
    finally:
        bt.close()


@pytest.fixture
def raw(two_dirs: tuple[BrokerThread, list[Path]]) -> Iterator[RawClient]:
    c = RawClient(two_dirs[0].address)
    try:
        yield c
    finally:
        c.close()


def create(c: RawClient, name: str, partitions: int) -> None:
    topic = CreatableTopic(name=name, num_partitions=partitions, replication_factor=-1)
    resp = c.request(CreateTopicsRequest(topics=[topic], timeout_ms=5000), 7)
    assert resp.topics[0].error_code == ErrorCode.NONE


def produce(c: RawClient, topic: str, partition: int, n: int) -> None:
    data = TopicProduceData(
        name=topic,
        partition_data=[PartitionProduceData(index=partition, records=bytes(make_batch([b"r%d" % i for i in range(n)])))],
    )
    resp = c.request(ProduceRequest(acks=-1, timeout_ms=5000, topic_data=[data]), 9)
    assert resp.responses[0].partition_responses[0].error_code == ErrorCode.NONE


def where(c: RawClient, version: int) -> dict[tuple[str, int], str]:
    resp = c.request(DescribeLogDirsRequest(topics=None), version)
    assert resp.error_code == ErrorCode.NONE
    out = {}
    for result in resp.results:
        assert result.error_code == ErrorCode.NONE
        for t in result.topics:
            for p in t.partitions:
                assert not p.is_future_key and p.offset_lag == 0
                out[(t.name, p.partition_index)] = result.log_dir
    return out


def alter(c: RawClient, moves: dict[str, dict[str, list[int]]], version: int) -> dict[tuple[str, int], int]:
    req = AlterReplicaLogDirsRequest(
        dirs=[
            AlterReplicaLogDir(path=path, topics=[AlterReplicaLogDirTopic(name=t, partitions=ps) for t, ps in topics.items()])
            for path, topics in moves.items()
        ]
    )
    resp = c.request(req, version)
    return {(t.topic_name, p.partition_index): p.error_code for t in resp.results for p in t.partitions}


def stored_values(bt: BrokerThread, topic: str, partition: int) -> list[bytes]:
    async def read() -> list[bytes]:
        assert bt.broker is not None
        log = bt.broker.topics.log(topic, partition)
        assert log is not None
        values, offset = [], 0
        while offset < log.log_end_offset:
            got = log.read(offset, 1 << 20)
            assert got.next_offset > offset
            values += [r.value for b in iter_batches(bytes(got.records)) for r in decode_records(b)]
            offset = got.next_offset
        return values

    return bt.call(read())


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_describe_log_dirs_reports_each_directory(two_dirs, raw: RawClient, version: int) -> None:
    _, dirs = two_dirs
    create(raw, "ldd", 4)
    resp = raw.request(DescribeLogDirsRequest(topics=None), version)
    assert [r.log_dir for r in resp.results] == [str(d) for d in dirs]
    placed = where(raw, version)
    # Least-loaded placement alternates between the two directories.
    assert sorted(placed[("ldd", p)] for p in range(4)) == sorted([str(dirs[0]), str(dirs[1])] * 2)
    for r in resp.results:
        if version >= 4:
            assert r.total_bytes >= r.usable_bytes > 0
        for t in r.topics:
            for p in t.partitions:
                assert (dirs[0 if r.log_dir == str(dirs[0]) else 1] / f"{t.name}-{p.partition_index}").is_dir()


@pytest.mark.parametrize("version", [1, 2])
def test_alter_replica_log_dirs_moves_a_partition(two_dirs, raw: RawClient, version: int) -> None:
    bt, dirs = two_dirs
    create(raw, "mv", 2)
    produce(raw, "mv", 0, 5)
    source = where(raw, 4)[("mv", 0)]
    dest = str(dirs[1]) if source == str(dirs[0]) else str(dirs[0])
    assert alter(raw, {dest: {"mv": [0]}}, version) == {("mv", 0): ErrorCode.NONE}
    assert where(raw, 4)[("mv", 0)] == dest
    assert not (Path(source) / "mv-0").exists()
    produce(raw, "mv", 0, 2)
    assert stored_values(bt, "mv", 0) == [b"r0", b"r1", b"r2", b"r3", b"r4", b"r0", b"r1"]
    # Moving it where it is already is a success that does nothing.
    assert alter(raw, {dest: {"mv": [0]}}, version) == {("mv", 0): ErrorCode.NONE}
    bt.restart()
    c = RawClient(bt.address)
    try:
        assert where(c, 4)[("mv", 0)] == dest
    finally:
        c.close()
    assert stored_values(bt, "mv", 0) == [b"r0", b"r1", b"r2", b"r3", b"r4", b"r0", b"r1"]


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_describe_log_dirs_shows_a_move_in_progress_as_a_future_replica(two_dirs, raw: RawClient, version: int) -> None:
    bt, dirs = two_dirs
    create(raw, "fut", 1)
    for _ in range(3):
        produce(raw, "fut", 0, 5)
    source = where(raw, 4)[("fut", 0)]
    dest = str(dirs[1]) if source == str(dirs[0]) else str(dirs[0])

    async def begin() -> None:  # the state a move is in while its pre-copy runs
        assert bt.broker is not None and bt.broker.topics.logs is not None
        assert bt.broker.topics.logs.begin_move("fut", 0, dest) is not None

    async def end() -> None:
        assert bt.broker is not None and bt.broker.topics.logs is not None
        bt.broker.topics.logs.end_move("fut", 0)

    bt.call(begin())
    try:
        resp = raw.request(DescribeLogDirsRequest(topics=None), version)
        entries = {
            (r.log_dir, p.is_future_key): p.offset_lag
            for r in resp.results
            for t in r.topics
            if t.name == "fut"
            for p in t.partitions
        }
        assert entries == {(source, False): 0, (dest, True): 15}  # nothing copied yet
    finally:
        bt.call(end())
    assert where(raw, version)[("fut", 0)] == source


@pytest.mark.parametrize("version", [1, 2])
def test_alter_replica_log_dirs_errors_per_partition(two_dirs, raw: RawClient, version: int, tmp_path: Path) -> None:
    _, dirs = two_dirs
    create(raw, "er", 1)
    got = alter(
        raw,
        {
            str(tmp_path / "nowhere"): {"er": [0]},
            str(dirs[1]): {"er": [7], "no-such-topic": [0]},
        },
        version,
    )
    assert got == {
        ("er", 0): ErrorCode.LOG_DIR_NOT_FOUND,
        ("er", 7): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ("no-such-topic", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    }


def test_alter_replica_log_dirs_needs_alter_on_the_cluster(tmp_path: Path) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    settings = {
        "log.dirs": ",".join(map(str, dirs)),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
    }
    bt = BrokerThread(tmp_path / "meta", settings)
    bt.start()
    c = RawClient(bt.address)
    try:
        got = alter(c, {str(dirs[1].absolute()): {"t": [0]}}, 2)
        assert got == {("t", 0): ErrorCode.CLUSTER_AUTHORIZATION_FAILED}
    finally:
        c.close()
        bt.close()

"""OffsetCommit v10 and OffsetFetch v10 (topics named by id, KIP-848 follow-up) over the raw
protocol: commits by id are the same offsets as commits by name, unknown ids (never created,
the zero id, a deleted topic's id even after a topic of that name is created again) answer
UNKNOWN_TOPIC_ID and commit nothing, answers carry ids, and the versions are advertised
only where the emulated release had them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker_harness import RawClient
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.api_versions_request import ApiVersionsRequest
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from kbroker.wire.messages.delete_topics_request import DeleteTopicsRequest
from kbroker.wire.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from kbroker.wire.messages.offset_fetch_request import (
    OffsetFetchRequest,
    OffsetFetchRequestGroup,
    OffsetFetchRequestTopics,
)

from kbroker.testing import BrokerThread


def _create(c: RawClient, name: str, partitions: int = 1) -> uuid.UUID:
    topic = CreatableTopic(name=name, num_partitions=partitions, replication_factor=-1)
    result = c.request(CreateTopicsRequest(topics=[topic], timeout_ms=5000), 7).topics[0]
    assert result.error_code == ErrorCode.NONE
    assert result.topic_id.int != 0
    return result.topic_id  # type: ignore[no-any-return]


def _delete(c: RawClient, name: str) -> None:
    resp = c.request(DeleteTopicsRequest(topic_names=[name], timeout_ms=5000), 5)
    assert resp.responses[0].error_code == ErrorCode.NONE


def _commit_by_id(
    c: RawClient, group: str, topics: list[tuple[uuid.UUID, dict[int, int]]]
) -> list[tuple[uuid.UUID, dict[int, int]]]:
    req = OffsetCommitRequest(
        group_id=group,
        generation_id_or_member_epoch=-1,
        topics=[
            OffsetCommitRequestTopic(
                topic_id=tid,
                partitions=[
                    OffsetCommitRequestPartition(
                        partition_index=i, committed_offset=o, committed_metadata="m"
                    )
                    for i, o in parts.items()
                ],
            )
            for tid, parts in topics
        ],
    )
    resp = c.request(req, 10)
    return [
        (t.topic_id, {p.partition_index: p.error_code for p in t.partitions}) for t in resp.topics
    ]


def _fetch_by_id(
    c: RawClient, group: str, topics: list[tuple[uuid.UUID, list[int]]] | None
) -> list[tuple[uuid.UUID, dict[int, tuple[int, int]]]]:
    wanted = (
        None
        if topics is None
        else [
            OffsetFetchRequestTopics(topic_id=tid, partition_indexes=parts) for tid, parts in topics
        ]
    )
    resp = c.request(
        OffsetFetchRequest(groups=[OffsetFetchRequestGroup(group_id=group, topics=wanted)]), 10
    )
    (g,) = resp.groups
    assert g.group_id == group and g.error_code == ErrorCode.NONE
    return [
        (t.topic_id, {p.partition_index: (p.committed_offset, p.error_code) for p in t.partitions})
        for t in g.topics
    ]


def _fetch_by_name(c: RawClient, group: str, name: str, partitions: list[int]) -> dict[int, int]:
    wanted = [OffsetFetchRequestTopics(name=name, partition_indexes=partitions)]
    resp = c.request(
        OffsetFetchRequest(groups=[OffsetFetchRequestGroup(group_id=group, topics=wanted)]), 9
    )
    return {
        p.partition_index: p.committed_offset for t in resp.groups[0].topics for p in t.partitions
    }


def test_v10_is_advertised_by_default(client: RawClient) -> None:
    resp = client.request(
        ApiVersionsRequest(client_software_name="raw", client_software_version="1"), 3
    )
    got = {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}
    assert got[ApiKey.OFFSET_COMMIT] == (2, 10)
    assert got[ApiKey.OFFSET_FETCH] == (1, 10)


def test_commit_by_id_is_the_commit_by_name(client: RawClient) -> None:
    tid = _create(client, "ids", partitions=2)
    assert _commit_by_id(client, "g", [(tid, {0: 5, 1: 7})]) == [
        (tid, {0: ErrorCode.NONE, 1: ErrorCode.NONE})
    ]
    assert _fetch_by_id(client, "g", [(tid, [0, 1])]) == [
        (tid, {0: (5, ErrorCode.NONE), 1: (7, ErrorCode.NONE)})
    ]
    assert _fetch_by_name(client, "g", "ids", [0, 1]) == {0: 5, 1: 7}
    # and a commit by name (v9) is read back by id
    by_name = OffsetCommitRequest(
        group_id="g",
        generation_id_or_member_epoch=-1,
        topics=[
            OffsetCommitRequestTopic(
                name="ids",
                partitions=[OffsetCommitRequestPartition(partition_index=1, committed_offset=9)],
            )
        ],
    )
    assert client.request(by_name, 9).topics[0].partitions[0].error_code == ErrorCode.NONE
    assert _fetch_by_id(client, "g", [(tid, [1])]) == [(tid, {1: (9, ErrorCode.NONE)})]


def test_unknown_ids_are_refused_and_the_rest_committed(client: RawClient) -> None:
    tid = _create(client, "known", partitions=1)
    stranger = uuid.uuid4()
    zero = uuid.UUID(int=0)
    got = _commit_by_id(
        client, "g", [(stranger, {0: 1, 3: 2}), (tid, {0: 11, 4: 12}), (zero, {0: 3})]
    )
    assert got == [
        (stranger, {0: ErrorCode.UNKNOWN_TOPIC_ID, 3: ErrorCode.UNKNOWN_TOPIC_ID}),
        (
            tid,
            {0: ErrorCode.NONE, 4: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION},
        ),  # a known id, a partition beyond its count
        (zero, {0: ErrorCode.UNKNOWN_TOPIC_ID}),
    ]
    assert _fetch_by_id(client, "g", [(tid, [0]), (stranger, [0]), (zero, [0])]) == [
        (tid, {0: (11, ErrorCode.NONE)}),
        (stranger, {0: (-1, ErrorCode.UNKNOWN_TOPIC_ID)}),
        (zero, {0: (-1, ErrorCode.UNKNOWN_TOPIC_ID)}),
    ]
    # a request naming only unknown ids touches no group
    assert _commit_by_id(client, "nobody", [(stranger, {0: 1})]) == [
        (stranger, {0: ErrorCode.UNKNOWN_TOPIC_ID})
    ]
    assert _fetch_by_id(client, "nobody", None) == []


def test_a_deleted_topics_id_stays_unknown_when_the_name_returns(client: RawClient) -> None:
    old = _create(client, "again")
    assert _commit_by_id(client, "g", [(old, {0: 4})]) == [(old, {0: ErrorCode.NONE})]
    _delete(client, "again")
    new = _create(client, "again")
    assert new != old
    assert _commit_by_id(client, "g", [(old, {0: 8})]) == [(old, {0: ErrorCode.UNKNOWN_TOPIC_ID})]
    assert _fetch_by_id(client, "g", [(old, [0])]) == [(old, {0: (-1, ErrorCode.UNKNOWN_TOPIC_ID)})]
    assert _commit_by_id(client, "g", [(new, {0: 2})]) == [(new, {0: ErrorCode.NONE})]
    assert _fetch_by_id(client, "g", [(new, [0])]) == [(new, {0: (2, ErrorCode.NONE)})]


def test_fetching_all_offsets_names_each_topic_by_its_id(client: RawClient) -> None:
    a, b = _create(client, "a", partitions=2), _create(client, "b")
    assert _commit_by_id(client, "g", [(a, {0: 1, 1: 2}), (b, {0: 3})]) == [
        (a, {0: 0, 1: 0}),
        (b, {0: 0}),
    ]
    got = dict(_fetch_by_id(client, "g", None))
    assert got == {a: {0: (1, ErrorCode.NONE), 1: (2, ErrorCode.NONE)}, b: {0: (3, ErrorCode.NONE)}}
    # a topic that is gone has no id to be named by: it is left out
    _delete(client, "b")
    assert dict(_fetch_by_id(client, "g", None)) == {
        a: {0: (1, ErrorCode.NONE), 1: (2, ErrorCode.NONE)}
    }


@pytest.fixture
def emulated_4_1(tmp_path: Path) -> Iterator[RawClient]:
    bt = BrokerThread(tmp_path / "data", {"kbroker.emulate.version": "4.1"})
    bt.start()
    c = RawClient(bt.address)
    try:
        yield c
    finally:
        c.close()
        bt.close()


def test_4_1_has_no_v10_and_closes_on_it(emulated_4_1: RawClient) -> None:
    c = emulated_4_1
    resp = c.request(ApiVersionsRequest(client_software_name="raw", client_software_version="1"), 3)
    got = {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}
    assert got[ApiKey.OFFSET_COMMIT] == (2, 9) and got[ApiKey.OFFSET_FETCH] == (1, 9)
    tid = _create(c, "t")
    c.request(
        OffsetCommitRequest(group_id="g", topics=[OffsetCommitRequestTopic(topic_id=tid)]),
        10,
        expect_response=False,
    )
    assert c.recv_frame() is None

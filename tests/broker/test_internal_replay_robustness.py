"""An unreadable record in an internal topic is skipped with a warning at start-up; the
records around it are replayed and the broker serves (it raised out of start-up before)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
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

from kbroker.internal_topics import append_records
from kbroker.metadata import OFFSETS_TOPIC
from kbroker.testing import BrokerThread


def _commit(c: RawClient, group: str, offset: int) -> None:
    req = OffsetCommitRequest(
        group_id=group,
        generation_id_or_member_epoch=-1,
        topics=[
            OffsetCommitRequestTopic(
                name="t",
                partitions=[OffsetCommitRequestPartition(partition_index=0, committed_offset=offset)],
            )
        ],
    )
    assert c.request(req, 9).topics[0].partitions[0].error_code == ErrorCode.NONE


def _committed(c: RawClient, group: str) -> int:
    wanted = [OffsetFetchRequestTopics(name="t", partition_indexes=[0])]
    resp = c.request(OffsetFetchRequest(groups=[OffsetFetchRequestGroup(group_id=group, topics=wanted)]), 9)
    return int(resp.groups[0].topics[0].partitions[0].committed_offset)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (b"\x00\x01\x00\x01g\x00\x01t\x00\x00\x00\x00", b"\x02\x61"),  # offset commit, value version 609
        (b"\x00\x01\x00", b"\x00\x03"),  # a key cut short
        (b"\x00\x0b\x00\x02ab\x00\x02cd", b"\x00\x03\x00\x00"),  # a share-group record of version 3
    ],
)
def test_an_unreadable_offsets_record_is_skipped_at_start_up(
    tmp_path: Path, key: bytes, value: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    bt = BrokerThread(tmp_path / "data")
    bt.start()
    try:
        c = RawClient(bt.address)
        created = c.request(
            CreateTopicsRequest(topics=[CreatableTopic(name="t", num_partitions=1, replication_factor=-1)]), 7
        )
        assert created.topics[0].error_code == ErrorCode.NONE
        _commit(c, "before", 5)
        c.close()
        broker = bt.broker
        assert broker is not None

        async def corrupt() -> None:
            for partition in range(broker.metadata.get(OFFSETS_TOPIC).num_partitions):
                append_records(broker, OFFSETS_TOPIC, partition, [(key, value)], 0)

        bt.call(corrupt())
        c = RawClient(bt.address)
        _commit(c, "after", 7)
        c.close()
        with caplog.at_level(logging.WARNING, logger="kbroker.internal_topics"):
            bt.restart()
        assert "skipped the unreadable" in caplog.text
        c = RawClient(bt.address)
        assert (_committed(c, "before"), _committed(c, "after")) == (5, 7)
        c.close()
    finally:
        bt.close()

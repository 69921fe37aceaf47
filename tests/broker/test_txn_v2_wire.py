"""A transaction version 2 (KIP-890 part 2) producer over TCP, spoken with our own codec:
no AddPartitionsToTxn and no AddOffsetsToTxn, EndTxn v5 bumps the epoch every time, and
a read_committed Fetch sees only committed data with the right last stable offset."""

from __future__ import annotations

from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from kbroker.wire.messages.end_txn_request import EndTxnRequest
from kbroker.wire.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from kbroker.wire.messages.init_producer_id_request import InitProducerIdRequest
from kbroker.wire.messages.offset_fetch_request import OffsetFetchRequest, OffsetFetchRequestTopic
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.messages.txn_offset_commit_request import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequestPartition,
    TxnOffsetCommitRequestTopic,
)
from kbroker.wire.records import build_record_batch, decode_records, iter_batches

from kbroker.testing import BrokerThread

TOPIC, TXN, GROUP = "tv2-topic", "tv2-producer", "tv2-group"
READ_COMMITTED = 1


def init(c: RawClient) -> tuple[int, int]:
    r = c.request(InitProducerIdRequest(transactional_id=TXN, transaction_timeout_ms=60_000), 5)
    assert r.error_code == ErrorCode.NONE
    return r.producer_id, r.producer_epoch


def produce(c: RawClient, pid: int, epoch: int, seq: int, value: bytes, *, version: int = 12) -> int:
    batch = build_record_batch(
        [(None, value, [], 0)], producer_id=pid, producer_epoch=epoch, base_sequence=seq, is_transactional=True
    )
    req = ProduceRequest(
        transactional_id=TXN,
        acks=-1,
        timeout_ms=5000,
        topic_data=[TopicProduceData(name=TOPIC, partition_data=[PartitionProduceData(index=0, records=bytes(batch))])],
    )
    code: int = c.request(req, version).responses[0].partition_responses[0].error_code
    return code


def end(c: RawClient, pid: int, epoch: int, commit: bool, version: int = 5) -> tuple[int, int, int]:
    r = c.request(EndTxnRequest(transactional_id=TXN, producer_id=pid, producer_epoch=epoch, committed=commit), version)
    return r.error_code, r.producer_id, r.producer_epoch


def commit_offset(c: RawClient, pid: int, epoch: int, offset: int, version: int = 5) -> int:
    req = TxnOffsetCommitRequest(
        transactional_id=TXN,
        group_id=GROUP,
        producer_id=pid,
        producer_epoch=epoch,
        generation_id=-1,
        member_id="",
        topics=[TxnOffsetCommitRequestTopic(name=TOPIC, partitions=[TxnOffsetCommitRequestPartition(partition_index=0, committed_offset=offset)])],
    )
    code: int = c.request(req, version).topics[0].partitions[0].error_code
    return code


def fetch_committed(c: RawClient) -> tuple[int, int, list[tuple[int, int]], list[tuple[int, bool, int, bytes | None]]]:
    """(high watermark, last stable offset, aborted (pid, first offset), batches as
    (base offset, is control, producer epoch, first value)) of a read_committed Fetch v12."""
    req = FetchRequest(
        max_wait_ms=0,
        min_bytes=1,
        isolation_level=READ_COMMITTED,
        topics=[FetchTopic(topic=TOPIC, partitions=[FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)])],
    )
    p = c.request(req, 12).responses[0].partitions[0]
    assert p.error_code == ErrorCode.NONE
    batches = [
        (v.base_offset, v.is_control, v.producer_epoch, None if v.is_control else next(iter(decode_records(v))).value)
        for v in iter_batches(p.records or b"")
    ]
    aborted = [(a.producer_id, a.first_offset) for a in p.aborted_transactions or []]
    return p.high_watermark, p.last_stable_offset, aborted, batches


def committed_offset(c: RawClient) -> int:
    req = OffsetFetchRequest(group_id=GROUP, topics=[OffsetFetchRequestTopic(name=TOPIC, partition_indexes=[0])], require_stable=True)
    part = c.request(req, 7).topics[0].partitions[0]
    assert part.error_code == ErrorCode.NONE
    offset: int = part.committed_offset
    return offset


def test_a_tv2_producer_commits_aborts_and_is_read_committed(broker_thread: BrokerThread) -> None:
    c = RawClient(broker_thread.address)
    topic = CreatableTopic(name=TOPIC, num_partitions=1, replication_factor=-1)
    assert c.request(CreateTopicsRequest(topics=[topic], timeout_ms=5000), 5).topics[0].error_code == ErrorCode.NONE
    pid, e = init(c)

    # 1: committed, with the consumer offset; no AddPartitionsToTxn, no AddOffsetsToTxn
    assert produce(c, pid, e, 0, b"one") == ErrorCode.NONE
    hw, lso, _, batches = fetch_committed(c)
    assert (hw, lso, batches) == (1, 0, [])  # ongoing: nothing stable yet
    assert commit_offset(c, pid, e, 1) == ErrorCode.NONE
    assert end(c, pid, e, commit=True) == (ErrorCode.NONE, pid, e + 1)
    assert committed_offset(c) == 1
    assert produce(c, pid, e, 1, b"zombie") == ErrorCode.INVALID_PRODUCER_EPOCH  # the old epoch
    assert commit_offset(c, pid, e, 5) == ErrorCode.INVALID_PRODUCER_EPOCH
    assert end(c, pid, e, commit=True) == (ErrorCode.NONE, pid, e + 1)  # a retry: same answer

    # 2: aborted (sequences restart at 0 with each epoch)
    assert produce(c, pid, e + 1, 0, b"two") == ErrorCode.NONE
    assert commit_offset(c, pid, e + 1, 3) == ErrorCode.NONE
    assert end(c, pid, e + 1, commit=False) == (ErrorCode.NONE, pid, e + 2)
    assert committed_offset(c) == 1  # the aborted offset commit is dropped

    # 3: committed; the LSO waits for it
    assert produce(c, pid, e + 2, 0, b"three") == ErrorCode.NONE
    hw, lso, _, _ = fetch_committed(c)
    assert (hw, lso) == (5, 4)
    assert end(c, pid, e + 2, commit=True) == (ErrorCode.NONE, pid, e + 3)

    hw, lso, aborted, batches = fetch_committed(c)
    assert (hw, lso) == (6, 6)
    assert aborted == [(pid, 2)]
    assert batches == [
        (0, False, e, b"one"),
        (1, True, e + 1, None),  # the COMMIT marker carries the bumped epoch
        (2, False, e + 1, b"two"),
        (3, True, e + 2, None),
        (4, False, e + 2, b"three"),
        (5, True, e + 3, None),
    ]
    # a read_committed reader drops each aborted range: its first offset up to its marker
    markers = [offset for offset, control, _, _ in batches if control]
    dropped = {(first, min(m for m in markers if m > first)) for _, first in aborted}
    visible = [value for offset, control, _, value in batches if not control and not any(a <= offset < b for a, b in dropped)]
    assert visible == [b"one", b"three"]
    c.close()

    # the coordinator's TV_2 state survives a restart: the retry still answers the same
    broker_thread.restart()
    c = RawClient(broker_thread.address)
    assert end(c, pid, e + 2, commit=True) == (ErrorCode.NONE, pid, e + 3)
    assert end(c, pid, e + 1, commit=True)[0] == ErrorCode.PRODUCER_FENCED
    assert produce(c, pid, e + 3, 0, b"four") == ErrorCode.NONE
    c.close()


def test_a_tv0_producer_still_needs_add_partitions_and_keeps_its_epoch(broker_thread: BrokerThread) -> None:
    c = RawClient(broker_thread.address)
    topic = CreatableTopic(name=TOPIC, num_partitions=1, replication_factor=-1)
    assert c.request(CreateTopicsRequest(topics=[topic], timeout_ms=5000), 5).topics[0].error_code == ErrorCode.NONE
    pid, e = init(c)
    assert produce(c, pid, e, 0, b"x", version=11) == ErrorCode.INVALID_TXN_STATE  # not added
    assert end(c, pid, e, commit=False, version=4) == (ErrorCode.INVALID_TXN_STATE, -1, -1)
    assert commit_offset(c, pid, e, 1, version=4) == ErrorCode.INVALID_TXN_STATE
    c.close()

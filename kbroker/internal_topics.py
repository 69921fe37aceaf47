"""Reading and writing the coordinators' internal topics (``__consumer_offsets``,
``__transaction_state``) and the transaction markers the coordinators ask for.

The coordinators are pure; their runtimes (``kbroker.groups``, ``kbroker.transactions``)
use these functions for every byte they read or write, so the two share one way of
creating, replaying and appending to an internal topic.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from kbroker.log import AppendOrigin
from kbroker.log.errors import LogError
from kbroker.wire.exceptions import WireError
from kbroker.wire.records import (
    ControlRecordType,
    RecordBatchView,
    build_control_batch,
    build_record_batch,
    iter_batches,
)

if TYPE_CHECKING:
    from kbroker.server import Broker

logger = logging.getLogger(__name__)

# How much of a partition one replay read takes; any size works, this bounds memory.
REPLAY_READ_BYTES = 4 * 1024 * 1024
# What an unreadable stored record raises while it is replayed: the codec's DecodeError
# (WireError), the coordinators' record-format errors (ValueError subclasses) and a
# value too short for its fields (struct.error).  Such a record is skipped with a
# warning: one bad record must not stop the broker from starting.
UNREADABLE_RECORD_ERRORS = (WireError, ValueError, struct.error)


def ensure_topic(broker: Broker, name: str, num_partitions: int, configs: dict[str, str], now_ms: int) -> None:
    if name not in broker.metadata:
        broker.topics.ensure_internal_topic(name, num_partitions, configs, now_ms)


def replay_topic(broker: Broker, name: str, on_batch: Callable[[RecordBatchView, int], None]) -> None:
    """Call ``on_batch(view, from_offset)`` for every stored batch of every partition, in
    log order (``from_offset``: records below it were deleted and must be skipped)."""
    topic = broker.metadata.get(name)
    if topic is None:
        return
    for partition in range(topic.num_partitions):
        log = broker.topics.log(name, partition)
        if log is None:
            continue
        offset = log.log_start_offset
        while offset < log.high_watermark:
            try:
                fetched = log.read(offset, REPLAY_READ_BYTES)
            except LogError as exc:  # e.g. damage in a segment trusted after a clean stop
                logger.error("%s-%d: replay stopped at offset %d: %s", name, partition, offset, exc)
                break
            if not fetched.records:
                break
            for view in iter_batches(fetched.records):
                if view.next_offset > offset:
                    try:
                        on_batch(view, offset)
                    except UNREADABLE_RECORD_ERRORS as exc:
                        logger.warning(
                            "%s-%d: skipped the unreadable rest of the batch at offsets %d-%d: %s",
                            name, partition, view.base_offset, view.next_offset - 1, exc,
                        )  # fmt: skip
            offset = fetched.next_offset


def append_records(
    broker: Broker,
    name: str,
    partition: int,
    records: Iterable[tuple[bytes, bytes | None]],
    now_ms: int,
    *,
    producer_id: int = -1,
    producer_epoch: int = -1,
) -> None:
    """Append coordinator records (key, value) as one batch; transactional when it carries
    a producer id (transactional offset commits wait for their marker)."""
    topic = broker.metadata.get(name)
    log = broker.topics.log(name, partition)
    assert topic is not None and log is not None, f"{name}-{partition} does not exist"
    batch = build_record_batch(
        [(key, value, [], now_ms) for key, value in records],
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        is_transactional=producer_id >= 0,
    )
    log.append(batch, leader_epoch=topic.leader_epochs[partition], now_ms=now_ms, origin=AppendOrigin.COORDINATOR)
    broker.waiters.notify((name, partition))


def write_marker(
    broker: Broker,
    topic_name: str,
    partition: int,
    *,
    producer_id: int,
    producer_epoch: int,
    commit: bool,
    coordinator_epoch: int,
    now_ms: int,
) -> bool:
    """Append a COMMIT/ABORT control batch; False if the partition no longer exists."""
    topic = broker.metadata.get(topic_name)
    log = broker.topics.log(topic_name, partition)
    if topic is None or log is None:
        return False
    batch = build_control_batch(
        ControlRecordType.COMMIT if commit else ControlRecordType.ABORT,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        coordinator_epoch=coordinator_epoch,
        timestamp_ms=now_ms,
    )
    log.append(batch, leader_epoch=topic.leader_epochs[partition], now_ms=now_ms, origin=AppendOrigin.COORDINATOR)
    broker.waiters.notify((topic_name, partition))
    return True

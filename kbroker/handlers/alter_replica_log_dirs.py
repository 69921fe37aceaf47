"""AlterReplicaLogDirs (key 34, KIP-113): move partitions between log directories.

Version notes:
- v1-v2 served (Kafka 4.x's range; v0 was removed in Kafka 4.0).  v2 is flexible.
- Each partition is answered on its own: LOG_DIR_NOT_FOUND for a path that is not one of
  ``log.dirs`` (compared as absolute paths), KAFKA_STORAGE_ERROR for a partition whose log
  hit a storage error or whose move failed (the source then stays, whole),
  UNKNOWN_TOPIC_OR_PARTITION for a partition this broker has no log of (Kafka records a
  preference for a partition it does not host yet; kbroker has no such state), NONE
  otherwise -- also when the partition is in that directory already.
- The move (crash-safe: see ``kbroker.log.log_dirs``) runs within the request: the sealed
  segments are first copied on a worker thread while the partition keeps taking appends
  and serving reads (DescribeLogDirs then shows the future replica); then, in one step of
  the event loop, the log is closed, the rest (the active segment, changed files, state
  files) copied and the log reopened at the destination with no append in between, so no
  record is lost, duplicated or reordered.  Kafka answers before the move and copies in
  the background; kbroker answers once the partition is in its new directory.  A second
  request for a partition already moving answers NONE and does nothing.
- A partition being compacted is moved once that cleaner pass has ended (waiting at most
  MOVE_CLEANER_WAIT_MS, then KAFKA_STORAGE_ERROR).
- ACLs: ALTER on the cluster, else CLUSTER_AUTHORIZATION_FAILED for every partition.
"""

from __future__ import annotations

import asyncio
import logging
import os

from kbroker.acl.check import CLUSTER, allowed
from kbroker.acl.model import AclOperation
from kbroker.log.errors import LogStorageError, UnknownPartitionError
from kbroker.log.log_dirs import precopy
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.alter_replica_log_dirs_request import AlterReplicaLogDirsRequest
from kbroker.wire.messages.alter_replica_log_dirs_response import (
    AlterReplicaLogDirPartitionResult,
    AlterReplicaLogDirsResponse,
    AlterReplicaLogDirTopicResult,
)

logger = logging.getLogger(__name__)

# How long a move waits for a cleaner pass on the partition to end (a pass reads the
# segments being moved); long enough for a pass of a large segment, short enough to
# answer within a client's default request timeout (30 s).
MOVE_CLEANER_WAIT_MS = 20_000
_CLEANER_POLL_S = 0.05


async def _cleaner_idle(ctx: RequestContext, key: tuple[str, int]) -> bool:
    cleaner = ctx.broker.topics.cleaner
    waited_ms = 0.0
    while cleaner is not None and key in cleaner.manager.in_progress:
        if waited_ms >= MOVE_CLEANER_WAIT_MS:
            return False
        await asyncio.sleep(_CLEANER_POLL_S)
        waited_ms += _CLEANER_POLL_S * 1000
    return True


async def _move(ctx: RequestContext, path: str, topic: str, partition: int) -> int:
    logs = ctx.broker.topics.logs
    assert logs is not None
    dest = os.path.abspath(path) if path else ""
    if dest not in logs.log_dirs:
        return ErrorCode.LOG_DIR_NOT_FOUND
    if not logs.has(topic, partition):
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    try:
        pre = logs.begin_move(topic, partition, dest)
    except UnknownPartitionError:  # deleted while waiting for the cleaner
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    except LogStorageError:
        return ErrorCode.KAFKA_STORAGE_ERROR
    if pre is None:
        return ErrorCode.NONE  # there already, or a move of it is under way
    try:
        log = logs.get(topic, partition)
        assert log is not None
        try:  # the sealed segments, off the event loop; appends go on meanwhile
            await asyncio.to_thread(precopy, log.directory, pre)
        except OSError as exc:  # the final step copies what is missing
            logger.info("pre-copy of %s-%d stopped: %s", topic, partition, exc)
        if not await _cleaner_idle(ctx, (topic, partition)):
            return ErrorCode.KAFKA_STORAGE_ERROR
        if logs.move_partition(topic, partition, dest, pre=pre):
            logger.info("moved %s-%d to log directory %s", topic, partition, dest)
    except UnknownPartitionError:  # deleted meanwhile
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    except LogStorageError as exc:
        logger.warning("moving %s-%d to %s failed: %s", topic, partition, dest, exc)
        return ErrorCode.KAFKA_STORAGE_ERROR
    finally:
        logs.end_move(topic, partition)
    return ErrorCode.NONE


@handler(ApiKey.ALTER_REPLICA_LOG_DIRS, 1, 2)
async def handle_alter_replica_log_dirs(
    ctx: RequestContext, req: AlterReplicaLogDirsRequest
) -> AlterReplicaLogDirsResponse:
    permitted = allowed(ctx, AclOperation.ALTER, CLUSTER)
    by_topic: dict[str, list[AlterReplicaLogDirPartitionResult]] = {}
    for entry in req.dirs:
        for t in entry.topics:
            out = by_topic.setdefault(t.name, [])
            for p in t.partitions:
                code = (
                    await _move(ctx, entry.path, t.name, p)
                    if permitted
                    else ErrorCode.CLUSTER_AUTHORIZATION_FAILED
                )
                out.append(AlterReplicaLogDirPartitionResult(partition_index=p, error_code=code))
    return AlterReplicaLogDirsResponse(
        results=[AlterReplicaLogDirTopicResult(topic_name=n, partitions=ps) for n, ps in by_topic.items()]
    )

"""DescribeLogDirs (key 35, KIP-113).

Version notes:
- v1-v4 served (Kafka 4.1's range; v0 was removed in Kafka 4.0).  v2 is flexible; v3 adds
  the top-level error_code; v4 adds each directory's total_bytes and usable_bytes
  (KIP-827), read from the file system holding the directory.
- One result per log directory (``log.dirs``; the data directory alone by default), by
  absolute path, each listing the partitions that live in it.  A directory whose file
  system cannot be read, or holding a log that hit a storage error (its appends stopped),
  is reported KAFKA_STORAGE_ERROR with no topics, as Kafka reports an offline directory.
- A null topic list means every partition.  Otherwise the named partitions are reported;
  names of missing topics or partitions are left out, and so is a topic none of whose
  partitions was asked for (Kafka 3.x+ drops such empty topic entries).
- partition_size is the partition's bytes on disk (all its segments), offset_lag 0.  A
  partition being moved (AlterReplicaLogDirs) is also listed under its destination with
  is_future_key true, partition_size the bytes pre-copied so far and offset_lag the log
  end offset minus the base offset of the latest segment pre-copied (an upper bound).
- A file system too large for a signed 64-bit byte count is reported as INT64_MAX, as Kafka
  does.
- ACLs: DESCRIBE on the cluster, else no results (and, v3+, CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from kbroker.acl.check import CLUSTER, allowed
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.describe_log_dirs_request import DescribeLogDirsRequest
from kbroker.wire.messages.describe_log_dirs_response import (
    DescribeLogDirsPartition,
    DescribeLogDirsResponse,
    DescribeLogDirsResult,
    DescribeLogDirsTopic,
)

if TYPE_CHECKING:
    from kbroker.server import Broker

INT64_MAX = (1 << 63) - 1


def _file_system_bytes(path: str) -> tuple[int, int]:
    """(total, usable) bytes of the file system holding ``path``."""
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    usable = st.f_bavail * st.f_frsize
    return min(total, INT64_MAX), min(usable, INT64_MAX)


def _offline(broker: Broker, log_dir: str) -> bool:
    """Whether a loaded log of ``log_dir`` hit a storage error (its appends stopped)."""
    logs = broker.topics.logs
    return logs is not None and any(
        log.is_offline for key, log in logs.logs.items() if logs.dir_of(*key) == log_dir
    )


def _describe_dir(broker: Broker, log_dir: str, wanted: set[tuple[str, int]] | None, version: int) -> DescribeLogDirsResult:
    logs = broker.topics.logs
    assert logs is not None
    try:
        total, usable = _file_system_bytes(log_dir)
    except OSError:
        return DescribeLogDirsResult(error_code=ErrorCode.KAFKA_STORAGE_ERROR, log_dir=log_dir, topics=[])
    if _offline(broker, log_dir):
        return DescribeLogDirsResult(error_code=ErrorCode.KAFKA_STORAGE_ERROR, log_dir=log_dir, topics=[])
    topics: list[DescribeLogDirsTopic] = []
    for topic in sorted(broker.metadata, key=lambda t: t.name):
        partitions: list[DescribeLogDirsPartition] = []
        for index in range(topic.num_partitions):
            if wanted is not None and (topic.name, index) not in wanted:
                continue
            if logs.dir_of(topic.name, index) != log_dir:
                continue
            log = broker.topics.log(topic.name, index)
            if log is None:
                continue
            partitions.append(
                DescribeLogDirsPartition(
                    partition_index=index, partition_size=log.size_bytes, offset_lag=0, is_future_key=False
                )
            )
        for index in range(topic.num_partitions):
            move = logs.moving.get((topic.name, index))
            if move is None or move[0] != log_dir or (wanted is not None and (topic.name, index) not in wanted):
                continue
            log = broker.topics.log(topic.name, index)
            if log is None:
                continue
            dest, pre = move
            partitions.append(
                DescribeLogDirsPartition(
                    partition_index=index,
                    partition_size=pre.copied_bytes,
                    offset_lag=max(0, log.log_end_offset - pre.copied_up_to_offset),
                    is_future_key=True,
                )
            )
        if partitions:
            topics.append(DescribeLogDirsTopic(name=topic.name, partitions=partitions))
    result = DescribeLogDirsResult(error_code=ErrorCode.NONE, log_dir=log_dir, topics=topics)
    if version >= 4:
        result.total_bytes, result.usable_bytes = total, usable
    return result


@handler(ApiKey.DESCRIBE_LOG_DIRS, 1, 4)
async def handle_describe_log_dirs(ctx: RequestContext, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse:
    broker = ctx.broker
    if not allowed(ctx, AclOperation.DESCRIBE, CLUSTER):
        code = ErrorCode.CLUSTER_AUTHORIZATION_FAILED if ctx.api_version >= 3 else ErrorCode.NONE
        return DescribeLogDirsResponse(error_code=code, results=[])
    logs = broker.topics.logs
    assert logs is not None
    wanted: set[tuple[str, int]] | None = None
    if req.topics is not None:
        wanted = {(t.topic, p) for t in req.topics for p in t.partitions}
    results = [_describe_dir(broker, d, wanted, ctx.api_version) for d in logs.log_dirs]
    return DescribeLogDirsResponse(error_code=ErrorCode.NONE, results=results)

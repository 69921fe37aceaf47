"""DescribeShareGroupOffsets (key 90): a share group's start offset per partition.

Version notes:
- v0-v1 served (every version in the specs); v1 adds the partition's Lag (records at or
  past the start offset not yet acknowledged or archived, to the high watermark).
- Topics null: every partition whose share-partition state exists.  A partition the group
  never read has start offset -1.  An unknown group, or a group of another type, is
  GROUP_ID_NOT_FOUND for that group; an unknown topic UNKNOWN_TOPIC_OR_PARTITION.
"""

from __future__ import annotations

from kbroker.acl.model import AclOperation
from kbroker.handlers._share import group_allowed, share_runtime
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.describe_share_group_offsets_request import (
    DescribeShareGroupOffsetsRequest,
)
from kbroker.wire.messages.describe_share_group_offsets_response import (
    DescribeShareGroupOffsetsResponse,
    DescribeShareGroupOffsetsResponseGroup,
    DescribeShareGroupOffsetsResponsePartition,
    DescribeShareGroupOffsetsResponseTopic,
)


@handler(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, 0, 1)
async def handle_describe_share_group_offsets(
    ctx: RequestContext, req: DescribeShareGroupOffsetsRequest
) -> DescribeShareGroupOffsetsResponse:
    coordinator = ctx.broker.groups.coordinator
    assert coordinator is not None
    shares = share_runtime(ctx).coordinator
    metadata = ctx.broker.metadata
    response = DescribeShareGroupOffsetsResponse()
    for g in req.groups:
        out = DescribeShareGroupOffsetsResponseGroup(group_id=g.group_id)
        response.groups.append(out)
        if not group_allowed(ctx, g.group_id, AclOperation.DESCRIBE):
            out.error_code = ErrorCode.GROUP_AUTHORIZATION_FAILED
            continue
        if coordinator.share_groups.get(g.group_id) is None:
            out.error_code = ErrorCode.GROUP_ID_NOT_FOUND
            out.error_message = f"Group {g.group_id} not found."
            continue
        starts = shares.start_offsets(g.group_id)
        if g.topics is None:
            wanted: dict[str, list[int]] = {}
            for topic_id, partition in sorted(starts):
                topic = metadata.by_id(topic_id)
                if topic is not None:
                    wanted.setdefault(topic.name, []).append(partition)
        else:
            wanted = {t.topic_name: list(t.partitions) for t in g.topics}
        for name, partitions in wanted.items():
            topic = metadata.get(name)
            rt = DescribeShareGroupOffsetsResponseTopic(topic_name=name)
            out.topics.append(rt)
            for partition in partitions:
                rp = DescribeShareGroupOffsetsResponsePartition(
                    partition_index=partition, start_offset=-1, leader_epoch=-1
                )
                rt.partitions.append(rp)
                if topic is None or not 0 <= partition < topic.num_partitions:
                    rp.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                    continue
                rt.topic_id = topic.topic_id
                rp.leader_epoch = topic.leader_epochs[partition]
                start = starts.get((topic.topic_id, partition))
                if start is not None:
                    rp.start_offset = start
                    rp.lag = shares.lag(g.group_id, topic.topic_id, partition)
    return response

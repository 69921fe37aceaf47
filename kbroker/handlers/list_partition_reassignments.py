"""ListPartitionReassignments (key 46, KIP-455).

Version notes:
- v0 served (Kafka 4.1's range).
- A single node never has a reassignment in progress (AlterPartitionReassignments accepts
  only the current replica set), so the answer lists no topics: for a null topic list (all
  reassignments), and for named topics, existing or not (Kafka leaves out topics it does not
  know, and partitions not being reassigned).
- ACLs: DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

from kbroker.acl.check import CLUSTER, require
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.list_partition_reassignments_request import (
    ListPartitionReassignmentsRequest,
)
from kbroker.wire.messages.list_partition_reassignments_response import (
    ListPartitionReassignmentsResponse,
)


@handler(ApiKey.LIST_PARTITION_REASSIGNMENTS, 0, 0)
async def handle_list_partition_reassignments(
    ctx: RequestContext, req: ListPartitionReassignmentsRequest
) -> ListPartitionReassignmentsResponse:
    require(ctx, AclOperation.DESCRIBE, CLUSTER)
    return ListPartitionReassignmentsResponse(error_code=ErrorCode.NONE, error_message=None, topics=[])

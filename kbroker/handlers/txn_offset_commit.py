"""TxnOffsetCommit (key 28).

Version notes:
- v0-v5 served (aiokafka v0, kafkajs v1, librdkafka/kafka-python v3, the Java producer
  v5 with transaction.version 2).  v3 adds the group generation/member checks (KIP-447).
  v4 only allows TRANSACTION_ABORTABLE, which kbroker never sends.  v5 comes from
  transaction version 2 clients (KIP-890 part 2), which send no AddOffsetsToTxn: the
  group's __consumer_offsets partition is added to the transaction here (Kafka's
  implicit add); fencing there is INVALID_PRODUCER_EPOCH, pending markers of the previous
  transaction COORDINATOR_NOT_AVAILABLE (retriable), as Kafka's group coordinator
  answers them.
- Every version: a partition that does not exist (unknown topic, or an index beyond the
  topic's partition count) is answered UNKNOWN_TOPIC_OR_PARTITION first, as Kafka's
  KafkaApis does; only the other partitions go on to the transaction and group checks.
- v0-v4: the group's __consumer_offsets partition must have been added to the producer's
  ongoing transaction (AddOffsetsToTxn); otherwise every partition gets the transaction
  coordinator's answer (INVALID_TXN_STATE, PRODUCER_FENCED / INVALID_PRODUCER_EPOCH before
  v2, INVALID_PRODUCER_ID_MAPPING).  The offsets stay pending until the COMMIT marker.
- ACLs: WRITE on the transactional id (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED), READ on the
  group (GROUP_AUTHORIZATION_FAILED) and on each topic (TOPIC_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from kbroker.coordinator.records import partition_for
from kbroker.handlers._committed_topics import (
    denied_partitions,
    error_code,
    missing_partitions,
    requested,
    without_missing,
)
from kbroker.metadata import OFFSETS_TOPIC
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.txn_offset_commit_request import TxnOffsetCommitRequest
from kbroker.wire.messages.txn_offset_commit_response import (
    TxnOffsetCommitResponse,
    TxnOffsetCommitResponsePartition,
    TxnOffsetCommitResponseTopic,
)

# v5+ come from transaction version 2 clients: the group's partition joins the transaction here.
IMPLICIT_ADD_VERSION = 5
# The implicit add's answers as Kafka's group coordinator hands them to the producer.
IMPLICIT_ADD_ERRORS = {
    ErrorCode.PRODUCER_FENCED: ErrorCode.INVALID_PRODUCER_EPOCH,
    ErrorCode.CONCURRENT_TRANSACTIONS: ErrorCode.COORDINATOR_NOT_AVAILABLE,
}


def _commit_existing(ctx: RequestContext, req: TxnOffsetCommitRequest) -> dict[tuple[str, int], int]:
    """Verify the transaction and commit ``req`` (every partition of which exists);
    the error code of each (topic, partition)."""
    broker = ctx.broker
    groups = broker.groups
    assert groups.coordinator is not None
    partition = partition_for(req.group_id, groups.num_partitions)
    if ctx.api_version >= IMPLICIT_ADD_VERSION:
        added = ErrorCode(broker.transactions.add_partition_implicitly(req.transactional_id, req.producer_id, req.producer_epoch, OFFSETS_TOPIC, partition))
        code = IMPLICIT_ADD_ERRORS.get(added, added)
    else:
        code = broker.transactions.verify_partition(req.transactional_id, req.producer_id, req.producer_epoch, OFFSETS_TOPIC, partition)
    if code == ErrorCode.PRODUCER_FENCED and ctx.api_version < 2:
        code = ErrorCode.INVALID_PRODUCER_EPOCH
    if code != ErrorCode.NONE:
        return {(t.name, p.partition_index): code for t in req.topics for p in t.partitions}
    response = groups.finish(groups.coordinator.commit_transactional_offsets(req, api_version=ctx.api_version))
    assert response is not None
    return {(t.name, p.partition_index): p.error_code for t in response.topics for p in t.partitions}


@handler(ApiKey.TXN_OFFSET_COMMIT, 0, 5)
async def handle_txn_offset_commit(ctx: RequestContext, req: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse:
    denied = denied_partitions(ctx, req, req.transactional_id)
    missing = missing_partitions(ctx.broker.metadata, requested(req)) | denied.keys()
    # only what exists goes on to the transaction and group checks
    existing = without_missing(req, missing) if missing else req
    answered = _commit_existing(ctx, existing) if existing.topics else {}
    return TxnOffsetCommitResponse(
        topics=[
            TxnOffsetCommitResponseTopic(
                name=t.name,
                partitions=[
                    TxnOffsetCommitResponsePartition(
                        partition_index=p.partition_index,
                        error_code=error_code(missing, answered, t.name, p.partition_index, denied),
                    )
                    for p in t.partitions
                ],
            )
            for t in req.topics
        ]
    )

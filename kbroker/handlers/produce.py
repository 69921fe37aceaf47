"""Produce (key 0).

Version notes:
- v0-v13 advertised, v3-v13 served: Kafka 4 advertises v0-2 because librdkafka 2.0.2 checks
  Produce v0 before it compresses (KAFKA-18659), and answers them UNSUPPORTED_VERSION.
  kcat/aiokafka/kafkajs send v7, kafka-python v9, librdkafka 2.16 v10.
- v13+ name topics by topic id (KIP-516); an unknown id gets UNKNOWN_TOPIC_ID for each of
  its partitions, and the answer names topics by id.
- acks 0 (no response), 1 and -1 (all): with one replica both mean "in this node's log";
  any other value is INVALID_REQUIRED_ACKS.  Durability follows the flush policy.  In a
  virtual cluster (``kbroker.cluster``) acks -1 with an ISR below min.insync.replicas is
  NOT_ENOUGH_REPLICAS, a partition this node does not lead NOT_LEADER_OR_FOLLOWER, with
  v10+ current_leader and node_endpoints (KIP-951).
- Batches are stored as received: ``log`` checks magic, sizes and CRC-32C on the header view
  and patches only base offset, leader epoch and (LogAppendTime topics) the max timestamp.
- Idempotence: a duplicate of one of the producer's last five batches is answered NONE with
  the original base offset; OUT_OF_ORDER_SEQUENCE_NUMBER / INVALID_PRODUCER_EPOCH otherwise.
- v2+ log_append_time_ms (-1 for CreateTime topics); v5+ log_start_offset; v8+ error_message.
- Transactional batches must belong to the request's transactional id.  v3-v11 (transaction
  version 0/1 clients): the partition must be one its ongoing transaction added
  (AddPartitionsToTxn), else INVALID_TXN_STATE (or the coordinator's fencing error).
  Kafka does this from 3.6 (KIP-890 part 1); an emulated older release
  (``kbroker.emulate.version`` < 3.6) does not check.  v12+ (transaction version 2,
  KIP-890 part 2): the partition is added to the transaction here, as a Kafka leader's
  AddPartitionsToTxn v5 does; the coordinator's answers become Produce codes as Kafka's
  ReplicaManager maps them: PRODUCER_FENCED -> INVALID_PRODUCER_EPOCH,
  CONCURRENT_TRANSACTIONS (the previous transaction's markers pending) ->
  NOT_ENOUGH_REPLICAS (retriable), INVALID_PRODUCER_ID_MAPPING as it is.
- A produce never creates a topic (Kafka auto-creates on Metadata only).
- Compacted topics (cleanup.policy has compact) refuse a record without a key:
  INVALID_RECORD with v8+ record_errors naming the record's index in its batch, as
  Kafka's LogValidator does.  Only these topics pay for decoding the records here.
- ACLs (when an authorizer is configured): a transactional id needs WRITE on it, else every
  partition is TRANSACTIONAL_ID_AUTHORIZATION_FAILED; each topic needs WRITE, else its
  partitions are TOPIC_AUTHORIZATION_FAILED (before any existence check, as Kafka).
- Fault rules with ``after_append`` (``kbroker.control.faults``; the older
  ``kbroker.test.fail.produce.after.append.every`` is one) answer a stored partition with
  their error (NOT_ENOUGH_REPLICAS_AFTER_APPEND, ...), so clients retry a stored batch.
"""

from __future__ import annotations

from kbroker.acl.check import TOPIC, TRANSACTIONAL_ID, allowed
from kbroker.acl.model import AclOperation
from kbroker.errors import KafkaError, log_error_code
from kbroker.handlers._partitions import find_partition
from kbroker.log.errors import DuplicateSequence, LogError
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.exceptions import DecodeError
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.messages.produce_response import (
    BatchIndexAndErrorMessage,
    PartitionProduceResponse,
    ProduceResponse,
    TopicProduceResponse,
)
from kbroker.wire.records import CorruptRecordBatch, RecordBatchView, decode_records, iter_batches

VALID_ACKS = (-1, 0, 1)
# v0-2 (message formats v0/v1) are advertised for librdkafka 2.0.2's sake, never served.
FIRST_SERVED_VERSION = 3
# v12+ come from transaction version 2 clients: the partition joins the transaction here.
IMPLICIT_ADD_VERSION = 12
# The coordinator's implicit-add answers as Kafka's ReplicaManager hands them to producers.
IMPLICIT_ADD_ERRORS = {
    ErrorCode.PRODUCER_FENCED: ErrorCode.INVALID_PRODUCER_EPOCH,
    ErrorCode.CONCURRENT_TRANSACTIONS: ErrorCode.NOT_ENOUGH_REPLICAS,
}
# v13+ name topics by topic id (KIP-516).
TOPIC_ID_VERSION = 13


def _check_transactional(ctx: RequestContext, transactional_id: str | None, topic_name: str, p: PartitionProduceData) -> ErrorCode:
    """A transactional batch must come with the transactional id whose ongoing transaction
    holds this partition (KIP-890 part 1's verification; Kafka 4 does it by default)."""
    assert p.records is not None
    try:
        first = RecordBatchView(p.records)
    except DecodeError:
        return ErrorCode.NONE  # the log refuses it with the precise error
    if not first.is_transactional:
        return ErrorCode.NONE
    if transactional_id is None:
        return ErrorCode.INVALID_TXN_STATE
    if ctx.api_version >= IMPLICIT_ADD_VERSION:
        added = ErrorCode(ctx.broker.transactions.add_partition_implicitly(transactional_id, first.producer_id, first.producer_epoch, topic_name, p.index))
        return IMPLICIT_ADD_ERRORS.get(added, added)
    if not ctx.broker.emulation.verifies_transactional_produce:
        return ErrorCode.NONE
    code: ErrorCode = ctx.broker.transactions.verify_partition(
        transactional_id, first.producer_id, first.producer_epoch, topic_name, p.index
    )
    return code


def _first_keyless_record(records: bytes | bytearray | memoryview) -> int | None:
    """The index (within its batch) of the first data record without a key, or None.
    Undecodable input is left to the log's own validation."""
    try:
        for view in iter_batches(records):
            if view.is_control:
                continue
            for index, record in enumerate(decode_records(view)):
                if record.key is None:
                    return index
    except (CorruptRecordBatch, DecodeError):
        return None
    return None


def _append(
    ctx: RequestContext,
    topic_name: str,
    p: PartitionProduceData,
    acks_ok: bool,
    transactional_id: str | None = None,
    acks: int = 1,
) -> PartitionProduceResponse:
    out = PartitionProduceResponse(index=p.index, error_code=ErrorCode.NONE, base_offset=-1)
    if not acks_ok:
        out.error_code = ErrorCode.INVALID_REQUIRED_ACKS
        return out
    broker = ctx.broker
    topic = broker.metadata.get(topic_name)
    try:
        log = find_partition(ctx, topic, p.index)
        if acks == -1 and broker.cluster is not None:
            assert topic is not None
            broker.cluster.check_min_isr(topic, p.index)
    except KafkaError as exc:
        out.error_code = exc.code
        out.error_message = exc.message
        return out
    assert topic is not None
    if not p.records:
        out.error_code = ErrorCode.CORRUPT_MESSAGE
        out.error_message = "no record batch in the produce request"
        return out
    code = _check_transactional(ctx, transactional_id, topic_name, p)
    if code != ErrorCode.NONE:
        out.error_code = code
        return out
    if log.config.is_compacted:
        keyless = _first_keyless_record(p.records)
        if keyless is not None:
            out.error_code = ErrorCode.INVALID_RECORD
            out.error_message = f"Compacted topic cannot accept message without key in topic partition {topic_name}-{p.index}."
            out.record_errors = [BatchIndexAndErrorMessage(batch_index=keyless, batch_index_error_message=out.error_message)]
            out.log_start_offset = log.log_start_offset
            return out
    try:
        result = log.append(p.records, leader_epoch=topic.leader_epochs[p.index], now_ms=ctx.now_ms)
    except DuplicateSequence as dup:
        out.base_offset = dup.base_offset
        out.log_start_offset = log.log_start_offset
        return out
    except LogError as exc:
        out.error_code = log_error_code(exc)
        out.error_message = str(exc)
        out.log_start_offset = log.log_start_offset
        return out
    broker.waiters.notify((topic_name, p.index))
    broker.stats.produced(topic_name, result.record_count, result.size_bytes)
    if broker.append_faults_active:  # a fault rule with after_append (kbroker.control.faults)
        injected = broker.fault_engine.after_append(ctx, topic_name, p.index)
        if injected is not None:
            out.error_code = injected
            out.log_start_offset = result.log_start_offset
            return out
    out.base_offset = result.base_offset
    out.log_append_time_ms = result.log_append_time_ms
    out.log_start_offset = result.log_start_offset
    return out


def _refuse(p: PartitionProduceData, code: ErrorCode) -> PartitionProduceResponse:
    return PartitionProduceResponse(index=p.index, error_code=code, base_offset=-1)


def _produce_topic(
    ctx: RequestContext, t: TopicProduceData, acks_ok: bool, transactional_id: str | None, acks: int = 1
) -> TopicProduceResponse:
    name: str | None = t.name
    if ctx.api_version >= TOPIC_ID_VERSION:
        topic = ctx.broker.metadata.by_id(t.topic_id)
        name = None if topic is None else topic.name
    if name is None:
        return TopicProduceResponse(topic_id=t.topic_id, partition_responses=[_refuse(p, ErrorCode.UNKNOWN_TOPIC_ID) for p in t.partition_data])
    if ctx.broker.authorizer is not None and not allowed(ctx, AclOperation.WRITE, TOPIC, name):
        partitions = [_refuse(p, ErrorCode.TOPIC_AUTHORIZATION_FAILED) for p in t.partition_data]
    else:
        partitions = [_append(ctx, name, p, acks_ok, transactional_id, acks) for p in t.partition_data]
    return TopicProduceResponse(name=name, topic_id=t.topic_id, partition_responses=partitions)


def _authorized_produce(ctx: RequestContext, req: ProduceRequest) -> list[TopicProduceResponse]:
    if req.transactional_id is not None and not allowed(ctx, AclOperation.WRITE, TRANSACTIONAL_ID, req.transactional_id):
        code = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        return [
            TopicProduceResponse(name=t.name, topic_id=t.topic_id, partition_responses=[_refuse(p, code) for p in t.partition_data])
            for t in req.topic_data
        ]
    acks_ok = req.acks in VALID_ACKS
    return [_produce_topic(ctx, t, acks_ok, req.transactional_id, req.acks) for t in req.topic_data]


@handler(ApiKey.PRODUCE, 0, 13)
async def handle_produce(ctx: RequestContext, req: ProduceRequest) -> ProduceResponse | None:
    if ctx.api_version < FIRST_SERVED_VERSION:
        responses = [
            TopicProduceResponse(name=t.name, partition_responses=[_refuse(p, ErrorCode.UNSUPPORTED_VERSION) for p in t.partition_data])
            for t in req.topic_data
        ]
    elif ctx.broker.authorizer is not None:
        responses = _authorized_produce(ctx, req)
    else:
        acks_ok = req.acks in VALID_ACKS
        responses = [_produce_topic(ctx, t, acks_ok, req.transactional_id, req.acks) for t in req.topic_data]
    stats = ctx.broker.stats
    for t in responses:
        for p in t.partition_responses:
            if p.error_code:
                stats.error(ApiKey.PRODUCE, p.error_code)
    if req.acks == 0:
        return None
    response = ProduceResponse(responses=responses)
    if ctx.broker.cluster is not None:
        from kbroker.cluster_routing import annotate_produce

        annotate_produce(ctx.broker.cluster, ctx, response)
    return response

"""Where an injected error goes in a Kafka answer, found from the generated message schemas.

A struct with a topic field (``name``, ``topic``, ``topic_name`` or ``topic_id``) is a topic
entry; one with a partition field (``partition_index``, ``partition``, ``index``) is a
partition entry; the top-level struct carries the request-wide error code when it has one.
So the same few walks serve every API: :func:`request_entries` lists the (topic, partition)
pairs a request names, :func:`place_error` writes an error into the entries of an answer a
rule selects, and :func:`withhold` / :func:`answer_withheld` take partitions out of a
request that stores data (so a failed partition is never applied) and answer them with the
error, as Kafka's per-partition errors look.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode

if TYPE_CHECKING:
    from kbroker.registry import RequestContext

TOPIC_NAME_FIELDS = ("name", "topic", "topic_name")
PARTITION_FIELDS = ("partition_index", "partition", "index")
# The error code of an entry (AddPartitionsToTxn v0-3 names its partitions' one differently).
ERROR_FIELDS = ("error_code", "partition_error_code")
# Int arrays of partition numbers inside a topic entry (DescribeProducers, forgotten topics).
PARTITION_LIST_FIELDS = ("partitions", "partition_indexes")
# What a failed partition entry says instead of data (Kafka's values for "none").
FAILED_PARTITION_RESETS: dict[str, Any] = {
    "base_offset": -1,
    "high_watermark": -1,
    "last_stable_offset": -1,
    "log_start_offset": -1,
    "offset": -1,
    "timestamp": -1,
    "records": None,
}

# APIs that store data per partition: matching partitions are withheld from the handler.
WITHHELD_APIS = frozenset(
    {ApiKey.PRODUCE, ApiKey.OFFSET_COMMIT, ApiKey.TXN_OFFSET_COMMIT, ApiKey.DELETE_RECORDS}
)
# APIs that change nothing: they run and the error is written over their answer.
READ_ONLY_APIS = frozenset(
    {
        ApiKey.FETCH, ApiKey.LIST_OFFSETS, ApiKey.METADATA, ApiKey.OFFSET_FETCH, ApiKey.FIND_COORDINATOR,
        ApiKey.DESCRIBE_GROUPS, ApiKey.LIST_GROUPS, ApiKey.API_VERSIONS, ApiKey.DESCRIBE_CONFIGS,
        ApiKey.DESCRIBE_CLUSTER, ApiKey.DESCRIBE_PRODUCERS, ApiKey.DESCRIBE_TRANSACTIONS,
        ApiKey.LIST_TRANSACTIONS, ApiKey.DESCRIBE_LOG_DIRS, ApiKey.OFFSET_FOR_LEADER_EPOCH,
        ApiKey.DESCRIBE_ACLS, ApiKey.DESCRIBE_TOPIC_PARTITIONS, ApiKey.CONSUMER_GROUP_DESCRIBE,
        ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS, ApiKey.LIST_PARTITION_REASSIGNMENTS, ApiKey.DESCRIBE_QUORUM,
    }
)  # fmt: skip

Selector = Callable[[str | None, int | None], bool]


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a struct class is, for these walks."""

    topic_field: str | None
    has_topic_id: bool
    partition_field: str | None
    partition_lists: tuple[str, ...]
    struct_arrays: tuple[tuple[str, type], ...]
    error_field: str | None
    has_message: bool

    @property
    def is_topic(self) -> bool:
        return self.topic_field is not None or self.has_topic_id


_SHAPES: dict[type, _Shape] = {}


def _shape(cls: type) -> _Shape:
    found = _SHAPES.get(cls)
    if found is None:
        schema = getattr(cls, "SCHEMA", ())
        kinds = {f.name: (f.kind, f.array) for f in schema}
        found = _Shape(
            topic_field=next(
                (n for n in TOPIC_NAME_FIELDS if kinds.get(n) == ("string", False)), None
            ),
            has_topic_id=kinds.get("topic_id") == ("uuid", False),
            partition_field=next(
                (n for n in PARTITION_FIELDS if kinds.get(n) == ("int32", False)), None
            ),
            partition_lists=tuple(
                n for n in PARTITION_LIST_FIELDS if kinds.get(n) == ("int32", True)
            ),
            struct_arrays=tuple(
                (f.name, f.struct)
                for f in schema
                if f.kind == "struct" and f.array and f.struct is not None
            ),
            error_field=next((n for n in ERROR_FIELDS if kinds.get(n) == ("int16", False)), None),
            has_message=kinds.get("error_message") == ("string", False),
        )
        _SHAPES[cls] = found
    return found


def has_request_error(response_cls: type, version: int) -> bool:
    """The answer has a request-wide error code in this version (AddPartitionsToTxn has one
    from v4 only, for example)."""
    field = next((f for f in getattr(response_cls, "SCHEMA", ()) if f.name == "error_code"), None)
    return (
        field is not None
        and field.kind == "int16"
        and not field.array
        and field.in_version(version)
    )


def _topic_of(ctx: RequestContext, obj: Any, shape: _Shape) -> str | None:
    if shape.topic_field is not None:
        name = getattr(obj, shape.topic_field)
        if name:
            return str(name)
    if shape.has_topic_id:
        topic_id = obj.topic_id
        if isinstance(topic_id, uuid.UUID) and topic_id.int:
            topic = ctx.broker.metadata.by_id(topic_id)
            return None if topic is None else topic.name
    return None


def request_entries(ctx: RequestContext, request: Any) -> list[tuple[str | None, int | None]]:
    """The (topic, partition) pairs a request names; (topic, None) for a topic named
    without partitions."""
    out: list[tuple[str | None, int | None]] = []
    # A Metadata request for all topics names none: null (v1+), or [] in v0.
    if ctx.api_key == ApiKey.METADATA and (
        request.topics is None or (ctx.api_version == 0 and not request.topics)
    ):
        return [(topic.name, None) for topic in ctx.broker.metadata]
    _entries(ctx, request, None, out)
    return out


def _entries(
    ctx: RequestContext, obj: Any, topic: str | None, out: list[tuple[str | None, int | None]]
) -> None:
    shape = _shape(type(obj))
    if shape.is_topic:
        topic = _topic_of(ctx, obj, shape)
    if shape.partition_field is not None:
        out.append((topic, getattr(obj, shape.partition_field)))
    before = len(out)
    for name in shape.partition_lists:
        out.extend((topic, p) for p in getattr(obj, name) or ())
    for name, _cls in shape.struct_arrays:
        for child in getattr(obj, name) or ():
            _entries(ctx, child, topic, out)
    if shape.is_topic and len(out) == before:
        out.append((topic, None))


def place_error(
    ctx: RequestContext,
    response: Any,
    code: ErrorCode,
    message: str | None,
    selects: Selector,
    *,
    whole: bool,
) -> int:
    """Write ``code`` into the entries of ``response`` that ``selects`` chooses (the
    request-wide and other non-topic entries too when ``whole``); entries that already
    carry an error keep it.  Returns how many partition entries got it."""
    return _place(ctx, response, None, 0, int(code), message, selects, whole)


def _place(
    ctx: RequestContext,
    obj: Any,
    topic: str | None,
    depth: int,
    code: int,
    message: str | None,
    selects: Selector,
    whole: bool,
) -> int:
    failed = 0
    shape = _shape(type(obj))
    if shape.is_topic:
        topic = _topic_of(ctx, obj, shape)
    if shape.error_field is not None and getattr(obj, shape.error_field) == 0:
        if shape.partition_field is not None:
            hit = selects(topic, getattr(obj, shape.partition_field))
        elif shape.is_topic:
            hit = selects(topic, None)
        else:
            hit = whole
        if hit:
            _fail(obj, shape, code, message, partition=shape.partition_field is not None)
            failed += shape.partition_field is not None
    for name, _cls in shape.struct_arrays:
        for child in getattr(obj, name) or ():
            failed += _place(ctx, child, topic, depth + 1, code, message, selects, whole)
    return failed


def _fail(obj: Any, shape: _Shape, code: int, message: str | None, *, partition: bool) -> None:
    assert shape.error_field is not None
    setattr(obj, shape.error_field, code)
    if message is not None and shape.has_message:
        obj.error_message = message
    if partition:
        for name, value in FAILED_PARTITION_RESETS.items():
            if hasattr(obj, name):
                setattr(obj, name, value)


# (topic name, topic id, partition) of a withheld partition
Withheld = list[tuple[str | None, uuid.UUID | None, int]]


def withhold(ctx: RequestContext, request: Any, selects: Selector) -> tuple[Any, Withheld]:
    """Take the partitions ``selects`` chooses out of a data-storing request (in place);
    returns the request and what was taken out."""
    withheld: Withheld = []
    shape = _shape(type(request))
    for name, _cls in shape.struct_arrays:
        topics = getattr(request, name) or []
        kept_topics = []
        for t in topics:
            t_shape = _shape(type(t))
            topic = _topic_of(ctx, t, t_shape) if t_shape.is_topic else None
            took = False
            for p_name, _p_cls in t_shape.struct_arrays:
                kept = []
                for p in getattr(t, p_name) or ():
                    index = getattr(p, _shape(type(p)).partition_field or "", None)
                    if index is not None and selects(topic, index):
                        name_value = (
                            getattr(t, t_shape.topic_field) if t_shape.topic_field else None
                        )
                        withheld.append(
                            (name_value, t.topic_id if t_shape.has_topic_id else None, index)
                        )
                        took = True
                    else:
                        kept.append(p)
                setattr(t, p_name, kept)
            if not took or any(getattr(t, p_name) for p_name, _ in t_shape.struct_arrays):
                kept_topics.append(t)
        setattr(request, name, kept_topics)
    return request, withheld


def answer_withheld(
    response: Any, withheld: Withheld, code: ErrorCode, message: str | None
) -> None:
    """Add the withheld partitions to ``response``, each failed with ``code``."""
    if not withheld:
        return
    shape = _shape(type(response))
    for name, topic_cls in shape.struct_arrays:
        t_shape = _shape(topic_cls)
        part = next(((n, c) for n, c in t_shape.struct_arrays if _shape(c).partition_field), None)
        if not t_shape.is_topic or part is None:
            continue
        part_name, part_cls = part
        p_shape = _shape(part_cls)
        assert p_shape.partition_field is not None
        topics = getattr(response, name)
        for topic_name, topic_id, index in withheld:
            entry = next((t for t in topics if _same_topic(t, t_shape, topic_name, topic_id)), None)
            if entry is None:
                entry = topic_cls()
                if t_shape.topic_field is not None and topic_name is not None:
                    setattr(entry, t_shape.topic_field, topic_name)
                if t_shape.has_topic_id and topic_id is not None:
                    entry.topic_id = topic_id
                topics.append(entry)
            failed = part_cls()
            setattr(failed, p_shape.partition_field, index)
            _fail(failed, p_shape, int(code), message, partition=True)
            getattr(entry, part_name).append(failed)
        return


def _same_topic(entry: Any, shape: _Shape, name: str | None, topic_id: uuid.UUID | None) -> bool:
    if shape.topic_field is not None and name and getattr(entry, shape.topic_field) == name:
        return True
    return (
        shape.has_topic_id
        and topic_id is not None
        and topic_id.int != 0
        and entry.topic_id == topic_id
    )

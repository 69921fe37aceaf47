"""The console's write actions (only with ``kbroker.console.read.only=false``).

Each goes through the same broker code as the Kafka request that does the same thing, so
the console can do nothing a client could not: CreateTopics' checks and
``TopicManager.create_topic``; DeleteTopics' refusal of internal topics and
``TopicManager.delete_topic``; an admin OffsetCommit (generation -1, no member id) through
the group coordinator, which accepts it only while the group has no active members, and
whose records are appended to ``__consumer_offsets`` like any commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.clock import now_ms
from kbroker.console.state import group_info
from kbroker.errors import KafkaError
from kbroker.metadata import INTERNAL_TOPICS
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)

if TYPE_CHECKING:
    from kbroker.server import Broker

# The OffsetCommit version the reset uses (by topic name; no retention time).
RESET_COMMIT_VERSION = 8
# Config lines a create form may carry.
MAX_CREATE_CONFIGS = 100
RESET_TARGETS = ("earliest", "latest", "offset")


class ActionError(Exception):
    """A form that cannot be carried out; the message is shown to the user."""


def _parse_configs(text: str) -> dict[str, str]:
    configs: dict[str, str] = {}
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_CREATE_CONFIGS:
        raise ActionError(f"at most {MAX_CREATE_CONFIGS} configs")
    for line in lines:
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ActionError(f"config line {line!r} is not name=value")
        configs[key.strip()] = value.strip()
    return configs


def create_topic(broker: Broker, name: str, partitions: str, configs_text: str) -> str:
    name = name.strip()
    try:
        count = int(partitions) if partitions.strip() else -1
    except ValueError:
        raise ActionError("partitions must be a whole number") from None
    if name in INTERNAL_TOPICS:
        raise ActionError(f"Creation of internal topic {name} is prohibited.")
    configs = _parse_configs(configs_text)
    try:
        count = broker.topics.check_new_topic(name, count, -1, dict(configs))
    except KafkaError as exc:
        raise ActionError(f"{exc.code.name}: {exc.message}") from None
    broker.topics.create_topic(name, count, configs, now_ms())
    return name


def delete_topic(broker: Broker, name: str) -> str:
    topic = broker.metadata.get(name)
    if topic is None:
        raise ActionError(f"No topic named {name!r}.")
    if topic.is_internal:
        raise ActionError(f"Internal topic {name} cannot be deleted.")
    if not broker.config.get_bool("delete.topic.enable"):
        raise ActionError("Topic deletion is disabled (delete.topic.enable=false).")
    broker.topics.delete_topic(name)
    return name


def reset_offsets(broker: Broker, group_id: str, topic: str, to: str, offset_text: str) -> int:
    """Move the group's committed offsets (of ``topic``, or of every committed partition) to
    the earliest or latest offset or to ``offset`` (clamped to the log); the count moved."""
    info = group_info(broker, group_id)
    if info is None:
        raise ActionError(f"No consumer group {group_id!r}.")
    if not info.can_reset:
        raise ActionError(
            f"Group {group_id} is {info.state} with {len(info.members)} member(s): stop its consumers "
            "before resetting offsets."
        )
    if to not in RESET_TARGETS:
        raise ActionError(f"reset target must be one of {', '.join(RESET_TARGETS)}")
    wanted_offset = 0
    if to == "offset":
        try:
            wanted_offset = int(offset_text)
        except ValueError:
            raise ActionError("offset must be a whole number") from None
    chosen = [o for o in info.offsets if not topic or o.topic == topic]
    if not chosen:
        raise ActionError(f"Group {group_id} has no committed offsets{' for ' + topic if topic else ''}.")
    by_topic: dict[str, list[OffsetCommitRequestPartition]] = {}
    for o in chosen:
        log = broker.topics.log(o.topic, o.partition)
        if log is None:
            continue
        target = {"earliest": log.log_start_offset, "latest": log.high_watermark}.get(to, wanted_offset)
        target = min(max(target, log.log_start_offset), log.high_watermark)
        by_topic.setdefault(o.topic, []).append(
            OffsetCommitRequestPartition(partition_index=o.partition, committed_offset=target, committed_metadata="")
        )
    request = OffsetCommitRequest(
        group_id=group_id,
        generation_id_or_member_epoch=-1,
        member_id="",
        topics=[OffsetCommitRequestTopic(name=t, partitions=ps) for t, ps in by_topic.items()],
    )
    runtime = broker.groups
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.commit_offsets(request, api_version=RESET_COMMIT_VERSION))
    assert response is not None
    errors = {ErrorCode(p.error_code).name for t in response.topics for p in t.partitions if p.error_code}
    if errors:
        raise ActionError(f"the group coordinator refused the reset: {', '.join(sorted(errors))}")
    return sum(len(ps) for ps in by_topic.values())

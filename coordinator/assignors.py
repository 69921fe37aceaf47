"""Server-side assignors of KIP-848 consumer groups: ``uniform`` and ``range``.

An assignor is a pure function ``(members, topics, previous target) -> new target``:

- ``members``: member id -> ``AssignorMember`` (subscribed topic ids, instance id);
- ``topics``: topic id -> number of partitions (only topics some member subscribes to);
- ``previous``: the group's current target assignment (member id -> {topic id: parts}).

Every assignor returns an assignment that is *complete* (every partition of every
subscribed topic goes to exactly one member that subscribes to its topic, when one
exists) and *disjoint*; ``check_assignment`` asserts both and the tests lean on it.

``uniform`` (Kafka's ``UniformAssignor``): sticky and balanced.  Partitions stay with their
previous owner while that owner still subscribes and is not above its fair share; the rest
go to the least loaded eligible member; then partitions move from the most to the least
loaded eligible member until no eligible pair differs by more than one.
``range`` (Kafka's ``RangeAssignor``): per topic, the subscribers sorted by instance id
(else member id) each get a contiguous range; the first ``n % k`` get one more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from uuid import UUID

__all__ = [
    "ASSIGNORS",
    "AssignorMember",
    "TargetAssignment",
    "check_assignment",
    "range_assign",
    "resolve_assignor_name",
    "uniform_assign",
]

TargetAssignment = dict[str, dict[UUID, frozenset[int]]]

MAX_BALANCE_MOVES_PER_PARTITION = 2
"""Bound on the uniform assignor's balancing pass: at most this many moves per partition."""


@dataclass(frozen=True, slots=True)
class AssignorMember:
    subscribed_topic_ids: frozenset[UUID]
    instance_id: str | None = None


Assignor = Callable[
    [Mapping[str, AssignorMember], Mapping[UUID, int], Mapping[str, Mapping[UUID, frozenset[int]]]],
    TargetAssignment,
]


def _finish(owned: dict[str, dict[UUID, set[int]]]) -> TargetAssignment:
    return {m: {t: frozenset(p) for t, p in tps.items() if p} for m, tps in owned.items()}


def uniform_assign(
    members: Mapping[str, AssignorMember],
    topics: Mapping[UUID, int],
    previous: Mapping[str, Mapping[UUID, frozenset[int]]],
) -> TargetAssignment:
    owned: dict[str, dict[UUID, set[int]]] = {m: {} for m in members}
    load = dict.fromkeys(members, 0)
    eligible: dict[UUID, list[str]] = {
        t: sorted(m for m, info in members.items() if t in info.subscribed_topic_ids)
        for t in sorted(topics)
    }
    total = sum(n for t, n in topics.items() if eligible[t])
    fair = -(-total // len(members)) if members else 0  # ceiling
    taken: set[tuple[UUID, int]] = set()
    # 1. stickiness: keep previous owners up to their fair share
    for member_id in sorted(previous):
        if member_id not in members:
            continue
        info = members[member_id]
        for topic_id, parts in sorted(previous[member_id].items()):
            if topic_id not in info.subscribed_topic_ids or topic_id not in topics:
                continue
            for p in sorted(parts):
                if p >= topics[topic_id] or (topic_id, p) in taken or load[member_id] >= fair:
                    continue
                owned[member_id].setdefault(topic_id, set()).add(p)
                taken.add((topic_id, p))
                load[member_id] += 1
    # 2. the rest to the least loaded eligible member (fewest candidates first)
    for topic_id in sorted(topics, key=lambda t: (len(eligible[t]), t)):
        candidates = eligible[topic_id]
        if not candidates:
            continue
        for p in range(topics[topic_id]):
            if (topic_id, p) in taken:
                continue
            best = min(candidates, key=lambda m: (load[m], m))
            owned[best].setdefault(topic_id, set()).add(p)
            taken.add((topic_id, p))
            load[best] += 1
    # 3. balance: move from heavy to light eligible members (bounded)
    budget = MAX_BALANCE_MOVES_PER_PARTITION * max(1, total)
    moved = True
    while moved and budget > 0:
        moved = False
        for heavy in sorted(members, key=lambda m: (-load[m], m)):
            for topic_id in sorted(owned[heavy]):
                candidates = eligible[topic_id]
                light = min(candidates, key=lambda m: (load[m], m))
                if load[light] + 1 >= load[heavy] or not owned[heavy][topic_id]:
                    continue
                p = max(owned[heavy][topic_id])
                owned[heavy][topic_id].discard(p)
                owned[light].setdefault(topic_id, set()).add(p)
                load[heavy] -= 1
                load[light] += 1
                budget -= 1
                moved = True
                break
            if moved:
                break
    return _finish(owned)


def range_assign(
    members: Mapping[str, AssignorMember],
    topics: Mapping[UUID, int],
    previous: Mapping[str, Mapping[UUID, frozenset[int]]],
) -> TargetAssignment:
    del previous  # range is positional, not sticky
    owned: dict[str, dict[UUID, set[int]]] = {m: {} for m in members}
    for topic_id in sorted(topics):
        subscribers = sorted(
            (m for m, info in members.items() if topic_id in info.subscribed_topic_ids),
            key=lambda m: (members[m].instance_id is None, members[m].instance_id or "", m),
        )
        if not subscribers:
            continue
        per, extra = divmod(topics[topic_id], len(subscribers))
        start = 0
        for i, member_id in enumerate(subscribers):
            count = per + (1 if i < extra else 0)
            if count:
                owned[member_id][topic_id] = set(range(start, start + count))
            start += count
    return _finish(owned)


ASSIGNORS: dict[str, Assignor] = {"uniform": uniform_assign, "range": range_assign}
_CLASS_NAMES = {
    "org.apache.kafka.coordinator.group.assignor.UniformAssignor": "uniform",
    "org.apache.kafka.coordinator.group.assignor.RangeAssignor": "range",
}


def resolve_assignor_name(name: str) -> str | None:
    """``uniform``/``range`` or Kafka's class names for them -> the short name; None if unknown."""
    name = name.strip()
    short = _CLASS_NAMES.get(name, name)
    return short if short in ASSIGNORS else None


def check_assignment(
    members: Mapping[str, AssignorMember],
    topics: Mapping[UUID, int],
    assignment: Mapping[str, Mapping[UUID, frozenset[int]]],
) -> None:
    """Assert the assignment is disjoint, complete and respects subscriptions."""
    seen: set[tuple[UUID, int]] = set()
    for member_id, tps in assignment.items():
        assert member_id in members, f"unknown member {member_id}"
        for topic_id, parts in tps.items():
            assert topic_id in members[member_id].subscribed_topic_ids, "not subscribed"
            for p in parts:
                assert 0 <= p < topics[topic_id], f"no partition {p}"
                assert (topic_id, p) not in seen, f"partition {topic_id}-{p} assigned twice"
                seen.add((topic_id, p))
    for topic_id, n in topics.items():
        if any(topic_id in m.subscribed_topic_ids for m in members.values()):
            for p in range(n):
                assert (topic_id, p) in seen, f"partition {topic_id}-{p} unassigned"

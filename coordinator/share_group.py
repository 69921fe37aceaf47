"""The KIP-932 share group model: members, epochs, the simple assignment, the state table.

Theory of operation.  A share group's members all read the same partitions at once; the
share-partitions (``share_partition``) make sure each record goes to one member at a time,
so the group needs no revocation step: the target assignment of a member is simply every
partition of the topics it subscribes to (Kafka's simple assignor with no constraint), and a
member moves straight to it.  The group epoch goes up whenever membership, a subscription
or the partition count of a subscribed topic changes; a member catches up to the group
epoch at its next heartbeat and gets its (possibly changed) assignment with it.

Group states, as Kafka's ShareGroupState: Empty (no members), Stable (members), Dead
(deleted).  :data:`STATE_TRANSITIONS` lists every allowed change and
:meth:`ShareGroup.transition` asserts against it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from uuid import UUID

__all__ = ["ShareGroup", "ShareGroupMember", "ShareGroupState", "simple_assignment"]

LEAVE_GROUP_MEMBER_EPOCH = -1


class ShareGroupState(enum.Enum):
    EMPTY = "Empty"
    STABLE = "Stable"
    DEAD = "Dead"

    def __str__(self) -> str:
        return self.value


_E, _S, _D = ShareGroupState.EMPTY, ShareGroupState.STABLE, ShareGroupState.DEAD
STATE_TRANSITIONS: frozenset[tuple[ShareGroupState, ShareGroupState]] = frozenset(
    {(_E, _E), (_E, _S), (_S, _S), (_S, _E), (_E, _D)}
)

Parts = Mapping[UUID, frozenset[int]]


@dataclass(slots=True)
class ShareGroupMember:
    member_id: str
    member_epoch: int = 0
    previous_member_epoch: int = 0
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    subscribed_topic_names: list[str] = field(default_factory=list)
    assigned: dict[UUID, frozenset[int]] = field(default_factory=dict)


@dataclass(slots=True)
class ShareGroup:
    group_id: str
    state: ShareGroupState = ShareGroupState.EMPTY
    group_epoch: int = 0
    members: dict[str, ShareGroupMember] = field(default_factory=dict)
    # name -> (topic id, partition count) of the subscribed topics at the last epoch bump
    subscribed_topics: dict[str, tuple[UUID, int]] = field(default_factory=dict)
    # topic id -> (name, partitions) whose share-partition state exists
    initialized: dict[UUID, tuple[str, frozenset[int]]] = field(default_factory=dict)

    def transition(self, new: ShareGroupState) -> None:
        assert (self.state, new) in STATE_TRANSITIONS, (
            f"share group {self.group_id}: {self.state} -> {new}"
        )
        self.state = new

    def update_state(self) -> None:
        self.transition(ShareGroupState.STABLE if self.members else ShareGroupState.EMPTY)


def simple_assignment(
    subscribed: list[str], topics: Mapping[str, tuple[UUID, int]]
) -> dict[UUID, frozenset[int]]:
    """Every partition of every subscribed topic that exists: share-partitions let several
    members read one partition, so nobody has to be left without one."""
    out: dict[UUID, frozenset[int]] = {}
    for name in subscribed:
        info = topics.get(name)
        if info is not None and info[1] > 0:
            out[info[0]] = frozenset(range(info[1]))
    return out

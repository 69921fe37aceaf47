"""Hypothesis state machine over KIP-848 consumer groups (fake clock).

Random joins, heartbeats (reporting or not reporting what the member owns), clean and
static leaves, silence past the session timeout, new partitions and new topics.  After
every step:

- no partition is held (assigned or pending revocation) by two members of the group;
- no two live clients believe they own the same partition (a client owns what its last
  heartbeat answer gave it);
- when the target is current (assignment epoch = group epoch) it is disjoint and complete
  over the subscribed topics (``check_assignment``);
- replaying the records written so far rebuilds exactly the live group.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from kbroker.coordinator.assignors import AssignorMember, check_assignment
from kbroker.coordinator.consumer_testing import (
    ConsumerGroupTestContext,
    SimConsumer,
    assert_clients_never_share,
    group_snapshot,
)

G = "g"
NAMES = [f"c{i}" for i in range(5)]


class ConsumerGroupMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ctx = ConsumerGroupTestContext()
        self.ctx.create_topic("t-0", 3)
        self.topic_count = 1
        self.clients: dict[str, SimConsumer] = {}
        self.next_id = 0

    @rule(name=st.sampled_from(NAMES), regex=st.booleans(), static=st.booleans(),
          assignor=st.sampled_from([None, "uniform", "range"]))
    def join(self, name: str, regex: bool, static: bool, assignor: str | None) -> None:
        if name in self.clients and self.clients[name].joined:
            return
        self.next_id += 1
        client = SimConsumer(
            self.ctx,
            G,
            f"{name}-{self.next_id}",
            topics=None if regex else ["t-0"],
            regex="t-.*" if regex else None,
            instance_id=name if static else None,
            assignor=assignor,
        )
        client.heartbeat()
        if client.last_error == 0:
            self.clients[name] = client

    @precondition(lambda self: bool(self.clients))
    @rule(data=st.data(), report=st.booleans())
    def heartbeat(self, data: st.DataObject, report: bool) -> None:
        name = data.draw(st.sampled_from(sorted(self.clients)))
        self.clients[name].heartbeat(report_owned=report)
        if not self.clients[name].joined:
            del self.clients[name]  # fenced: a real client would rejoin as new

    @precondition(lambda self: bool(self.clients))
    @rule(data=st.data(), static=st.booleans())
    def leave(self, data: st.DataObject, static: bool) -> None:
        name = data.draw(st.sampled_from(sorted(self.clients)))
        client = self.clients.pop(name)
        client.leave(static=static and client.instance_id is not None)

    @rule()
    def everyone_heartbeats(self) -> None:
        for name in sorted(self.clients):
            self.clients[name].heartbeat()
            if not self.clients[name].joined:
                del self.clients[name]

    @rule(ms=st.sampled_from([1_000, 20_000, 50_000]))
    def time_passes(self, ms: int) -> None:
        self.ctx.sleep(ms)
        group = self.ctx.coord.consumer_groups.get(G)
        live = set(group.members) if group is not None else set()
        for name in list(self.clients):
            if self.clients[name].member_id not in live:
                del self.clients[name]  # expired: the coordinator fenced it

    @rule(extra=st.integers(1, 3))
    def add_partitions(self, extra: int) -> None:
        name = f"t-{self.topic_count - 1}"
        _tid, n, _internal = self.ctx.topics[name]
        self.ctx.add_partitions(name, n + extra)

    @precondition(lambda self: self.topic_count < 3)
    @rule()
    def add_topic(self) -> None:
        self.ctx.create_topic(f"t-{self.topic_count}", 2)
        self.topic_count += 1

    @invariant()
    def partitions_held_once(self) -> None:
        self.ctx.assert_partitions_held_once(G)

    @invariant()
    def clients_never_share(self) -> None:
        assert_clients_never_share(client.owned_set() for client in self.clients.values())

    @invariant()
    def current_target_is_disjoint_and_complete(self) -> None:
        group = self.ctx.coord.consumer_groups.get(G)
        if group is None or group.assignment_epoch != group.group_epoch or not group.members:
            return
        manager = self.ctx.coord.consumer_groups
        members = {
            m.member_id: AssignorMember(manager._member_topic_ids(group, m), m.instance_id)
            for m in group.members.values()
        }
        topics = dict(group.subscribed_topics.values())
        check_assignment(members, topics, {m: group.target.get(m, {}) for m in members})

    @invariant()
    def replay_rebuilds_the_group(self) -> None:
        group = self.ctx.coord.consumer_groups.get(G)
        rebuilt = self.ctx.replayed().consumer_groups.get(G)
        if group is None:
            assert rebuilt is None
        else:
            assert rebuilt is not None and group_snapshot(rebuilt) == group_snapshot(group)


ConsumerGroupMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None
)
TestConsumerGroupMachine = ConsumerGroupMachine.TestCase

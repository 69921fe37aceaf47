"""Hypothesis state machine over a group that migrates back and forth (fake clock).

It starts as a classic group of two classic clients on a 6-partition topic; random
consumer-protocol clients join (the group is upgraded), heartbeat and leave (when the
last one leaves the group is downgraded), classic clients join, heartbeat/rejoin and
leave, and time passes (sessions expire).  Whenever the group is a classic group that is
rebalancing, its clients rejoin and the rebalance completes.  After every step:

- no partition is held (assigned or pending revocation) by two members of a consumer
  group at once;
- no two live clients believe they own the same partition;
- replaying the records written so far rebuilds the same group, of the same type.
"""

from __future__ import annotations

from typing import TypeVar

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from kbroker.coordinator.consumer_testing import (
    ConsumerGroupTestContext,
    SimConsumer,
    assert_clients_never_share,
    group_snapshot,
)
from kbroker.coordinator.migration_testing import SimClassic, classic_group
from kbroker.coordinator.state import GroupState
from kbroker.wire.errors import ErrorCode

G = "g"
T = "t"


Client = TypeVar("Client", SimConsumer, SimClassic)


def one_leaves(data: st.DataObject, clients: list[Client]) -> None:
    """A client drawn from ``clients`` is taken out of it and leaves the group."""
    client = data.draw(st.sampled_from(clients))
    clients.remove(client)
    client.leave()


class MigrationMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ctx = ConsumerGroupTestContext()
        self.ctx.create_topic(T, 6)
        self.classics: list[SimClassic] = classic_group(self.ctx, G, T, 2)
        self.consumers: list[SimConsumer] = []
        self.next_id = 0

    def is_consumer_group(self) -> bool:
        group = self.ctx.coord.consumer_groups.get(G)
        return group is not None and bool(group.members)

    def drop_expired(self) -> None:
        consumer = self.ctx.coord.consumer_groups.get(G)
        classic = self.ctx.coord.groups.get(G)
        live = set(consumer.members) if consumer is not None else set(classic.members) if classic else set()
        self.consumers = [c for c in self.consumers if c.member_id in live and c.joined]
        self.classics = [c for c in self.classics if c.member_id in live]

    def settle_classic_group(self) -> None:
        """A rebalancing classic group: every classic client rejoins, the round completes."""
        classic = self.ctx.coord.groups.get(G)
        if classic is None or classic.is_in(GroupState.STABLE, GroupState.EMPTY):
            return
        for c in self.classics:
            c.join()
        self.ctx.sleep(self.ctx.config.group_initial_rebalance_delay_ms + 1)
        answered = [c for c in self.classics if c.pending_join]
        self.classics = [c for c in answered if c.pending_join[0].error_code == 0]
        if not self.classics:
            return
        joins = {id(c): c.on_joined(c.pending_join[0]) for c in self.classics}
        leaders = [c for c in self.classics if joins[id(c)].leader == c.member_id]
        for c in self.classics:
            if c not in leaders:
                c.sync(joins[id(c)])
        for c in leaders:
            c.sync(joins[id(c)])
        for c in self.classics:
            if c not in leaders and c.pending_sync:
                c.on_synced(c.pending_sync[0])

    @rule()
    def consumer_joins(self) -> None:
        self.next_id += 1
        client = SimConsumer(self.ctx, G, f"c{self.next_id}", topics=[T])
        upgrade = self.ctx.coord.groups.get(G) is not None and bool(self.classics)
        client.heartbeat()
        if client.last_error == 0:
            self.consumers.append(client)
            if upgrade:
                event("upgraded a live classic group")

    @precondition(lambda self: bool(self.consumers))
    @rule(data=st.data(), report=st.booleans())
    def consumer_heartbeats(self, data: st.DataObject, report: bool) -> None:
        client = data.draw(st.sampled_from(self.consumers))
        client.heartbeat(report_owned=report)
        self.drop_expired()

    @precondition(lambda self: bool(self.consumers))
    @rule(data=st.data())
    def consumer_leaves(self, data: st.DataObject) -> None:
        one_leaves(data, self.consumers)
        if self.ctx.coord.groups.get(G) is not None and self.classics:
            event("downgraded to a classic group")
        self.settle_classic_group()

    @precondition(lambda self: self.is_consumer_group())
    @rule()
    def classic_joins_consumer_group(self) -> None:
        client = SimClassic(self.ctx, G, [T])
        join = client.join()
        assert join is not None and join.error_code == 0, join
        sync = client.sync(join)
        assert sync is not None and sync.error_code == 0, sync
        self.classics.append(client)

    @precondition(lambda self: bool(self.classics))
    @rule(data=st.data())
    def classic_steps(self, data: st.DataObject) -> None:
        client = data.draw(st.sampled_from(self.classics))
        if self.is_consumer_group():
            code = client.heartbeat()
            if code in (ErrorCode.REBALANCE_IN_PROGRESS, ErrorCode.ILLEGAL_GENERATION):
                client.rebalance()
        else:
            code = client.heartbeat()
            if code != ErrorCode.NONE:
                self.settle_classic_group()

    @precondition(lambda self: bool(self.classics))
    @rule(data=st.data())
    def classic_leaves(self, data: st.DataObject) -> None:
        one_leaves(data, self.classics)
        self.settle_classic_group()

    @rule()
    def everyone_steps(self) -> None:
        for client in list(self.consumers):
            client.heartbeat()
        rejoin = (ErrorCode.REBALANCE_IN_PROGRESS, ErrorCode.ILLEGAL_GENERATION)
        for client in list(self.classics):
            if self.is_consumer_group() and client.heartbeat() in rejoin:
                client.rebalance()
        self.drop_expired()
        self.settle_classic_group()

    @rule(ms=st.sampled_from([1_000, 20_000, 50_000]))
    def time_passes(self, ms: int) -> None:
        self.ctx.sleep(ms)
        self.drop_expired()
        self.settle_classic_group()

    @invariant()
    def partitions_held_once(self) -> None:
        self.ctx.assert_partitions_held_once(G)

    @invariant()
    def clients_never_share(self) -> None:
        owned = [c.owned_set() for c in self.consumers] + [c.owned_ids() for c in self.classics]
        assert_clients_never_share(owned)

    @invariant()
    def replay_rebuilds_the_group(self) -> None:
        replayed = self.ctx.replayed()
        group = self.ctx.coord.consumer_groups.get(G)
        rebuilt = replayed.consumer_groups.get(G)
        if group is not None:
            assert rebuilt is not None and group_snapshot(rebuilt) == group_snapshot(group)
            assert replayed.groups.get(G) is None
            return
        assert rebuilt is None
        classic, again = self.ctx.coord.groups.get(G), replayed.groups.get(G)
        if classic is not None and classic.members and classic.is_in(GroupState.STABLE):
            assert again is not None and set(again.members) == set(classic.members)
            assert again.generation_id == classic.generation_id


MigrationMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestMigrationMachine = MigrationMachine.TestCase

"""The broker-side contract, exercised on a real asyncio loop (as kbroker will run it).

Parked JoinGroup/SyncGroup answers arrive through ``reply`` callbacks wrapped in futures;
timeouts run through ``CallLaterTimer(loop.call_later, ...)``; records are appended
before replies are delivered.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, TypeVar

from kbroker.coordinator.config import GroupConfig
from kbroker.coordinator.group_coordinator import GroupCoordinator
from kbroker.coordinator.result import Record, Result, apply_result
from kbroker.coordinator.state import GroupState
from kbroker.coordinator.testing import subscription
from kbroker.coordinator.timer import CallLaterTimer
from kbroker.wire.messages.heartbeat_request import HeartbeatRequest
from kbroker.wire.messages.join_group_request import JoinGroupRequest, JoinGroupRequestProtocol
from kbroker.wire.messages.join_group_response import JoinGroupResponse
from kbroker.wire.messages.sync_group_request import SyncGroupRequest, SyncGroupRequestAssignment
from kbroker.wire.messages.sync_group_response import SyncGroupResponse

T = TypeVar("T")


class Runtime:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.log: list[Record] = []
        self.events: list[str] = []
        self.timer = CallLaterTimer(loop.call_later, sink=self.finish)
        self.coord = GroupCoordinator(
            now_ms=lambda: int(time.time() * 1000),
            timer=self.timer,
            config=GroupConfig(
                group_initial_rebalance_delay_ms=50, group_min_session_timeout_ms=100
            ),
        )

    def append(self, records: list[Record]) -> None:
        self.events.append(f"append {len(records)}")
        self.log.extend(records)

    def finish(self, result: Result[Any]) -> Any:
        return apply_result(result, self.append)

    async def call(self, handler: Any, request: Any, **kwargs: Any) -> Any:
        """What a kbroker handler does for JoinGroup/SyncGroup."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def reply(response: Any) -> None:
            self.events.append("reply")
            if not future.done():
                future.set_result(response)

        response = self.finish(handler(request, reply=reply, **kwargs))
        return response if response is not None else await future


async def consumer(rt: Runtime, client: str) -> tuple[str, int, bytes]:
    protocols = [JoinGroupRequestProtocol(name="range", metadata=subscription("t"))]
    join = JoinGroupRequest(
        group_id="g",
        session_timeout_ms=500,
        rebalance_timeout_ms=1000,
        protocol_type="consumer",
        protocols=protocols,
    )
    first: JoinGroupResponse = await rt.call(
        rt.coord.join_group, join, api_version=7, client_id=client, client_host="/1"
    )
    join.member_id = first.member_id
    joined: JoinGroupResponse = await rt.call(
        rt.coord.join_group, join, api_version=7, client_id=client, client_host="/1"
    )
    assignments = [
        SyncGroupRequestAssignment(member_id=m.member_id, assignment=m.member_id.encode())
        for m in joined.members
    ]
    sync = SyncGroupRequest(
        group_id="g",
        generation_id=joined.generation_id,
        member_id=joined.member_id,
        assignments=assignments,
    )
    synced: SyncGroupResponse = await rt.call(rt.coord.sync_group, sync, api_version=5)
    return joined.member_id, joined.generation_id, synced.assignment


def test_two_consumers_rebalance_on_a_real_event_loop_and_sessions_expire() -> None:
    async def main() -> None:
        rt = Runtime(asyncio.get_running_loop())
        (a, gen_a, assign_a), (b, gen_b, assign_b) = await asyncio.gather(
            consumer(rt, "ca"), consumer(rt, "cb")
        )
        assert gen_a == gen_b == 1
        assert (assign_a, assign_b) == (a.encode(), b.encode())
        group = rt.coord.groups.get("g")
        assert group is not None and group.state is GroupState.STABLE
        # The leader's SyncGroup appended the assignment before anyone was answered.
        first_append = next(i for i, e in enumerate(rt.events) if e == "append 1" and i > 0)
        assert "reply" in rt.events[first_append:]
        heartbeat = HeartbeatRequest(group_id="g", generation_id=1, member_id=a)
        assert rt.finish(rt.coord.heartbeat(heartbeat, api_version=4)).error_code == 0
        await asyncio.sleep(0.7)  # nobody heartbeats: both sessions (500 ms) expire
        assert group.state is GroupState.EMPTY
        assert rt.log[-1].value is not None  # the Empty group's metadata record
        rt.timer.cancel_all()

    asyncio.run(main())

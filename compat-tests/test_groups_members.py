"""Consumer groups with each client: three members over six partitions, a clean leave, a
SIGKILL (session timeout), commits, and a broker restart that keeps the committed offsets.

Each member is its own process (``group_member.py`` or ``kcat -G``), so "killed" really
is SIGKILL by pid: the broker sees no LeaveGroup and must expire the member itself.
"""

from __future__ import annotations

import time

import pytest
from group_helpers import (
    GROUP_BROKER_SETTINGS,
    SESSION_MS,
    TOPIC_PARTITIONS,
    check_no_gaps,
    committed,
    consumed,
    ends_of,
    produce_even,
    topic_with_records,
    wait_assignment,
    wait_committed,
    wait_consumed,
)
from helpers import unique_topic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

CLIENTS = ["kafka-python", "aiokafka", "confluent", "kcat"]


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.feature("groups", client="{client}")
def test_three_members_leave_kill_commit_restart(broker_factory, members, client: str) -> None:
    broker = broker_factory(GROUP_BROKER_SETTINGS)
    if not broker.persistent:
        pytest.skip("needs a broker that keeps __consumer_offsets across restarts")
    boot = broker.bootstrap
    topic = topic_with_records(boot, f"grp-{client}", 5, "round1")
    group = unique_topic(f"g-{client}")

    a = members.start(client, "a", boot, topic, group)
    b = members.start(client, "b", boot, topic, group)
    c = members.start(client, "c", boot, topic, group)
    owners = wait_assignment(members, [a, b, c], what="by three members")
    # Three members, six partitions, range assignor: two each.
    assert sorted(len(o) for o in owners.values()) == [2, 2, 2], owners
    wait_consumed(members, [a, b, c], ends_of(5))
    # Each record was handed to the member that owned its partition at the end, or to one
    # that owned it before a rebalance; either way nothing is skipped.
    check_no_gaps(consumed([a, b, c]), ends_of(5))
    wait_committed(boot, group, topic, ends_of(5))

    # B dies without a word; A leaves cleanly.  C ends up with everything.
    killed_at = time.monotonic()
    b.kill()
    assert a.leave() == 0, members.diagnostics()
    produce_even(boot, topic, 5, "round2")
    owners = wait_assignment(members, [c], what="by the last member")
    moved_after = time.monotonic() - killed_at
    # The killed member's partitions move after its session timeout, not much later.
    assert moved_after < SESSION_MS / 1000 + 20, f"took {moved_after:.1f} s after the kill"
    wait_consumed(members, [a, b, c], ends_of(10))
    check_no_gaps(consumed([a, b, c]), ends_of(10))
    # After the handover C read each partition from where the group's commits said.
    wait_committed(boot, group, topic, ends_of(10))
    assert c.leave() == 0, members.diagnostics()

    # Restart: the commits are in __consumer_offsets and come back.
    broker.restart()
    assert committed(boot, group, topic) == ends_of(10)
    produce_even(boot, topic, 3, "round3")
    d = members.start(client, "d", boot, topic, group)
    wait_assignment(members, [d], what="by the member after the restart")
    wait_consumed(members, [a, b, c, d], ends_of(13))
    got = consumed([d])
    # The new member resumed exactly at the committed offsets: nothing older came again.
    for p in range(TOPIC_PARTITIONS):
        assert sorted(set(got.get(p, []))) == [10, 11, 12], (
            f"partition {p}: after the restart the new member read {sorted(got.get(p, []))}"
        )
    wait_committed(boot, group, topic, ends_of(13))
    assert d.leave() == 0, members.diagnostics()

"""kafka-python 3.0.12's "member goes silent" stall, reproduced on purpose, and the harness's
way around it (compat-tests/FINDINGS.md, "Group members that go silent").

A proxy between the member and the broker holds back Metadata answers (so the member's
first JoinGroup goes out before it knows its topic's partitions) and SyncGroup answers
(so they land after the member's ``poll(timeout_ms=200)`` has stopped waiting).  The
broker answers everything at once; only the order of the client's own timers changes,
as a loaded machine changes it now and then.

- Joining before the metadata is known, the member (the group's only member, so its
  leader) assigns nothing, rejoins when the metadata arrives, and the rejoin's SyncGroup
  answer is orphaned: the member never applies it and never sends anything again.
- Knowing the partitions first (``know_partitions_before_joining``, what every group
  member of the suite does) the same slow answers only make the join slower.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from faultproxy import FaultProxy
from group_helpers import (
    GROUP_BROKER_SETTINGS,
    SESSION_MS,
    TOPIC_PARTITIONS,
    Member,
    Members,
    check_no_gaps,
    consumed,
    create_topic,
    ends_of,
    produce_even,
    wait_assignment,
    wait_consumed,
)
from helpers import unique_topic, wait_until

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

METADATA, SYNC_GROUP = 3, 14
# The members here poll with a short timer, as the suite's members once did (and as most
# applications do); SyncGroup answers come later than that, so poll stops waiting first.
POLL_MS = 200
SYNC_GROUP_DELAY_S = 1.0
# Longer than a join (FindCoordinator, two JoinGroups, a SyncGroup) takes here.
METADATA_DELAY_S = 2.5
# The coordinator's debug log shows joins, SyncGroup answers and heartbeats; its
# ``consumer`` child logs every poll iteration, so it stays at INFO.
LOGGERS = {"kafka.coordinator": "DEBUG", "kafka.coordinator.consumer": "INFO"}
SYNC_ANSWER = re.compile(r"Received SyncGroup response: .*\berror_code=0\b")


@pytest.fixture
def slow_answers(broker_factory: Any) -> Iterator[tuple[str, str]]:
    """(bootstrap through the proxy, topic with records): Metadata and SyncGroup answers slow."""
    proxy = FaultProxy()
    try:
        broker = broker_factory(GROUP_BROKER_SETTINGS, advertise=f"127.0.0.1:{proxy.port}")
        proxy.target_port = broker.port
        topic = unique_topic("stall")
        direct = f"127.0.0.1:{broker.port}"  # set up without the delays
        create_topic(direct, topic)
        produce_even(direct, topic, 2, "r")
        proxy.delay_responses(METADATA, METADATA_DELAY_S)
        proxy.delay_responses(SYNC_GROUP, SYNC_GROUP_DELAY_S)
        yield f"127.0.0.1:{proxy.port}", topic
        assert proxy.delayed > 0
    finally:
        proxy.close()


def log_after_last_sync_answer(m: Member) -> tuple[int, list[str]]:
    """(successful SyncGroup answers so far, the member's log lines after the last one)."""
    lines = m.stderr_path.read_text(errors="replace").splitlines()
    answers = [i for i, line in enumerate(lines) if SYNC_ANSWER.search(line)]
    return len(answers), (lines[answers[-1] + 1 :] if answers else lines)


def test_kafka_python_3_0_12_orphans_the_sync_group_answer_of_a_metadata_rejoin(
    slow_answers: tuple[str, str], members: Members
) -> None:
    bootstrap, topic = slow_answers
    m = members.start(
        "kafka-python", "early", bootstrap, topic, unique_topic("g-stall"),
        join_before_metadata=True, logger_levels=LOGGERS, poll_ms=POLL_MS,
    )  # fmt: skip
    # First generation: assigned before the metadata came, so nothing to own.
    wait_until(lambda: m.count("assigned") >= 1, 30, "the first (empty) assignment")
    assert m.owned() == set(), m.snapshot()
    # The metadata arrives, the leader rejoins and the broker answers its SyncGroup...
    wait_until(lambda: log_after_last_sync_answer(m)[0] >= 2, 30, "the rejoin's SyncGroup answer")
    # ...which the client never applies; it sends no heartbeat (nor anything) from then on.
    time.sleep(2 * SESSION_MS / 1000)
    _, after = log_after_last_sync_answer(m)
    assert m.alive and m.crashed() is None, m.snapshot()
    assert m.owned() == set(), "kafka-python applied the answer: the stall is fixed upstream"
    assert not [line for line in after if "Updated partition assignment" in line], after
    assert not [line for line in after if "Sending" in line], after
    assert [e["ev"] for e in m.snapshot()].count("assigned") == 1


def test_knowing_the_partitions_first_gets_the_assignment_through_the_same_slow_answers(
    slow_answers: tuple[str, str], members: Members
) -> None:
    bootstrap, topic = slow_answers
    m = members.start(
        "kafka-python", "primed", bootstrap, topic, unique_topic("g-primed"),
        logger_levels=LOGGERS, poll_ms=POLL_MS,
    )  # fmt: skip
    assert wait_assignment(members, [m]) == {"primed": set(range(TOPIC_PARTITIONS))}
    wait_consumed(members, [m], ends_of(2))
    check_no_gaps(consumed([m]), ends_of(2))
    # one generation: the first assignment was already the right one
    assert [e["tps"] for e in m.snapshot() if e["ev"] == "assigned"] == [list(range(TOPIC_PARTITIONS))]
    assert m.leave() == 0

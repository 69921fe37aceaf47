"""Consumer-group test tools: members in subprocesses, their reports, and group checks.

A member is ``group_member.py`` (kafka-python, aiokafka or confluent-kafka) or ``kcat -G``
running in its own process, so a test can end it cleanly (LeaveGroup) or with SIGKILL by
pid (the broker only notices through the session timeout).  A reader thread collects what
the member reports; the checks below look only at those reports and at what the admin
APIs and the log say.  Nothing of kbroker is imported.  The ``members`` fixture defined
here is registered by conftest.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from clients import kcat_path
from helpers import unique_topic, wait_until

HERE = Path(__file__).resolve().parent
MEMBER_SCRIPT = HERE / "group_member.py"

TOPIC_PARTITIONS = 6
# Broker settings for group tests: no initial join delay, short session timeouts allowed.
GROUP_BROKER_SETTINGS = {
    "num.partitions": str(TOPIC_PARTITIONS),
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "1000",
    "offsets.topic.num.partitions": "5",
}
# KIP-848 consumer groups (group.protocol=consumer) on top of the group settings.
CONSUMER_SESSION_MS = 4_000
KIP848_BROKER_SETTINGS = {
    **GROUP_BROKER_SETTINGS,
    "group.consumer.min.session.timeout.ms": "1000",
    "group.consumer.session.timeout.ms": str(CONSUMER_SESSION_MS),
    "group.consumer.min.heartbeat.interval.ms": "100",
    "group.consumer.heartbeat.interval.ms": "500",
}
# What a member's config adds to speak the consumer protocol.
KIP848 = {"group_protocol": "consumer"}
SESSION_MS = 3_000
HEARTBEAT_MS = 500
# Also the rebalance timeout (Java/kafka-python/librdkafka use max.poll.interval.ms).
MAX_POLL_MS = 10_000
# How long any single group transition may take in these tests.
SETTLE_S = 40.0
# A member process never outlives this, even if the test forgets it.
MEMBER_MAX_RUNTIME_S = 240


class Member:
    """A group member process and everything it reported so far."""

    def __init__(self, name: str, argv: list[str], log_dir: Path) -> None:
        self.name = name
        self.events: list[dict[str, Any]] = []
        self.now: set[int] = set()
        self._lock = threading.Lock()
        self.stderr_path = log_dir / f"member-{name}.stderr"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._pump, name=f"member-{name}", daemon=True)
        self._reader.start()

    # -- reports -------------------------------------------------------------------------
    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            ev = self._parse(line)
            if ev is None:
                continue
            with self._lock:
                if "now" in ev:
                    self.now = set(ev["now"])
                self.events.append(ev)

    def _parse(self, line: str) -> dict[str, Any] | None:
        line = line.strip()
        if not line.startswith("{"):
            return None
        return json.loads(line)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def owned(self) -> set[int]:
        with self._lock:
            return set(self.now)

    def records(self) -> list[tuple[int, int, str]]:
        return [
            (p, o, v) for ev in self.snapshot() if ev["ev"] == "records" for p, o, v in ev["recs"]
        ]

    def count(self, *kinds: str) -> int:
        return sum(1 for ev in self.snapshot() if ev["ev"] in kinds)

    def crashed(self) -> str | None:
        for ev in self.snapshot():
            if ev["ev"] == "crashed":
                return str(ev["error"])
        return None

    def stderr_tail(self, lines: int = 30) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- ending it -----------------------------------------------------------------------
    def leave(self, timeout: float = 30.0) -> int:
        """Ask for a clean close (LeaveGroup for a dynamic member) and wait for the exit."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write("leave\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        """SIGKILL by pid: no LeaveGroup, no final commit."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(5)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._reader.join(5)
        self._stderr.close()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


class KcatMember(Member):
    """``kcat -G``: records as ``partition offset value`` lines, rebalances on stderr.

    kcat auto-commits (every 100 ms here) and commits again when it closes on SIGTERM.
    """

    ASSIGN = re.compile(r"Group \S+ rebalanced \(memberid [^)]*\): (assigned|revoked): ?(.*)$")
    TP = re.compile(r"\[(\d+)\]")

    def __init__(self, name: str, argv: list[str], log_dir: Path) -> None:
        self._err_lines: list[str] = []
        super().__init__(name, argv, log_dir)
        # kcat reports rebalances on stderr: read it ourselves instead of into a file.

    def _parse(self, line: str) -> dict[str, Any] | None:
        parts = line.rstrip("\n").split(" ", 2)
        if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
            return {"ev": "records", "recs": [[int(parts[0]), int(parts[1]), parts[2]]]}
        return None

    def stderr_events(self) -> None:
        """Turn the rebalance lines kcat wrote so far into assigned/revoked events."""
        try:
            text = self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return
        lines = text.splitlines()
        with self._lock:
            for line in lines[len(self._err_lines) :]:
                self._err_lines.append(line)
                m = self.ASSIGN.search(line)
                if not m:
                    continue
                parts = sorted(int(p) for p in self.TP.findall(m.group(2)))
                if m.group(1) == "assigned":
                    self.now = set(parts)
                    self.events.append({"ev": "assigned", "tps": parts, "now": parts})
                else:
                    self.now = set()
                    self.events.append({"ev": "revoked", "tps": parts, "now": []})

    def snapshot(self) -> list[dict[str, Any]]:
        self.stderr_events()
        return super().snapshot()

    def owned(self) -> set[int]:
        self.stderr_events()
        return super().owned()

    def leave(self, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)  # kcat closes the consumer: commit + LeaveGroup
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code


class Members:
    """Starts members for one test and always ends them at teardown."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.all: list[Member] = []

    def start(
        self,
        client: str,
        name: str,
        bootstrap: str,
        topic: str,
        group: str,
        *,
        assignor: str = "range",
        instance_id: str | None = None,
        session_ms: int = SESSION_MS,
        **extra: Any,
    ) -> Member:
        """``extra`` goes into the member's config as is (group_member.py reads it)."""
        if client == "kcat":
            return self._start_kcat(
                name, bootstrap, topic, group, assignor, instance_id, session_ms
            )
        cfg = {
            "client": client,
            "name": name,
            "bootstrap": bootstrap,
            "topic": topic,
            "group": group,
            "assignor": assignor,
            "instance_id": instance_id,
            "session_ms": session_ms,
            "heartbeat_ms": HEARTBEAT_MS,
            "max_poll_ms": max(MAX_POLL_MS, session_ms),
            "max_runtime_s": MEMBER_MAX_RUNTIME_S,
            # Dev aid: KBROKER_COMPAT_MEMBER_LOG_LEVEL=DEBUG puts the client's own debug log
            # (every request and response) in each member's stderr file.
            "log_level": os.environ.get("KBROKER_COMPAT_MEMBER_LOG_LEVEL", "INFO"),
            **extra,
        }
        m = Member(name, [sys.executable, str(MEMBER_SCRIPT), json.dumps(cfg)], self.log_dir)
        self.all.append(m)
        return m

    def _start_kcat(
        self,
        name: str,
        bootstrap: str,
        topic: str,
        group: str,
        assignor: str,
        instance_id: str | None,
        session_ms: int,
    ) -> Member:
        argv = [
            kcat_path(), "-b", bootstrap, "-G", group, topic,
            "-X", "auto.offset.reset=earliest", "-u", "-f", "%p %o %s\\n",
            "-X", f"client.id={name}",
            "-X", f"session.timeout.ms={session_ms}",
            "-X", f"heartbeat.interval.ms={HEARTBEAT_MS}",
            "-X", f"max.poll.interval.ms={max(MAX_POLL_MS, session_ms)}",
            "-X", f"partition.assignment.strategy={assignor}",
            "-X", "auto.commit.interval.ms=100",
            "-X", "fetch.wait.max.ms=100",
        ]  # fmt: skip
        if instance_id:
            argv += ["-X", f"group.instance.id={instance_id}"]
        m = KcatMember(name, argv, self.log_dir)
        self.all.append(m)
        return m

    def cleanup(self) -> None:
        for m in self.all:
            m.cleanup()

    def diagnostics(self) -> str:
        out = []
        for m in self.all:
            evs = [e for e in m.snapshot() if e["ev"] != "records"]
            out.append(f"--- {m.name} (alive={m.alive}) events: {evs[-15:]}")
            tail = m.stderr_tail(15)
            if tail:
                out.append(f"    stderr tail:\n{tail}")
        return "\n".join(out)


@pytest.fixture(name="members")
def members_fixture(tmp_path: Path) -> Iterator[Members]:
    """The member processes of one test, all ended at teardown."""
    ms = Members(tmp_path)
    try:
        yield ms
    finally:
        ms.cleanup()


# -- checks --------------------------------------------------------------------------------


def wait_assignment(
    members: Members,
    active: Iterable[Member],
    partitions: int = TOPIC_PARTITIONS,
    timeout: float = SETTLE_S,
    what: str = "",
    balanced: bool = False,
) -> dict[str, set[int]]:
    """Wait until the active members own every partition exactly once, each at least one
    (and, if ``balanced``, no member more than one partition above another: a KIP-848 group
    passes through unbalanced moments while partitions move, e.g. 3/1/2 before 2/2/2).

    Fails early if a member died.  Returns name -> owned partitions.
    """
    active = list(active)
    want = set(range(partitions))

    def settled() -> bool:
        for m in active:
            if not m.alive:
                raise AssertionError(
                    f"member {m.name} exited ({m.proc.returncode}) {m.crashed() or ''}"
                )
        owned = [m.owned() for m in active]
        flat = [p for o in owned for p in o]
        sizes = [len(o) for o in owned]
        even = not balanced or max(sizes) - min(sizes) <= 1
        return sorted(flat) == sorted(want) and all(owned) and even

    try:
        wait_until(settled, timeout, f"each of {partitions} partitions owned once {what}")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{members.diagnostics()}") from None
    return {m.name: m.owned() for m in active}


def consumed(members: Iterable[Member]) -> dict[int, list[int]]:
    """partition -> every offset any of the members received (duplicates kept)."""
    out: dict[int, list[int]] = {}
    for m in members:
        for p, o, _ in m.records():
            out.setdefault(p, []).append(o)
    return out


def wait_consumed(
    members: Members, group: Iterable[Member], ends: dict[int, int], timeout: float = SETTLE_S
) -> None:
    """Wait until, per partition, the members together received every offset below its end."""
    group = list(group)

    def done() -> bool:
        got = consumed(group)
        return all(set(range(end)) <= set(got.get(p, ())) for p, end in ends.items())

    try:
        wait_until(done, timeout, f"every record up to {ends} consumed")
    except AssertionError as e:
        got = consumed(group)
        missing = {p: sorted(set(range(end)) - set(got.get(p, ()))) for p, end in ends.items()}
        raise AssertionError(f"{e}; missing offsets {missing}\n{members.diagnostics()}") from None


def wait_consumed_and_committed(
    members: Members, group_members: list[Member], bootstrap: str, group: str, topic: str,
    ends: dict[int, int],
) -> None:
    """Every offset below ``ends`` received by ``group_members`` (none skipped, none beyond
    the end) and committed by ``group``."""
    wait_consumed(members, group_members, ends)
    check_no_gaps(consumed(group_members), ends)
    wait_committed(bootstrap, group, topic, ends)


def check_no_gaps(got: dict[int, list[int]], ends: dict[int, int]) -> None:
    """Nothing skipped and nothing beyond the log end (re-delivery is allowed)."""
    for p, end in ends.items():
        offsets = set(got.get(p, ()))
        assert offsets == set(range(end)), (
            f"partition {p}: consumed offsets {sorted(offsets)}, want 0..{end - 1}"
        )


def produce_even(
    bootstrap: str, topic: str, per_partition: int, tag: str, partitions: int = TOPIC_PARTITIONS
) -> None:
    """``per_partition`` records into every partition (explicit partition numbers)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, max_block_ms=10_000, request_timeout_ms=10_000, linger_ms=5
    )
    try:
        futures = [
            producer.send(topic, value=f"{tag}-{p}-{i}".encode(), partition=p)
            for i in range(per_partition)
            for p in range(partitions)
        ]
        producer.flush(20)
        for f in futures:
            f.get(10)
    finally:
        producer.close(5)


def topic_with_records(bootstrap: str, prefix: str, per_partition: int, tag: str) -> str:
    """A new topic (``prefix`` and a unique suffix) with ``per_partition`` records in each partition."""
    topic = unique_topic(prefix)
    create_topic(bootstrap, topic)
    produce_even(bootstrap, topic, per_partition, tag)
    return topic


def create_topic(bootstrap: str, topic: str, partitions: int = TOPIC_PARTITIONS) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """partition -> committed offset, through kafka-python's admin (OffsetFetch)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        res = admin.list_group_offsets({group: None})[group]
    finally:
        admin.close()
    return {tp.partition: om.offset for tp, om in res.items() if tp.topic == topic}


def describe(bootstrap: str, group: str) -> dict[str, Any]:
    """DescribeGroups through kafka-python's admin: the group's dict."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        return admin.describe_groups([group])[group]
    finally:
        admin.close()


def wait_committed(
    bootstrap: str, group: str, topic: str, ends: dict[int, int], timeout: float = SETTLE_S
) -> None:
    last: dict[int, int] = {}

    def ok() -> bool:
        nonlocal last
        last = committed(bootstrap, group, topic)
        return all(last.get(p) == end for p, end in ends.items())

    try:
        wait_until(ok, timeout, f"committed offsets {ends}", step=0.5)
    except AssertionError as e:
        raise AssertionError(f"{e}; last seen {last}") from None


def ends_of(per_partition: int, partitions: int = TOPIC_PARTITIONS) -> dict[int, int]:
    return dict.fromkeys(range(partitions), per_partition)


def elapsed(since: float) -> float:
    return round(time.monotonic() - since, 1)

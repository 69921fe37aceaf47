"""kcat 1.7.1 (librdkafka 2.0.2) against a real broker process.

kcat has no admin API: the topic is auto-created by the first produce (the broker runs
with auto.create.topics.enable=true, num.partitions=3) and checked with -L; it is not
deleted.  kcat applies the same -H headers to every message and stamps CreateTime itself.
It reads with the simple (assign-based) consumer: -C without -G.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from clients import kcat_path
from helpers import (
    CODECS,
    PARTITIONS,
    Got,
    Sent,
    check_roundtrip,
    check_time_answers,
    make_messages,
    now_ms,
    time_queries,
    unique_topic,
)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

KCAT_TIMEOUT_S = 30
# -Q output: "<topic> [<partition>] offset <offset>"
QUERY_LINE = re.compile(r"^(?P<topic>\S+) \[(?P<partition>\d+)\]\s+offset (?P<offset>-?\d+)\s*$")


@pytest.fixture(scope="module")
def kcat() -> str:
    return kcat_path()  # skips locally, fails in CI when kcat is missing


def run_kcat(kcat: str, bootstrap: str, args: list[str], stdin: str | None = None) -> str:
    cmd = [kcat, "-b", bootstrap, "-m", "10", "-X", "socket.timeout.ms=10000", *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=KCAT_TIMEOUT_S)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stderr[-3000:]}"
    return proc.stdout


def with_headers(sent: list[Sent], headers: tuple[tuple[str, bytes], ...]) -> list[Sent]:
    return [Sent(s.seq, s.key, s.value, headers, None) for s in sent]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.feature("produce", "consume", "compression:{codec}", client="kcat")
def test_autocreate_produce_consume_query(kcat, broker, codec: str) -> None:
    topic = unique_topic(f"kcat-{codec}")
    headers = (("client", b"kcat"), ("codec", codec.encode()))
    sent = with_headers(make_messages(f"kcat-{codec}", printable=True), headers)

    started = now_ms()
    run_kcat(
        kcat,
        broker.bootstrap,
        [
            "-P",
            "-t",
            topic,
            "-K",
            ":",
            "-z",
            codec,
            "-X",
            "acks=all",
            "-X",
            "linger.ms=20",
            *[a for k, v in headers for a in ("-H", f"{k}={v.decode()}")],
        ],
        stdin="".join(f"{s.key.decode()}:{s.value.decode()}\n" for s in sent),
    )
    finished = now_ms()

    listing = json.loads(run_kcat(kcat, broker.bootstrap, ["-L", "-J", "-t", topic]))
    [meta] = [t for t in listing["topics"] if t["topic"] == topic]
    assert "error" not in meta or not meta["error"], meta
    assert sorted(p["partition"] for p in meta["partitions"]) == list(range(PARTITIONS)), meta

    out = run_kcat(kcat, broker.bootstrap, ["-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q"])
    got = []
    for line in out.splitlines():
        m = json.loads(line)
        hdrs = m.get("headers") or []
        got.append(
            Got(
                m["partition"],
                m["offset"],
                None if m["key"] is None else m["key"].encode(),
                None if m["payload"] is None else m["payload"].encode(),
                tuple((hdrs[i], hdrs[i + 1].encode()) for i in range(0, len(hdrs), 2)),
                m["ts"],
                {"create": 0, "logappend": 1}.get(m["tstype"], -1),
            )
        )
    by_partition = check_roundtrip(sent, got, produce_window=(started, finished))

    queries = time_queries(by_partition)
    answers: dict[tuple[int, int], int] = {}
    for q in queries:
        out = run_kcat(kcat, broker.bootstrap, ["-Q", "-t", f"{topic}:{q.partition}:{q.timestamp}"])
        lines = [QUERY_LINE.match(line) for line in out.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0], f"unexpected -Q output:\n{out}"
        m = lines[0]
        assert m["topic"] == topic and int(m["partition"]) == q.partition, (
            f"-Q answered another partition:\n{out}"
        )
        answers[q.partition, q.timestamp] = int(m["offset"])
    check_time_answers(queries, lambda q: answers[q.partition, q.timestamp])

"""kcat 1.7.1 (librdkafka 2.0.2) producing in transactions: ``-P -X transactional.id=...``.

kcat wraps everything it reads from stdin in one transaction and commits it at EOF.  It
has no way to abort: on SIGINT/SIGTERM it exits (code 1, "Program terminated while
producing") without committing or aborting, leaving the transaction open.  So "commit,
abort, commit" here is: commit; a second kcat is interrupted with records already on the
broker; a third kcat with the same transactional id initialises (which makes the
coordinator abort the open transaction) and commits.  kcat reads stdin in blocks, so
only the records of complete blocks reach the broker before the signal; the test waits
until some did.
"""

from __future__ import annotations

import signal
import subprocess
import uuid

import pytest
from clients import kcat_path
from helpers import wait_until
from txn_helpers import TXN_BROKER_SETTINGS, Rec, check_exactly, ck_read, lso_and_hwm

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

KCAT_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def kcat() -> str:
    return kcat_path()  # skips locally, fails in CI when kcat is missing


def lines(phase: str, count: int) -> list[str]:
    return [f"k{i % 9}:{phase}-{i:05d}-{'x' * 40}" for i in range(count)]


def producer_cmd(kcat: str, bootstrap: str, topic: str, txn_id: str) -> list[str]:
    return [
        kcat,
        "-b",
        bootstrap,
        "-m",
        "10",
        "-X",
        "socket.timeout.ms=10000",
        "-P",
        "-t",
        topic,
        "-K",
        ":",
        "-X",
        f"transactional.id={txn_id}",
    ]


def produce_committed(kcat: str, bootstrap: str, topic: str, txn_id: str, data: list[str]) -> None:
    proc = subprocess.run(
        producer_cmd(kcat, bootstrap, topic, txn_id),
        input="".join(line + "\n" for line in data),
        capture_output=True,
        text=True,
        timeout=KCAT_TIMEOUT_S,
    )
    assert proc.returncode == 0, f"kcat -P exited {proc.returncode}\n{proc.stderr[-2000:]}"
    assert "Transaction successfully committed" in proc.stderr, proc.stderr[-2000:]


def kcat_read(kcat: str, bootstrap: str, topic: str, isolation: str) -> list[Rec]:
    cmd = [
        kcat,
        "-b",
        bootstrap,
        "-m",
        "10",
        "-C",
        "-t",
        topic,
        "-o",
        "beginning",
        "-e",
        "-q",
        "-X",
        f"isolation.level={isolation}",
        "-f",
        "%p %o %k %s\\n",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=KCAT_TIMEOUT_S)
    assert proc.returncode == 0, f"kcat -C exited {proc.returncode}\n{proc.stderr[-2000:]}"
    out = []
    for line in proc.stdout.splitlines():
        p, o, k, v = line.split(" ", 3)
        out.append(Rec(int(p), int(o), k.encode(), v.encode()))
    return out


@pytest.mark.feature("transactions", client="kcat")
def test_kcat_commit_interrupt_commit(kcat, broker_factory) -> None:
    broker = broker_factory(settings=TXN_BROKER_SETTINGS)
    bootstrap = broker.bootstrap
    topic = f"txn-kcat-{uuid.uuid4().hex[:8]}"
    txn_id = f"txn-kcat-{uuid.uuid4().hex[:8]}"
    first, interrupted, second = lines("c1", 30), lines("a2", 100), lines("c3", 30)

    produce_committed(kcat, bootstrap, topic, txn_id, first)
    _, hwm_before = lso_and_hwm(bootstrap, topic)

    proc = subprocess.Popen(
        producer_cmd(kcat, bootstrap, topic, txn_id),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write("".join(line + "\n" for line in interrupted))
        proc.stdin.flush()
        wait_until(
            lambda: sum(lso_and_hwm(bootstrap, topic)[1]) > sum(hwm_before),
            KCAT_TIMEOUT_S,
            "the interrupted transaction's records on the broker",
        )
        lso, _ = lso_and_hwm(bootstrap, topic)
        assert lso == hwm_before, f"open transaction: LSO {lso}, want {hwm_before}"
        proc.send_signal(signal.SIGINT)
        proc.stdin.close()  # kcat notices the signal once its stdin read returns
        proc.wait(KCAT_TIMEOUT_S)
        assert proc.stderr is not None
        err = proc.stderr.read()
        assert proc.returncode == 1, f"interrupted kcat exited {proc.returncode}\n{err}"
        assert "committed" not in err, f"the interrupted kcat committed:\n{err}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    # Same transactional id: InitProducerId aborts the open transaction first.
    produce_committed(kcat, bootstrap, topic, txn_id, second)

    committed = [line.split(":", 1)[1].encode() for line in first + second]
    check_exactly(
        kcat_read(kcat, bootstrap, topic, "read_committed"), committed, "kcat read_committed"
    )
    check_exactly(ck_read(bootstrap, topic, "read_committed"), committed, "read_committed")
    everything = kcat_read(kcat, bootstrap, topic, "read_uncommitted")
    aborted = {line.split(":", 1)[1].encode() for line in interrupted}
    reached = [r.value for r in everything if r.value in aborted]
    assert reached, "none of the interrupted transaction's records reached the broker"
    check_exactly(everything, committed + reached, "kcat read_uncommitted")
    lso, hwm = lso_and_hwm(bootstrap, topic)
    assert lso == hwm, f"LSO {lso} != high watermark {hwm}"

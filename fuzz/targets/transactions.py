"""``__transaction_state`` replay into a ``TransactionCoordinator``.

Input: records (layout in ``_internal_records``; markers and producer ids are ignored:
this topic is not written transactionally).  Property: ``replay`` of each record raises
nothing but ``TxnRecordFormatError`` or ``DecodeError``; the loaded coordinator then
re-emits the markers of prepared transactions, answers DescribeTransactions and
ListTransactions, aborts timed-out transactions and expires old transactional ids when
time passes, and every response it gives encodes at its version.
"""

from __future__ import annotations

import contextlib
import itertools

from kbroker.coordinator.timer import FakeTimer, ManualClock
from kbroker.coordinator.txn_config import TransactionConfig
from kbroker.coordinator.txn_coordinator import TransactionCoordinator
from kbroker.coordinator.txn_records import TxnRecordFormatError
from kbroker.coordinator.txn_testing import TxnTestContext
from kbroker.wire import codec
from kbroker.wire.exceptions import DecodeError
from kbroker.wire.messages.describe_transactions_request import DescribeTransactionsRequest
from kbroker.wire.messages.end_txn_request import EndTxnRequest
from kbroker.wire.messages.internal.transaction_log_key import TransactionLogKey
from kbroker.wire.messages.internal.transaction_log_value import TransactionLogValue
from kbroker.wire.messages.list_transactions_request import ListTransactionsRequest

from fuzz.seeds import filled
from fuzz.targets._codec import compile_plans
from fuzz.targets._internal_records import Entry, pack, unpack

EXPECTED = (TxnRecordFormatError, DecodeError)
# Two hours of fake time pass transaction.max.timeout.ms (15 min) and, with the shorter
# settings below, transactional.id.expiration.ms; sweeps every 10 minutes keep that to a
# dozen of each (and of marker retries) instead of the 720 timeout sweeps of the 10 s
# default and the thousands of marker retries of prepared transactions.
CONFIG = TransactionConfig(
    transactional_id_expiration_ms=3_600_000,
    transaction_abort_timed_out_transaction_cleanup_interval_ms=600_000,
    transaction_remove_expired_transaction_cleanup_interval_ms=600_000,
    transaction_marker_retry_backoff_ms=600_000,
)
EXPIRE_MS = 2 * 3_600_000


def prepare() -> None:
    compile_plans([TransactionLogKey, TransactionLogValue])


def test_one_input(data: bytes) -> None:
    clock = ManualClock()
    timer = FakeTimer(clock)
    ids = itertools.count(5000)
    coord = TransactionCoordinator(
        now_ms=clock.now_ms, timer=timer, allocate_producer_id=lambda: next(ids), config=CONFIG
    )
    for entry in unpack(data):
        if entry.key is None:
            continue
        with contextlib.suppress(EXPECTED):
            coord.replay(entry.key, entry.value)
    coord.on_loaded()
    txn_ids = sorted(coord.transactions)
    for version in (0, 1, 2):
        result = coord.list_transactions(ListTransactionsRequest(), api_version=version)
        codec.encode(result.response, version)
    result = coord.describe_transactions(
        DescribeTransactionsRequest(transactional_ids=txn_ids), api_version=0
    )
    codec.encode(result.response, 0)
    for txn_id in txn_ids:
        meta = coord.transactions.get(txn_id)
        if meta is None:
            continue
        for commit in (True, False):
            request = EndTxnRequest(
                transactional_id=txn_id,
                producer_id=meta.producer_id,
                producer_epoch=meta.producer_epoch,
                committed=commit,
            )
            result = coord.end_txn(request, api_version=4)
            codec.encode(result.response, 4)
    timer.advance(EXPIRE_MS)


def _scenario() -> list[Entry]:
    ctx = TxnTestContext()
    pid, epoch = ctx.init_ok("committed")
    ctx.add("committed", pid, epoch, {"t": [0, 1]})
    ctx.add_offsets("committed", pid, epoch, "group")
    ctx.end("committed", pid, epoch, commit=True)
    pid, epoch = ctx.init_ok("aborted")
    ctx.add("aborted", pid, epoch, {"u": [0]})
    ctx.end("aborted", pid, epoch, commit=False)
    pid, epoch = ctx.init_ok("open")
    ctx.add("open", pid, epoch, {"t": [2]})
    ctx.hold_markers = True
    pid, epoch = ctx.init_ok("prepared")
    ctx.add("prepared", pid, epoch, {"t": [0]})
    ctx.end("prepared", pid, epoch, commit=True)
    return [Entry(r.key, r.value, -1) for r in ctx.log]


def _filled() -> list[Entry]:
    key = (0).to_bytes(2, "big") + codec.encode(filled(TransactionLogKey, 0), 0)
    out = []
    for version in range(TransactionLogValue.VALID_VERSIONS[1] + 1):
        value = filled(TransactionLogValue, version)
        for status in range(8):
            value.transaction_status = status
            raw = version.to_bytes(2, "big") + codec.encode(value, version)
            out.append(Entry(key, raw, -1))
    out.append(Entry(key, None, -1))
    return out


def seeds() -> list[bytes]:
    scenario, records = _scenario(), _filled()
    return [pack(scenario), pack(records)] + [pack([e]) for e in records + scenario]

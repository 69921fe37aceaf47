"""The lazy registry and lazy coordinators: what ApiVersions advertises is what the handler
modules register, and start-up imports neither handlers nor coordinators it does not need."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from broker_harness import RawClient
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.api_versions_request import ApiVersionsRequest
from kbroker.wire.messages.find_coordinator_request import FindCoordinatorRequest
from kbroker.wire.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from kbroker.wire.messages.offset_fetch_request import OffsetFetchRequest, OffsetFetchRequestTopic

import kbroker.handlers
from kbroker.registry import API_TABLE, HANDLERS, advertised_versions, load_handler
from kbroker.testing import BrokerThread

ROOT = Path(__file__).resolve().parents[2]


def test_every_row_matches_its_modules_registration() -> None:
    for key, (module, lo, hi) in API_TABLE.items():
        h = load_handler(key)
        assert h is not None, key
        assert (h.api_key, h.min_version, h.max_version) == (key, lo, hi), module
        assert h.fn.__module__ == f"kbroker.handlers.{module}"


def test_every_handler_module_has_a_row_and_nothing_else_registers() -> None:
    modules = {m.name for m in pkgutil.iter_modules(kbroker.handlers.__path__) if not m.name.startswith("_")}
    assert modules == {module for module, _lo, _hi in API_TABLE.values()}
    for key in API_TABLE:
        load_handler(key)
    assert set(HANDLERS) == set(API_TABLE)


def test_advertised_versions_come_from_the_table() -> None:
    assert advertised_versions() == sorted((int(k), lo, hi) for k, (_m, lo, hi) in API_TABLE.items())
    assert (ApiKey.API_VERSIONS, 0, 4) in advertised_versions()


def test_unknown_key_has_no_handler() -> None:
    assert load_handler(ApiKey.BROKER_REGISTRATION) is None  # controller-only: never served by a broker


def test_a_row_disagreeing_with_its_module_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    load_handler(ApiKey.HEARTBEAT)
    monkeypatch.setitem(API_TABLE, ApiKey.HEARTBEAT, ("heartbeat", 0, 3))
    monkeypatch.delitem(HANDLERS, ApiKey.HEARTBEAT)
    with pytest.raises(RuntimeError, match="API_TABLE says heartbeat v0-3"):
        load_handler(ApiKey.HEARTBEAT)


def test_start_up_imports_only_what_the_first_request_needs(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from kbroker.config import build_config
        from kbroker.server import Broker

        async def main():
            broker = Broker(build_config(listen="127.0.0.1:0", data_dir={str(tmp_path / "data")!r}, environ={{}}))
            await broker.start()
            frame = bytes.fromhex("0012000000000001ffff")  # ApiVersions v0: header only
            loaded = sorted(m for m in sys.modules if m.startswith(("kbroker.handlers.", "kbroker.coordinator", "kbroker.groups", "kbroker.transactions")))
            await broker.dispatch(frame, "test")
            after = sorted(m for m in sys.modules if m.startswith("kbroker.handlers."))
            await broker.shutdown()
            print(loaded, after)

        asyncio.run(main())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] ['kbroker.handlers.api_versions']"


def _group_request(c: RawClient, group: str) -> None:
    resp = c.request(FindCoordinatorRequest(key=group, key_type=0), 3)
    assert resp.error_code == ErrorCode.NONE
    commit = OffsetCommitRequest(
        group_id=group, generation_id_or_member_epoch=-1, member_id="", retention_time_ms=-1,
        topics=[OffsetCommitRequestTopic(name="t", partitions=[OffsetCommitRequestPartition(partition_index=0, committed_offset=42)])],
    )
    c.request(commit, 7)


def test_coordinators_start_lazily_and_at_boot_once_their_topic_exists(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data")
    bt.start()
    try:
        assert bt.broker is not None
        assert bt.broker._groups is None and bt.broker._transactions is None
        c = RawClient(bt.address)
        assert c.request(ApiVersionsRequest(), 3).error_code == ErrorCode.NONE
        assert bt.broker._groups is None
        from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest

        c.request(CreateTopicsRequest(topics=[CreatableTopic(name="t", num_partitions=1, replication_factor=1)]), 5)
        _group_request(c, "g")
        assert bt.broker._groups is not None and bt.broker._transactions is None
        c.close()
        bt.restart()
        # __consumer_offsets exists: the group coordinator is replayed before serving.
        assert bt.broker._groups is not None and bt.broker._transactions is None
        c = RawClient(bt.address)
        fetched = c.request(OffsetFetchRequest(group_id="g", topics=[OffsetFetchRequestTopic(name="t", partition_indexes=[0])]), 5)
        assert fetched.topics[0].partitions[0].committed_offset == 42
        c.close()
    finally:
        bt.close()

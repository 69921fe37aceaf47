"""CreateTopics of many topics makes them durable together (one data-dir fsync, one metadata
save) before answering: what was acknowledged is on disk, and a failed save keeps none."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest
from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from kbroker.wire.messages.metadata_request import MetadataRequest

import kbroker.metadata as metadata_module
from kbroker.metadata import METADATA_FILE, MetadataStore
from kbroker.testing import BrokerThread

TOPICS = 50


def _create_many(c: RawClient, names: list[str]) -> list[int]:
    req = CreateTopicsRequest(topics=[CreatableTopic(name=n, num_partitions=2, replication_factor=-1) for n in names], timeout_ms=30_000)
    return [t.error_code for t in c.request(req, 7).topics]


def test_topics_of_one_request_are_on_disk_when_it_is_answered(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data")
    bt.start()
    names = [f"batch-{i}" for i in range(TOPICS)]
    try:
        c = RawClient(bt.address)
        assert bt.broker is not None
        saves_before = bt.broker.metadata.metadata_log_end_offset
        assert _create_many(c, names) == [ErrorCode.NONE] * TOPICS
        saves = bt.broker.metadata.metadata_log_end_offset - saves_before
        assert _create_many(c, ["batch-0", "another"]) == [ErrorCode.TOPIC_ALREADY_EXISTS, ErrorCode.NONE]
        c.close()
        # What a crash right after the answer would leave: the files as they are now, the
        # running broker never stopped (no clean shutdown).
        shutil.copytree(tmp_path / "data", tmp_path / "crashed", ignore=shutil.ignore_patterns(".lock"))
    finally:
        bt.close()
    assert saves == 1  # one metadata write for the whole request
    after = BrokerThread(tmp_path / "crashed")
    after.start()
    try:
        c = RawClient(after.address)
        resp = c.request(MetadataRequest(topics=None), 12)
        c.close()
        found = {t.name: len(t.partitions) for t in resp.topics}
        assert found == dict.fromkeys([*names, "another"], 2)
    finally:
        after.close()


def test_a_failed_save_keeps_none_of_the_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MetadataStore(tmp_path)
    store.load(node_id=1)
    store.create("kept", 1, {})
    before = (tmp_path / METADATA_FILE).read_bytes()

    def full_disk(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(metadata_module, "_write_atomically", full_disk)
    with pytest.raises(OSError), store.batched():
        store.create("a", 1, {})
        store.create("b", 3, {})
        assert "a" in store and "b" in store  # visible inside the request
    assert [t.name for t in store] == ["kept"]
    assert (tmp_path / METADATA_FILE).read_bytes() == before
    monkeypatch.undo()
    with store.batched():
        store.create("a", 1, {})
    assert sorted(t.name for t in store) == ["a", "kept"]

"""Requests that write metadata on a full disk (the test-only fault layer injects ENOSPC):
FindCoordinator for a group, which creates ``__consumer_offsets``, answers the retriable
COORDINATOR_NOT_AVAILABLE (it was UNKNOWN_SERVER_ERROR with a traceback), the topic does
not half-exist in memory, and the same lookup succeeds once space returns."""

from __future__ import annotations

import os
from pathlib import Path

from broker_harness import RawClient
from kbroker.log.fault_layer import install
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.find_coordinator_request import FindCoordinatorRequest
from kbroker.wire.messages.metadata_request import MetadataRequest


def test_find_coordinator_on_a_full_disk(client: RawClient, broker_thread, tmp_path: Path) -> None:
    control = tmp_path / "faults"
    control.write_text("create ENOSPC\nwrite ENOSPC\n")  # every file of this process
    uninstall = install(None, str(control))
    try:
        for version in (1, 3):
            got = client.request(FindCoordinatorRequest(key="g", key_type=0), version)
            assert got.error_code == ErrorCode.COORDINATOR_NOT_AVAILABLE
        got = client.request(FindCoordinatorRequest(key_type=0, coordinator_keys=["g", "h"]), 4)
        assert [c.error_code for c in got.coordinators] == [ErrorCode.COORDINATOR_NOT_AVAILABLE] * 2
        names = [t.name for t in client.request(MetadataRequest(topics=None), 12).topics]
        assert "__consumer_offsets" not in names
        os.unlink(control)  # space returns
        got = client.request(FindCoordinatorRequest(key="g", key_type=0), 3)
        assert got.error_code == ErrorCode.NONE
    finally:
        uninstall()

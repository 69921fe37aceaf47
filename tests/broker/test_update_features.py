"""UpdateFeatures (57) and the finalized features in ApiVersions v3+, over the raw protocol."""

from __future__ import annotations

from pathlib import Path

import pytest
from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.api_versions_request import ApiVersionsRequest
from kbroker.wire.messages.update_features_request import FeatureUpdateKey, UpdateFeaturesRequest

from kbroker.emulation import emulation_for
from kbroker.testing import BrokerThread

UPGRADE, SAFE_DOWNGRADE, UNSAFE_DOWNGRADE = 1, 2, 3


def finalized(c: RawClient, version: int = 4) -> tuple[dict[str, int], int]:
    resp = c.request(ApiVersionsRequest(client_software_name="raw", client_software_version="1"), version)
    levels = {}
    for f in resp.finalized_features:
        assert f.min_version_level == f.max_version_level, f
        levels[f.name] = f.max_version_level
    return levels, resp.finalized_features_epoch


def update(c: RawClient, version: int, *changes: tuple[str, int, int], validate_only: bool = False):  # type: ignore[no-untyped-def]
    # v0 has only allow_downgrade; v1+ only upgrade_type
    keys = [
        FeatureUpdateKey(feature=name, max_version_level=level, allow_downgrade=kind != UPGRADE)
        if version == 0
        else FeatureUpdateKey(feature=name, max_version_level=level, upgrade_type=kind)
        for name, level, kind in changes
    ]
    return c.request(UpdateFeaturesRequest(feature_updates=keys, validate_only=validate_only), version)


def test_a_fresh_broker_reports_the_newest_release_levels(client: RawClient) -> None:
    levels, epoch = finalized(client)
    assert levels == emulation_for(None).finalized_features
    assert levels["metadata.version"] == emulation_for(None).supported_features["metadata.version"][1]
    assert epoch == 0


@pytest.mark.parametrize("version", [0, 1, 2])
def test_a_downgrade_and_upgrade_are_finalized_and_bump_the_epoch(client: RawClient, version: int) -> None:
    before, epoch = finalized(client)
    assert before["transaction.version"] == 2
    resp = update(client, version, ("transaction.version", 0, SAFE_DOWNGRADE))
    assert resp.error_code == ErrorCode.NONE, resp.error_message
    assert [(r.feature, r.error_code) for r in resp.results] == ([] if version == 2 else [("transaction.version", 0)])
    after, epoch_after = finalized(client)
    assert "transaction.version" not in after and epoch_after == epoch + 1
    assert update(client, version, ("transaction.version", 2, UPGRADE)).error_code == ErrorCode.NONE
    assert finalized(client) == (before, epoch + 2)
    # the same level again changes nothing, not even the epoch
    assert update(client, version, ("transaction.version", 2, UPGRADE)).error_code == ErrorCode.NONE
    assert finalized(client)[1] == epoch + 2


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (("transaction.version", 3, UPGRADE), "only supports versions 0-2"),  # Kafka 4.2's range
        # group.version 1 is supported once ConsumerGroupHeartbeat is served; 2 never is
        (("group.version", 2, UPGRADE), "only supports versions 0-1"),
        (("no.such.version", 1, UPGRADE), "does not support the given feature"),
        (("transaction.version", 0, UPGRADE), "without setting the upgrade type"),
        (("metadata.version", 7, SAFE_DOWNGRADE), "might delete metadata"),
        (("metadata.version", 7, UNSAFE_DOWNGRADE), "Unsafe metadata downgrade"),
        (("metadata.version", 0, UNSAFE_DOWNGRADE), "only supports versions 7-"),
        (("metadata.version", 99, UPGRADE), "only supports versions 7-"),
        (("transaction.version", 1, 7), "Invalid upgrade type"),
    ],
)
def test_refused_updates_fail_the_whole_request(client: RawClient, change: tuple[str, int, int], why: str) -> None:
    before = finalized(client)
    resp = update(client, 1, ("eligible.leader.replicas.version", 0, SAFE_DOWNGRADE), change)
    assert resp.error_code == ErrorCode.INVALID_UPDATE_VERSION and why in resp.error_message, resp.error_message
    assert {r.error_code for r in resp.results} == {ErrorCode.INVALID_UPDATE_VERSION}
    assert finalized(client) == before  # the good update was not applied either


def test_validate_only_and_duplicates_change_nothing(client: RawClient) -> None:
    before = finalized(client)
    ok = update(client, 1, ("transaction.version", 0, SAFE_DOWNGRADE), validate_only=True)
    assert ok.error_code == ErrorCode.NONE
    twice = update(client, 2, ("transaction.version", 0, SAFE_DOWNGRADE), ("transaction.version", 1, UPGRADE))
    assert twice.error_code == ErrorCode.INVALID_REQUEST
    assert finalized(client) == before


def test_updates_survive_a_restart(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data")
    bt.start()
    try:
        c = RawClient(bt.address)
        assert update(c, 2, ("eligible.leader.replicas.version", 0, SAFE_DOWNGRADE)).error_code == ErrorCode.NONE
        levels, epoch = finalized(c)
        c.close()
        bt.restart()
        c = RawClient(bt.address)
        assert finalized(c) == (levels, epoch)
        assert "eligible.leader.replicas.version" not in levels and epoch == 1
        c.close()
    finally:
        bt.close()


def test_an_older_emulated_release_ignores_levels_it_does_not_support(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data")
    bt.start()
    try:
        c = RawClient(bt.address)
        assert update(c, 2, ("metadata.version", 29, UPGRADE)).error_code == ErrorCode.NONE
        c.close()
    finally:
        bt.close()
    bt = BrokerThread(tmp_path / "data", {"kbroker.emulate.version": "4.0"})
    bt.start()
    try:
        c = RawClient(bt.address)
        levels, _epoch = finalized(c)
        assert levels["metadata.version"] == 25  # 4.0's; 29 is beyond what 4.0 supports
        # a 3.x (ZooKeeper) release has nothing to finalize
        c.close()
    finally:
        bt.close()
    bt = BrokerThread(tmp_path / "data", {"kbroker.emulate.version": "3.6"})
    bt.start()
    try:
        c = RawClient(bt.address)
        assert finalized(c, 3) == ({}, -1)
        refused = update(c, 0, ("metadata.version", 14, UPGRADE))
        assert refused.error_code == ErrorCode.INVALID_UPDATE_VERSION
        c.close()
    finally:
        bt.close()

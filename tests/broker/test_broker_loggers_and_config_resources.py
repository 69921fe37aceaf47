"""BROKER_LOGGER config resources (DescribeConfigs / IncrementalAlterConfigs change Python log
levels live) and ListConfigResources (74), over the raw protocol."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.alter_configs_request import (
    AlterableConfig as PlainConfig,
)
from kbroker.wire.messages.alter_configs_request import (
    AlterConfigsRequest,
)
from kbroker.wire.messages.alter_configs_request import (
    AlterConfigsResource as PlainResource,
)
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from kbroker.wire.messages.describe_configs_request import (
    DescribeConfigsRequest,
    DescribeConfigsResource,
)
from kbroker.wire.messages.find_coordinator_request import FindCoordinatorRequest
from kbroker.wire.messages.incremental_alter_configs_request import (
    AlterableConfig,
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
)
from kbroker.wire.messages.list_config_resources_request import ListConfigResourcesRequest
from kbroker.wire.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)

BROKER_LOGGER = 8
LOGGER_SOURCE = 6
SET, DELETE, APPEND = 0, 1, 2
LOGGER = "kbroker.server"


@pytest.fixture
def restore_levels() -> Iterator[None]:
    saved = {name: logging.getLogger(name).level for name in ("", LOGGER)}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def describe_loggers(c: RawClient, name: str = "1", keys: list[str] | None = None, version: int = 4):  # type: ignore[no-untyped-def]
    req = DescribeConfigsRequest(resources=[DescribeConfigsResource(resource_type=BROKER_LOGGER, resource_name=name, configuration_keys=keys)])
    return c.request(req, version).results[0]


def alter_loggers(c: RawClient, *changes: tuple[str, int, str | None], name: str = "1", validate_only: bool = False):  # type: ignore[no-untyped-def]
    configs = [AlterableConfig(name=n, config_operation=op, value=v) for n, op, v in changes]
    req = IncrementalAlterConfigsRequest(
        resources=[AlterConfigsResource(resource_type=BROKER_LOGGER, resource_name=name, configs=configs)], validate_only=validate_only
    )
    return c.request(req, 1).responses[0]


def test_describe_lists_loggers_with_their_levels(client: RawClient, restore_levels: None) -> None:
    logging.getLogger(LOGGER).setLevel(logging.WARNING)
    result = describe_loggers(client)
    assert result.error_code == ErrorCode.NONE
    levels = {c.name: (c.value, c.config_source, c.read_only) for c in result.configs}
    assert levels[LOGGER] == ("WARN", LOGGER_SOURCE, False)
    assert "root" in levels
    only = describe_loggers(client, keys=[LOGGER], version=1)
    assert [(c.name, c.value) for c in only.configs] == [(LOGGER, "WARN")]
    assert describe_loggers(client, name="").error_code == ErrorCode.INVALID_REQUEST
    assert describe_loggers(client, name="7").error_code == ErrorCode.INVALID_REQUEST


def test_set_and_delete_change_python_levels_live(client: RawClient, restore_levels: None) -> None:
    logging.getLogger().setLevel(logging.INFO)
    assert alter_loggers(client, (LOGGER, SET, "trace")).error_code == ErrorCode.NONE
    assert logging.getLogger(LOGGER).level == 5
    assert {c.name: c.value for c in describe_loggers(client, keys=[LOGGER]).configs} == {LOGGER: "TRACE"}
    assert alter_loggers(client, (LOGGER, SET, "OFF")).error_code == ErrorCode.NONE
    assert not logging.getLogger(LOGGER).isEnabledFor(logging.CRITICAL)
    assert alter_loggers(client, (LOGGER, DELETE, None)).error_code == ErrorCode.NONE
    assert logging.getLogger(LOGGER).level == logging.NOTSET
    assert {c.name: c.value for c in describe_loggers(client, keys=[LOGGER]).configs} == {LOGGER: "INFO"}  # inherited
    assert alter_loggers(client, ("root", SET, "ERROR"), validate_only=True).error_code == ErrorCode.NONE
    assert logging.getLogger().level == logging.INFO


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ((LOGGER, SET, "LOUD"), ErrorCode.INVALID_CONFIG),
        (("no.such.logger", SET, "INFO"), ErrorCode.INVALID_CONFIG),
        (("root", DELETE, None), ErrorCode.INVALID_REQUEST),
        ((LOGGER, APPEND, "INFO"), ErrorCode.INVALID_REQUEST),
    ],
)
def test_bad_logger_changes_are_refused_and_change_nothing(
    client: RawClient, restore_levels: None, change: tuple[str, int, str | None], code: ErrorCode
) -> None:
    logging.getLogger(LOGGER).setLevel(logging.INFO)
    assert alter_loggers(client, (LOGGER, SET, "DEBUG"), change).error_code == code
    assert logging.getLogger(LOGGER).level == logging.INFO


def test_alter_configs_refuses_broker_loggers(client: RawClient) -> None:
    req = AlterConfigsRequest(resources=[PlainResource(resource_type=BROKER_LOGGER, resource_name="1", configs=[PlainConfig(name=LOGGER, value="DEBUG")])])
    assert client.request(req, 2).responses[0].error_code == ErrorCode.INVALID_REQUEST


def test_list_config_resources(client: RawClient) -> None:
    topic = CreatableTopic(name="listed", num_partitions=1, replication_factor=-1)
    assert client.request(CreateTopicsRequest(topics=[topic], timeout_ms=5000), 7).topics[0].error_code == ErrorCode.NONE
    assert client.request(FindCoordinatorRequest(key="g1"), 3).error_code == ErrorCode.NONE
    commit = OffsetCommitRequest(
        group_id="g1",
        generation_id_or_member_epoch=-1,
        member_id="",
        topics=[OffsetCommitRequestTopic(name="listed", partitions=[OffsetCommitRequestPartition(partition_index=0, committed_offset=0)])],
    )
    assert client.request(commit, 8).topics[0].partitions[0].error_code == ErrorCode.NONE
    # v0: client metrics resources only; kbroker has none
    v0 = client.request(ListConfigResourcesRequest(), 0)
    assert (v0.error_code, v0.config_resources) == (ErrorCode.NONE, [])
    everything = client.request(ListConfigResourcesRequest(resource_types=[]), 1)
    got = {(r.resource_type, r.resource_name) for r in everything.config_resources}
    assert {(2, "listed"), (4, "1"), (8, "1"), (32, "g1")} <= got
    assert {t for t, _ in got} <= {2, 4, 8, 32}
    only = client.request(ListConfigResourcesRequest(resource_types=[4, 4]), 1)
    assert [(r.resource_type, r.resource_name) for r in only.config_resources] == [(4, "1")]
    bad = client.request(ListConfigResourcesRequest(resource_types=[2, 64]), 1)
    assert (bad.error_code, bad.config_resources) == (ErrorCode.UNSUPPORTED_VERSION, [])

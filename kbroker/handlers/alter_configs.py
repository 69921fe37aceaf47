"""AlterConfigs (key 33) and IncrementalAlterConfigs (key 44).

Version notes:
- AlterConfigs v0-v2 (librdkafka 2.0.2's admin sends v0; Kafka 4 advertises 0-2): the
  topic's overrides are replaced by exactly the given set.
- IncrementalAlterConfigs v0-v1: operations SET (0), DELETE (1); APPEND (2) and
  SUBTRACT (3) apply to list configs (cleanup.policy) only, else INVALID_CONFIG.
  SUBTRACT may leave the list empty: Kafka 4.2 accepts an empty cleanup.policy (no
  deletion, no compaction) and DescribeConfigs then reports it as "".
- validate_only checks everything and changes nothing.
- GROUP resources (IncrementalAlterConfigs, SET/DELETE): KIP-848 per-group configs
  (``kbroker.group_configs``), validated against the broker's bounds (INVALID_CONFIG).
- CLIENT_METRICS resources (16, KIP-714 subscriptions, ``kbroker.client_metrics``): AlterConfigs
  replaces the subscription, IncrementalAlterConfigs SET/DELETE and APPEND/SUBTRACT on the
  list configs (metrics, match); checked as Kafka checks them (unknown name, empty
  subscription name, interval.ms outside 100-3600000: INVALID_REQUEST; a bad match selector
  or regex: INVALID_CONFIG).  Durable; deleting every config removes the subscription.
- BROKER resources (name = this node's id, or "" for the cluster default): only the
  dynamic configs kbroker applies live (``kbroker.dynamic_configs``: the log cleaner's and
  the broker-wide defaults of topic configs, e.g. log.retention.ms, which reach every
  topic without an override at once);
  any other name is INVALID_REQUEST, a bad value INVALID_CONFIG.  Values are persisted
  in the data dir and applied at once.
- ACLs: ALTER_CONFIGS on the topic (TOPIC_AUTHORIZATION_FAILED) or, for the broker, on the
  cluster (CLUSTER_AUTHORIZATION_FAILED).
- BROKER_LOGGER resources (8, name = this node's id): IncrementalAlterConfigs SET sets a
  logger's level (Kafka's names: TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF, ALL), DELETE
  makes it inherit again (not for "root": INVALID_REQUEST); an unknown logger or level is
  INVALID_CONFIG, APPEND/SUBTRACT INVALID_REQUEST.  Applied live, not persisted, as in
  Kafka (``kbroker.broker_loggers``).  AlterConfigs refuses BROKER_LOGGER (INVALID_REQUEST).
"""

from __future__ import annotations

from typing import Any

from kbroker import client_metrics
from kbroker.acl.check import require_configs
from kbroker.acl.model import AclOperation
from kbroker.broker_loggers import RESOURCE_BROKER_LOGGER, apply_change, check_change
from kbroker.client_metrics import RESOURCE_CLIENT_METRICS
from kbroker.config import TOPIC_CONFIGS, ConfigError, ConfigType
from kbroker.dynamic_configs import DYNAMIC_BROKER_CONFIGS
from kbroker.errors import KafkaError
from kbroker.group_configs import RESOURCE_GROUP, validate_group_configs
from kbroker.registry import RequestContext, handler
from kbroker.topics import validate_topic_configs
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.alter_configs_request import AlterConfigsRequest
from kbroker.wire.messages.alter_configs_response import (
    AlterConfigsResourceResponse,
    AlterConfigsResponse,
)
from kbroker.wire.messages.incremental_alter_configs_request import IncrementalAlterConfigsRequest
from kbroker.wire.messages.incremental_alter_configs_response import (
    AlterConfigsResourceResponse as IncrementalResourceResponse,
)
from kbroker.wire.messages.incremental_alter_configs_response import IncrementalAlterConfigsResponse

RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4


def _broker_scope(ctx: RequestContext, name: str) -> str:
    if name not in ("", str(ctx.broker.config.node_id)):
        raise KafkaError(
            ErrorCode.INVALID_REQUEST,
            f"Unexpected broker id, expected {ctx.broker.config.node_id} or empty string, but received {name}",
        )
    return name


def _logger_scope(ctx: RequestContext, name: str) -> None:
    if name != str(ctx.broker.config.node_id):
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unexpected broker id, expected {ctx.broker.config.node_id}, but received {name}")


def _alter_loggers(ctx: RequestContext, name: str, configs: list[tuple[str, int, str | None]], validate_only: bool) -> None:
    _logger_scope(ctx, name)
    for logger, operation, value in configs:
        check_change(logger, operation, value)
    if not validate_only:
        for logger, operation, value in configs:
            apply_change(logger, operation, value)


def _apply_broker(ctx: RequestContext, scope: str, values: dict[str, str], validate_only: bool) -> None:
    dynamic = ctx.broker.topics.dynamic
    assert dynamic is not None
    refused = sorted(set(values) - DYNAMIC_BROKER_CONFIGS)
    if refused:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Cannot update these configs dynamically: {refused}")
    try:
        dynamic.effective(ctx.broker.config, {**dynamic.scopes, scope: values})
    except ConfigError as exc:
        raise KafkaError(ErrorCode.INVALID_CONFIG, str(exc)) from None
    if not validate_only:
        dynamic.replace(scope, values)
        ctx.broker.topics.apply_dynamic_configs()
OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT = 0, 1, 2, 3


def _alter_group(ctx: RequestContext, group_id: str, configs: list[Any], validate_only: bool) -> None:
    """IncrementalAlterConfigs on a GROUP resource: SET/DELETE of ``kbroker.group_configs``."""
    if not group_id:
        raise KafkaError(ErrorCode.INVALID_REQUEST, "Group id can't be empty.")
    store = ctx.broker.groups.group_configs
    values = store.get(group_id)
    for c in configs:
        if c.config_operation == OP_SET and c.value is not None:
            values[c.name] = c.value
        elif c.config_operation == OP_DELETE:
            values.pop(c.name, None)
        else:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Operation {c.config_operation} is not valid for {c.name}")
    validate_group_configs(values, ctx.broker.config)
    if not validate_only:
        store.replace(group_id, values)


def _alter_client_metrics(ctx: RequestContext, name: str, configs: list[Any], validate_only: bool) -> None:
    """IncrementalAlterConfigs on a CLIENT_METRICS subscription (``kbroker.client_metrics``):
    SET/DELETE, and APPEND/SUBTRACT on its lists (metrics, match)."""
    client_metrics.validate(name, {})
    store = ctx.broker.client_metrics
    values = store.get(name)
    for c in configs:
        if c.config_operation == OP_SET and c.value is not None:
            values[c.name] = c.value
        elif c.config_operation == OP_DELETE:
            values.pop(c.name, None)
        elif c.config_operation in (OP_APPEND, OP_SUBTRACT) and client_metrics.CONFIG_TYPES.get(c.name) is ConfigType.LIST:
            items = [i for i in values.get(c.name, "").split(",") if i]
            for v in (c.value or "").split(","):
                if c.config_operation == OP_APPEND and v and v not in items:
                    items.append(v)
                elif c.config_operation == OP_SUBTRACT and v in items:
                    items.remove(v)
            values[c.name] = ",".join(items)
        else:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Operation {c.config_operation} is not valid for {c.name}")
    client_metrics.validate(name, values)
    if not validate_only:
        store.replace(name, values)


def _topic_or_raise(ctx: RequestContext, resource_type: int, name: str) -> dict[str, str]:
    if resource_type != RESOURCE_TOPIC:
        raise KafkaError(ErrorCode.INVALID_REQUEST, "kbroker's broker configs are static; only topic configs can be altered")
    topic = ctx.broker.metadata.get(name)
    if topic is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Topic {name} does not exist")
    return dict(topic.configs)


def _apply(ctx: RequestContext, name: str, configs: dict[str, str], validate_only: bool) -> None:
    validate_topic_configs(dict(configs))
    if not validate_only:
        ctx.broker.topics.set_topic_configs(name, configs)


@handler(ApiKey.ALTER_CONFIGS, 0, 2)
async def handle_alter_configs(ctx: RequestContext, req: AlterConfigsRequest) -> AlterConfigsResponse:
    out = []
    for resource in req.resources:
        result = AlterConfigsResourceResponse(
            error_code=ErrorCode.NONE, error_message=None, resource_type=resource.resource_type, resource_name=resource.resource_name
        )
        try:
            require_configs(ctx, AclOperation.ALTER_CONFIGS, resource.resource_type, resource.resource_name)
            new = {c.name: c.value for c in resource.configs if c.value is not None}
            if resource.resource_type == RESOURCE_CLIENT_METRICS:  # the whole subscription replaced
                client_metrics.validate(resource.resource_name, new)
                if not req.validate_only:
                    ctx.broker.client_metrics.replace(resource.resource_name, new)
                out.append(result)
                continue
            if resource.resource_type == RESOURCE_BROKER:
                _apply_broker(ctx, _broker_scope(ctx, resource.resource_name), new, req.validate_only)
                out.append(result)
                continue
            _topic_or_raise(ctx, resource.resource_type, resource.resource_name)
            _apply(ctx, resource.resource_name, new, req.validate_only)
        except KafkaError as exc:
            result.error_code, result.error_message = exc.code, exc.message
        out.append(result)
    return AlterConfigsResponse(responses=out)


@handler(ApiKey.INCREMENTAL_ALTER_CONFIGS, 0, 1)
async def handle_incremental_alter_configs(
    ctx: RequestContext, req: IncrementalAlterConfigsRequest
) -> IncrementalAlterConfigsResponse:
    out = []
    for resource in req.resources:
        result = IncrementalResourceResponse(
            error_code=ErrorCode.NONE, error_message=None, resource_type=resource.resource_type, resource_name=resource.resource_name
        )
        try:
            require_configs(ctx, AclOperation.ALTER_CONFIGS, resource.resource_type, resource.resource_name)
            if resource.resource_type == RESOURCE_BROKER_LOGGER:
                changes = [(c.name, c.config_operation, c.value) for c in resource.configs]
                _alter_loggers(ctx, resource.resource_name, changes, req.validate_only)
                out.append(result)
                continue
            if resource.resource_type == RESOURCE_CLIENT_METRICS:  # KIP-714 subscriptions
                _alter_client_metrics(ctx, resource.resource_name, resource.configs, req.validate_only)
                out.append(result)
                continue
            if resource.resource_type == RESOURCE_GROUP:  # KIP-848 per-group configs
                _alter_group(ctx, resource.resource_name, resource.configs, req.validate_only)
                out.append(result)
                continue
            if resource.resource_type == RESOURCE_BROKER:
                scope = _broker_scope(ctx, resource.resource_name)
                dynamic = ctx.broker.topics.dynamic
                assert dynamic is not None
                values = dict(dynamic.scopes[scope])
                for c in resource.configs:
                    if c.config_operation == OP_SET and c.value is not None:
                        values[c.name] = c.value
                    elif c.config_operation == OP_DELETE:
                        values.pop(c.name, None)
                    else:
                        raise KafkaError(ErrorCode.INVALID_CONFIG, f"Operation {c.config_operation} is not valid for {c.name}")
                _apply_broker(ctx, scope, values, req.validate_only)
                out.append(result)
                continue
            configs = _topic_or_raise(ctx, resource.resource_type, resource.resource_name)
            effective = ctx.broker.topics.effective_configs(ctx.broker.metadata.get(resource.resource_name))  # type: ignore[arg-type]
            for c in resource.configs:
                if c.config_operation == OP_SET:
                    if c.value is None:
                        raise KafkaError(ErrorCode.INVALID_CONFIG, f"Null value not supported for {c.name}")
                    configs[c.name] = c.value
                elif c.config_operation == OP_DELETE:
                    configs.pop(c.name, None)
                elif c.config_operation in (OP_APPEND, OP_SUBTRACT):
                    known = TOPIC_CONFIGS.get(c.name)
                    if known is None or known[1] is not ConfigType.LIST:
                        raise KafkaError(ErrorCode.INVALID_CONFIG, f"Config {c.name} is not a list")
                    items = [i for i in configs.get(c.name, effective.get(c.name, "")).split(",") if i]
                    for v in (c.value or "").split(","):
                        if c.config_operation == OP_APPEND and v and v not in items:
                            items.append(v)
                        elif c.config_operation == OP_SUBTRACT and v in items:
                            items.remove(v)
                    configs[c.name] = ",".join(items)
                else:
                    raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unknown config operation {c.config_operation}")
            _apply(ctx, resource.resource_name, configs, req.validate_only)
        except KafkaError as exc:
            result.error_code, result.error_message = exc.code, exc.message
        out.append(result)
    return IncrementalAlterConfigsResponse(responses=out)

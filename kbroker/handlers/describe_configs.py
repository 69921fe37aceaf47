"""DescribeConfigs (key 32).

Version notes:
- v1-v4 served (librdkafka v1, aiokafka v2, kafkajs v2, kafka-python v4).
- v0's is_default is not sent (v0 is below Kafka 4's minimum); v1+ config_source says where
  a value comes from: TOPIC_CONFIG (topic override), STATIC_BROKER_CONFIG (set in the broker's
  properties, flags or environment) or DEFAULT_CONFIG.
- v1+ include_synonyms: the chain topic override -> dynamic broker value (this broker's, then
  the cluster default) -> static broker property -> default, as Kafka lists it; a topic
  without an override shows the first of these as its value and source.
- v3+ config_type; documentation is not carried (null).
- Resource types: TOPIC (2) and BROKER (4, name = this node's id, or "" for the cluster
  defaults set by AlterConfigs).  Dynamic values (``kbroker.dynamic_configs``) show as
  DYNAMIC_BROKER_CONFIG / DYNAMIC_DEFAULT_BROKER_CONFIG, ahead of the static value in the
  synonyms.  BROKER_LOGGER (8, name = this node's id): every existing Python logger with its
  effective level in Kafka's names, source DYNAMIC_BROKER_LOGGER_CONFIG (6), root as
  "root" (``kbroker.broker_loggers``).  GROUP (32, KIP-848 per-group configs,
  ``kbroker.group_configs``): the group's override (source GROUP_CONFIG, 8) ahead of the
  broker property.  CLIENT_METRICS (16, KIP-714 subscriptions, ``kbroker.client_metrics``):
  metrics, interval.ms and match, those set on the subscription with source
  CLIENT_METRICS_CONFIG (7), the others with their defaults (DEFAULT_CONFIG), as Kafka 4
  describes them; an empty name is INVALID_REQUEST.  Others: INVALID_REQUEST.
- ACLs: DESCRIBE_CONFIGS on the topic (TOPIC_AUTHORIZATION_FAILED), the group
  (GROUP_AUTHORIZATION_FAILED) or, for the broker and its loggers, on the cluster
  (CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from kbroker.acl.check import require_configs
from kbroker.acl.model import AclOperation
from kbroker.broker_loggers import (
    DYNAMIC_BROKER_LOGGER_CONFIG,
    RESOURCE_BROKER_LOGGER,
    current_levels,
)
from kbroker.client_metrics import RESOURCE_CLIENT_METRICS, describe_client_metrics
from kbroker.config import BROKER_CONFIGS, TOPIC_CONFIGS, ConfigSource, ConfigType
from kbroker.dynamic_configs import DYNAMIC_BROKER_CONFIGS
from kbroker.errors import KafkaError
from kbroker.group_configs import RESOURCE_GROUP, describe_group_configs
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.describe_configs_request import (
    DescribeConfigsRequest,
    DescribeConfigsResource,
)
from kbroker.wire.messages.describe_configs_response import (
    DescribeConfigsResourceResult,
    DescribeConfigsResponse,
    DescribeConfigsResult,
    DescribeConfigsSynonym,
)

RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4


def _entry(
    name: str,
    value: str | None,
    source: ConfigSource,
    type_: ConfigType,
    synonyms: list[DescribeConfigsSynonym],
    read_only: bool,
    sensitive: bool = False,
) -> DescribeConfigsResourceResult:
    if sensitive:  # passwords and keys: reported, never their value (as Kafka)
        value = None
        synonyms = [DescribeConfigsSynonym(name=s.name, value=None, source=s.source) for s in synonyms]
    return DescribeConfigsResourceResult(
        name=name,
        value=value,
        read_only=read_only,
        config_source=source,
        is_sensitive=sensitive,
        synonyms=synonyms,
        config_type=type_,
        documentation=None,
    )


def _topic_configs(ctx: RequestContext, resource: DescribeConfigsResource, with_synonyms: bool) -> DescribeConfigsResult:
    broker = ctx.broker
    topic = broker.metadata.get(resource.resource_name)
    if topic is None:
        return DescribeConfigsResult(
            error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            error_message=f"Topic {resource.resource_name} does not exist",
            resource_type=RESOURCE_TOPIC,
            resource_name=resource.resource_name,
        )
    keys = resource.configuration_keys
    entries = []
    for name, (synonym, type_) in sorted(TOPIC_CONFIGS.items()):
        if keys is not None and name not in keys:
            continue
        chain: list[DescribeConfigsSynonym] = []
        if name in topic.configs:
            chain.append(DescribeConfigsSynonym(name=name, value=topic.configs[name], source=ConfigSource.TOPIC_CONFIG))
        if synonym is not None:
            dynamic = broker.topics.dynamic
            if dynamic is not None and synonym in DYNAMIC_BROKER_CONFIGS:
                chain += [DescribeConfigsSynonym(name=synonym, value=v, source=src) for v, src in dynamic.chain(synonym)]
            if broker.config.source_of(synonym) is ConfigSource.STATIC_BROKER_CONFIG:
                chain.append(DescribeConfigsSynonym(name=synonym, value=broker.config.get(synonym), source=ConfigSource.STATIC_BROKER_CONFIG))
            default = BROKER_CONFIGS[synonym].default if synonym in BROKER_CONFIGS else None
            chain.append(DescribeConfigsSynonym(name=synonym, value=default, source=ConfigSource.DEFAULT_CONFIG))
        first = chain[0] if chain else DescribeConfigsSynonym(name=name, value=None, source=ConfigSource.DEFAULT_CONFIG)
        entries.append(_entry(name, first.value, ConfigSource(first.source), type_, chain if with_synonyms else [], False))
    return DescribeConfigsResult(
        error_code=ErrorCode.NONE, error_message=None, resource_type=RESOURCE_TOPIC, resource_name=topic.name, configs=entries
    )


def _broker_configs(ctx: RequestContext, resource: DescribeConfigsResource, with_synonyms: bool) -> DescribeConfigsResult:
    config = ctx.broker.config
    name = resource.resource_name
    result = DescribeConfigsResult(error_code=ErrorCode.NONE, error_message=None, resource_type=RESOURCE_BROKER, resource_name=name)
    dynamic = ctx.broker.topics.dynamic
    if name == "":
        default_source = ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
        for dyn_key, dyn_value in sorted(dynamic.scopes[""].items() if dynamic is not None else []):
            synonyms = [DescribeConfigsSynonym(name=dyn_key, value=dyn_value, source=default_source)]
            result.configs.append(
                _entry(dyn_key, dyn_value, default_source, BROKER_CONFIGS[dyn_key].type, synonyms if with_synonyms else [], False)
            )
        return result
    if name != str(ctx.node_id):  # the node the request came to (a virtual cluster's too)
        result.error_code = ErrorCode.INVALID_REQUEST
        result.error_message = f"Unexpected broker id, expected {ctx.node_id} or empty string, but received {name}"
        return result
    keys = resource.configuration_keys
    for key, definition in sorted(BROKER_CONFIGS.items()):
        if keys is not None and key not in keys:
            continue
        value = config.describe_value(key)
        source = config.source_of(key)
        chain = [DescribeConfigsSynonym(name=key, value=value, source=source)]
        if source is ConfigSource.STATIC_BROKER_CONFIG and definition.default is not None:
            chain.append(DescribeConfigsSynonym(name=key, value=definition.default, source=ConfigSource.DEFAULT_CONFIG))
        read_only = definition.read_only
        if dynamic is not None and key in DYNAMIC_BROKER_CONFIGS:
            read_only = False
            found = dynamic.lookup(key)
            if found is not None:
                value, source = found
                chain.insert(0, DescribeConfigsSynonym(name=key, value=value, source=source))
        result.configs.append(
            _entry(key, value, source, definition.type, chain if with_synonyms else [], read_only, definition.sensitive)
        )
    return result


def _logger_configs(ctx: RequestContext, resource: DescribeConfigsResource) -> DescribeConfigsResult:
    result = DescribeConfigsResult(
        error_code=ErrorCode.NONE, error_message=None, resource_type=RESOURCE_BROKER_LOGGER, resource_name=resource.resource_name
    )
    if resource.resource_name != str(ctx.broker.config.node_id):
        result.error_code = ErrorCode.INVALID_REQUEST
        result.error_message = f"Unexpected broker id, expected {ctx.broker.config.node_id}, but received {resource.resource_name}"
        return result
    wanted = resource.configuration_keys
    for name, level in current_levels().items():
        if wanted is None or name in wanted:
            result.configs.append(_entry(name, level, DYNAMIC_BROKER_LOGGER_CONFIG, ConfigType.STRING, [], False))  # type: ignore[arg-type]
    return result


@handler(ApiKey.DESCRIBE_CONFIGS, 1, 4)
async def handle_describe_configs(ctx: RequestContext, req: DescribeConfigsRequest) -> DescribeConfigsResponse:
    results = []
    for resource in req.resources:
        try:
            require_configs(ctx, AclOperation.DESCRIBE_CONFIGS, resource.resource_type, resource.resource_name)
        except KafkaError as exc:
            results.append(
                DescribeConfigsResult(
                    error_code=exc.code,
                    error_message=None,
                    resource_type=resource.resource_type,
                    resource_name=resource.resource_name,
                )
            )
            continue
        if resource.resource_type == RESOURCE_TOPIC:
            results.append(_topic_configs(ctx, resource, req.include_synonyms))
        elif resource.resource_type == RESOURCE_BROKER:
            results.append(_broker_configs(ctx, resource, req.include_synonyms))
        elif resource.resource_type == RESOURCE_BROKER_LOGGER:
            results.append(_logger_configs(ctx, resource))
        elif resource.resource_type == RESOURCE_CLIENT_METRICS:  # KIP-714 subscriptions
            subscriptions = ctx.broker.client_metrics
            wanted = resource.configuration_keys
            results.append(describe_client_metrics(subscriptions, resource.resource_name, wanted, req.include_synonyms))
        elif resource.resource_type == RESOURCE_GROUP:  # KIP-848 per-group configs
            store = ctx.broker.groups.group_configs
            keys = resource.configuration_keys
            results.append(
                describe_group_configs(store, ctx.broker.config, resource.resource_name, keys, req.include_synonyms)
            )
        else:
            results.append(
                DescribeConfigsResult(
                    error_code=ErrorCode.INVALID_REQUEST,
                    error_message=f"Unsupported resource type {resource.resource_type}",
                    resource_type=resource.resource_type,
                    resource_name=resource.resource_name,
                )
            )
    return DescribeConfigsResponse(results=results)

"""GetTelemetrySubscriptions (key 71, KIP-714).

Version notes:
- v0 served, and advertised only with ``kbroker.client.telemetry.enable=true`` for releases
  3.7+ (a Kafka broker advertises it only when a client-telemetry receiver is configured).
- The zero instance id gets a new random one.  The subscription (metric prefixes, push
  interval, subscription id) comes from the CLIENT_METRICS resources the client matches
  (``kbroker.telemetry``); with none, no metrics and the default 300 s interval.
- Offered compression types: zstd, lz4, gzip, snappy (Kafka's list); telemetry_max_bytes is
  ``telemetry.max.bytes``; delta temporality is asked for.
- Asked again before the push interval has passed: THROTTLING_QUOTA_EXCEEDED (not after a
  push was refused for its subscription id or compression type), as Kafka.
"""

from __future__ import annotations

from kbroker.registry import RequestContext, handler
from kbroker.telemetry import ACCEPTED_COMPRESSION_TYPES, TelemetryError, client_facts
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.get_telemetry_subscriptions_request import (
    GetTelemetrySubscriptionsRequest,
)
from kbroker.wire.messages.get_telemetry_subscriptions_response import (
    GetTelemetrySubscriptionsResponse,
)


@handler(ApiKey.GET_TELEMETRY_SUBSCRIPTIONS, 0, 0)
async def handle_get_telemetry_subscriptions(
    ctx: RequestContext, req: GetTelemetrySubscriptionsRequest
) -> GetTelemetrySubscriptionsResponse:
    telemetry = ctx.broker.telemetry
    try:
        instance = telemetry.get_subscriptions(req.client_instance_id, client_facts(ctx.client_id, ctx.session, ctx.peer), ctx.now_ms)
    except TelemetryError as exc:
        return GetTelemetrySubscriptionsResponse(error_code=exc.code)
    return GetTelemetrySubscriptionsResponse(
        error_code=ErrorCode.NONE,
        client_instance_id=instance.instance_id,
        subscription_id=instance.subscription_id,
        accepted_compression_types=list(ACCEPTED_COMPRESSION_TYPES),
        push_interval_ms=instance.interval_ms,
        telemetry_max_bytes=telemetry.max_bytes,
        delta_temporality=True,
        requested_metrics=list(instance.metrics),
    )

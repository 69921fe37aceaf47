"""PushTelemetry (key 72, KIP-714).

Version notes:
- v0 served, and advertised only with ``kbroker.client.telemetry.enable=true`` for releases
  3.7+ (as GetTelemetrySubscriptions).
- Checked as Kafka's ClientMetricsManager checks it (``kbroker.telemetry``): a reserved
  instance id (zero, one) or a push after a terminating one is INVALID_REQUEST; too soon
  after the last push (and no GetTelemetrySubscriptions since), unless terminating,
  THROTTLING_QUOTA_EXCEEDED; another subscription id UNKNOWN_SUBSCRIPTION_ID; a compression
  type not offered UNSUPPORTED_COMPRESSION_TYPE; more than ``telemetry.max.bytes``
  TELEMETRY_TOO_LARGE; a payload that does not decompress or parse as OTLP MetricsData
  INVALID_RECORD.
- Accepted gauge and sum points are kept for the metrics endpoint (``kbroker.metrics``).
"""

from __future__ import annotations

from kbroker.registry import RequestContext, handler
from kbroker.telemetry import TelemetryError, client_facts
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.push_telemetry_request import PushTelemetryRequest
from kbroker.wire.messages.push_telemetry_response import PushTelemetryResponse


@handler(ApiKey.PUSH_TELEMETRY, 0, 0)
async def handle_push_telemetry(ctx: RequestContext, req: PushTelemetryRequest) -> PushTelemetryResponse:
    try:
        ctx.broker.telemetry.push(
            req.client_instance_id,
            client_facts(ctx.client_id, ctx.session, ctx.peer),
            req.subscription_id,
            req.terminating,
            req.compression_type,
            req.metrics,
            ctx.now_ms,
        )
    except TelemetryError as exc:
        return PushTelemetryResponse(error_code=exc.code)
    return PushTelemetryResponse(error_code=ErrorCode.NONE)

"""ApiVersions (key 18).

Version notes:
- v0-v4 served.  aiokafka sends only v0; kafka-python starts at v4, librdkafka at v3,
  kafkajs at v2, each falling back on UNSUPPORTED_VERSION.
- The answer is the broker's emulation (``kbroker.emulate.version``, kbroker/emulation.py):
  ``API_TABLE`` narrowed to that Kafka release's ranges.  An emulated release older than
  2.4 advertises ApiVersions v0-2 only, so a v3 request is answered UNSUPPORTED_VERSION.
- The response header is always v0, even for flexible versions (KIP-511; wire handles it).
- An unsupported version is answered by the dispatcher with a v0 body carrying
  UNSUPPORTED_VERSION and our ranges; kafka-python and librdkafka read key 18's entry
  from it to choose the version to retry with.
- v3+: client_software_name/version are accepted and not checked; they are kept on the
  connection for client-metrics subscriptions (KIP-714).  supported_features
  and finalized_features (tagged) are the emulated release's, capped to what kbroker
  implements; from 3.9, a v3 answer leaves out supported features with minimum 0
  (KAFKA-17492).  Finalized levels and their epoch are ``kbroker.features``' (changed by
  UpdateFeatures, durable); the epoch is -1 while nothing is finalized.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.api_versions_request import ApiVersionsRequest
from kbroker.wire.messages.api_versions_response import (
    ApiVersion,
    ApiVersionsResponse,
    FinalizedFeatureKey,
    SupportedFeatureKey,
)

if TYPE_CHECKING:
    from kbroker.emulation import Emulation

def _api_keys(emulation: Emulation) -> list[ApiVersion]:
    return [ApiVersion(api_key=k, min_version=lo, max_version=hi) for k, (lo, hi) in emulation.api_ranges.items()]


def unsupported_version_response(emulation: Emulation) -> ApiVersionsResponse:
    return ApiVersionsResponse(error_code=ErrorCode.UNSUPPORTED_VERSION, api_keys=_api_keys(emulation))


@handler(ApiKey.API_VERSIONS, 0, 4)
async def handle_api_versions(ctx: RequestContext, req: ApiVersionsRequest) -> ApiVersionsResponse:
    emulation = ctx.broker.emulation
    out = ApiVersionsResponse(error_code=ErrorCode.NONE, api_keys=_api_keys(emulation))
    if ctx.api_version >= 3:
        ctx.session.client_software_name = req.client_software_name
        ctx.session.client_software_version = req.client_software_version
        out.supported_features = [
            SupportedFeatureKey(name=name, min_version=lo, max_version=hi)
            for name, (lo, hi) in emulation.supported_features_for(ctx.api_version).items()
        ]
        features = ctx.broker.features
        assert features is not None  # loaded before the listener opens
        levels = features.levels()
        out.finalized_features = [
            FinalizedFeatureKey(name=name, min_version_level=level, max_version_level=level) for name, level in levels.items()
        ]
        out.finalized_features_epoch = features.epoch if levels else -1
    return out

"""ApiVersions (key 18).

Version notes:
- v0-v4 served.  aiokafka sends only v0; kafka-python starts at v4, librdkafka at v3,
  kafkajs at v2, each falling back on UNSUPPORTED_VERSION.
- The response header is always v0, even for flexible versions (KIP-511; wire handles it).
- An unsupported version is answered by the dispatcher with a v0 body carrying
  UNSUPPORTED_VERSION and our ranges; kafka-python and librdkafka read key 18's entry
  from it to choose the version to retry with.
- v3+: client_software_name/version are accepted and not checked.
"""

from __future__ import annotations

from kbroker.registry import RequestContext, advertised_versions, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.api_versions_request import ApiVersionsRequest
from kbroker.wire.messages.api_versions_response import ApiVersion, ApiVersionsResponse


def _api_keys() -> list[ApiVersion]:
    return [ApiVersion(api_key=k, min_version=lo, max_version=hi) for k, lo, hi in advertised_versions()]


def unsupported_version_response() -> ApiVersionsResponse:
    return ApiVersionsResponse(error_code=ErrorCode.UNSUPPORTED_VERSION, api_keys=_api_keys())


@handler(ApiKey.API_VERSIONS, 0, 4)
async def handle_api_versions(ctx: RequestContext, req: ApiVersionsRequest) -> ApiVersionsResponse:
    return ApiVersionsResponse(error_code=ErrorCode.NONE, api_keys=_api_keys())

"""UpdateFeatures (key 57).

Version notes:
- v0-v2 served (Kafka 4.2's range; kafka-python's ``update_features`` sends v0, or v1 for
  validate_only).  kbroker is always the controller, so it answers itself.
- v0: allow_downgrade true means a safe downgrade; v1+ upgrade_type 1 upgrade, 2 safe
  downgrade, 3 unsafe downgrade; v1+ validate_only checks without changing anything.
- All or nothing, as Kafka's controller: the first refused update fails the request with
  INVALID_UPDATE_VERSION (a level outside the supported range, an unknown feature, a
  downgrade asked as an upgrade or the reverse, removing metadata.version, any
  metadata.version downgrade) or INVALID_REQUEST (a feature named twice).  The error is
  top level; v0-1 also repeat it in every feature's result (v2 has no results).
- The supported ranges are the emulated release's, capped to what kbroker implements
  (``kbroker.emulation``): group.version stops at 0 while
  ConsumerGroupHeartbeat is not served.  Kafka's feature dependencies (e.g. a minimum
  metadata.version for group.version 1) are not checked.
- A change is durable (``kbroker.features``) and raises the finalized epoch that
  ApiVersions v3+ reports.
"""

from __future__ import annotations

from kbroker.features import SAFE_DOWNGRADE, UPGRADE, FeatureUpdate, UpdateRefused
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.update_features_request import UpdateFeaturesRequest
from kbroker.wire.messages.update_features_response import (
    UpdatableFeatureResult,
    UpdateFeaturesResponse,
)


@handler(ApiKey.UPDATE_FEATURES, 0, 2)
async def handle_update_features(ctx: RequestContext, req: UpdateFeaturesRequest) -> UpdateFeaturesResponse:
    updates = [
        FeatureUpdate(
            feature=u.feature,
            max_version_level=u.max_version_level,
            upgrade_type=u.upgrade_type if ctx.api_version >= 1 else (SAFE_DOWNGRADE if u.allow_downgrade else UPGRADE),
        )
        for u in req.feature_updates
    ]
    features = ctx.broker.features
    assert features is not None  # loaded before the listener opens
    code, message = ErrorCode.NONE, None
    try:
        features.update(updates, validate_only=ctx.api_version >= 1 and req.validate_only)
    except UpdateRefused as refused:
        code, message = refused.code, refused.message
    out = UpdateFeaturesResponse(error_code=code, error_message=message)
    if ctx.api_version < 2:
        out.results = [UpdatableFeatureResult(feature=u.feature, error_code=code, error_message=message) for u in updates]
    return out

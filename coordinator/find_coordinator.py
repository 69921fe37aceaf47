"""FindCoordinator for a single-node cluster: every group and transactional id maps here.

Version notes: v0 has only a key (a group); v1-3 add KeyType and ErrorMessage; v4+ batch
keys in CoordinatorKeys and answer in Coordinators (KIP-699); v6 adds share keys (type 2),
which this broker does not serve (INVALID_REQUEST, as Kafka does without share groups).
"""

from __future__ import annotations

from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.find_coordinator_request import FindCoordinatorRequest
from kbroker.wire.messages.find_coordinator_response import Coordinator, FindCoordinatorResponse

__all__ = ["GROUP_KEY_TYPE", "TRANSACTION_KEY_TYPE", "find_coordinator"]

GROUP_KEY_TYPE = 0
TRANSACTION_KEY_TYPE = 1


def _error_for(key_type: int, unavailable: bool) -> ErrorCode:
    if key_type not in (GROUP_KEY_TYPE, TRANSACTION_KEY_TYPE):
        return ErrorCode.INVALID_REQUEST
    if unavailable:
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    return ErrorCode.NONE


def find_coordinator(
    request: FindCoordinatorRequest,
    *,
    api_version: int,
    node_id: int,
    host: str,
    port: int,
    unavailable: bool = False,
) -> FindCoordinatorResponse:
    """Answer with this node; ``unavailable`` (e.g. still loading ``__consumer_offsets``)
    answers COORDINATOR_NOT_AVAILABLE so clients retry."""
    key_type = request.key_type if api_version >= 1 else GROUP_KEY_TYPE
    if api_version >= 4:
        response = FindCoordinatorResponse()
        for key in request.coordinator_keys:
            code = _error_for(key_type, unavailable)
            ok = code is ErrorCode.NONE
            response.coordinators.append(
                Coordinator(
                    key=key,
                    node_id=node_id if ok else -1,
                    host=host if ok else "",
                    port=port if ok else -1,
                    error_code=code,
                    error_message=None if ok else code.name,
                )
            )
        return response
    code = _error_for(key_type, unavailable)
    ok = code is ErrorCode.NONE
    return FindCoordinatorResponse(
        error_code=code,
        error_message=None if ok or api_version < 1 else code.name,
        node_id=node_id if ok else -1,
        host=host if ok else "",
        port=port if ok else -1,
    )

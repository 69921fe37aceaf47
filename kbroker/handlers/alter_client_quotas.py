"""AlterClientQuotas (key 49).

Version notes:
- v0-v1 served (Kafka 4's range; v1 is flexible, nothing else changed).
- Needs ALTER_CONFIGS on the CLUSTER: else every entry gets CLUSTER_AUTHORIZATION_FAILED.
- Each entry is checked and applied on its own, as Kafka's controller does
  (``ClientQuotaControlManager``); see ``kbroker.quotas.model`` for the checks.  An entity type
  listed twice within one entity is collapsed, the last name winning (Kafka reads the
  components into a map).  A key listed twice for one entity fails that entity
  (INVALID_REQUEST, nothing of it applied).  An entity listed twice: the later entry answers
  INVALID_REQUEST "Ignoring duplicate entity" and the entity's one response entry carries
  that error, while the first entry's changes are applied (Kafka's controller does the same).
- ``remove`` drops the key (its value is ignored); removing a key that is not set is not an
  error.  An entity left with no key no longer exists.
- ``validate_only``: every check runs and the answers are the same, nothing is changed.
- Changes are durable (``kbroker-client-quotas.json`` in the data dir) before the answer,
  and take effect on the next request of every client.
- Kafka also accepts an ``ip`` entity's host *name* it can resolve; kbroker accepts IP
  literals only (it looks no names up).  ``ip`` quotas (``connection_creation_rate``) and
  ``controller_mutation_rate`` are stored and described but not enforced.
"""

from __future__ import annotations

from kbroker.acl.check import CLUSTER, allowed
from kbroker.acl.model import AclOperation
from kbroker.quotas.model import (
    QuotaEntity,
    QuotaProblem,
    check_entity,
    check_value,
    describe_entity,
    entity_of,
)
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.alter_client_quotas_request import AlterClientQuotasRequest
from kbroker.wire.messages.alter_client_quotas_request import EntryData as RequestEntry
from kbroker.wire.messages.alter_client_quotas_response import (
    AlterClientQuotasResponse,
    EntityData,
    EntryData,
)


@handler(ApiKey.ALTER_CLIENT_QUOTAS, 0, 1)
async def handle_alter_client_quotas(
    ctx: RequestContext, req: AlterClientQuotasRequest
) -> AlterClientQuotasResponse:
    denied = not allowed(ctx, AclOperation.ALTER_CONFIGS, CLUSTER)
    results: dict[QuotaEntity, tuple[ErrorCode, str | None]] = {}
    changes: dict[QuotaEntity, dict[str, float | None]] = {}
    for entry in req.entries:
        pairs = list({e.entity_type: e.entity_name for e in entry.entity}.items())
        entity = entity_of(pairs)
        if denied:
            results[entity] = (
                ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                "Cluster authorization failed.",
            )
            continue
        if entity in results:
            results[entity] = (
                ErrorCode.INVALID_REQUEST,
                f"Ignoring duplicate entity {describe_entity(entity)}",
            )
            continue
        try:
            changes[entity] = _checked_ops(entry, pairs, entity)
            results[entity] = (ErrorCode.NONE, None)
        except QuotaProblem as problem:
            results[entity] = (problem.code, problem.message)
    quotas = ctx.broker.quotas
    assert quotas is not None
    if changes and not req.validate_only:
        quotas.alter(changes.items())
    return AlterClientQuotasResponse(
        entries=[
            EntryData(
                error_code=code,
                error_message=message,
                entity=[EntityData(entity_type=kind, entity_name=name) for kind, name in entity],
            )
            for entity, (code, message) in results.items()
        ]
    )


def _checked_ops(
    entry: RequestEntry, pairs: list[tuple[str, str | None]], entity: QuotaEntity
) -> dict[str, float | None]:
    """The entry's changes (None: remove), or QuotaProblem as Kafka refuses them."""
    ops: dict[str, float | None] = {}
    for op in entry.ops:
        if op.key in ops:
            raise QuotaProblem(
                ErrorCode.INVALID_REQUEST,
                f"Duplicate quota key {op.key} not updating quota for this entity {describe_entity(entity)}",
            )
        ops[op.key] = None if op.remove else op.value
    keys = check_entity(pairs)
    for key, value in ops.items():
        if value is not None:
            check_value(keys, key, value)
    return ops

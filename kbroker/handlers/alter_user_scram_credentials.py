"""AlterUserScramCredentials (key 51).

Version notes:
- v0 (the only version; flexible) served.  Upsertions carry the client-salted password
  (salt, iterations, SaltedPassword); the broker keeps StoredKey/ServerKey derived from it
  (kbroker.security.scram), durable in the data dir before the answer is sent.
- Per user, as Kafka's ScramControlManager: an empty name or iterations outside 4096-16384
  or a SaltedPassword of the wrong length is UNACCEPTABLE_CREDENTIAL; an unknown mechanism
  UNSUPPORTED_SASL_MECHANISM; the same user and mechanism twice DUPLICATE_RESOURCE;
  deleting a missing credential RESOURCE_NOT_FOUND.  A user with an error keeps all its
  credentials unchanged; the other users' changes apply.
- ACLs: ALTER on the cluster, else every user's result is CLUSTER_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from kbroker.acl.check import CLUSTER, allowed
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.security.scram import MECHANISM_NAMES, MECHANISMS, ScramCredential, check_iterations
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.alter_user_scram_credentials_request import (
    AlterUserScramCredentialsRequest,
)
from kbroker.wire.messages.alter_user_scram_credentials_response import (
    AlterUserScramCredentialsResponse,
    AlterUserScramCredentialsResult,
)


def _check(ctx: RequestContext, req: AlterUserScramCredentialsRequest, counts: Counter[tuple[str, int]]) -> dict[str, tuple[ErrorCode, str]]:
    """The first error of each user that has one."""
    store = ctx.broker.scram_credentials
    errors: dict[str, tuple[ErrorCode, str]] = {}
    changes = [(d.name, d.mechanism, None) for d in req.deletions] + [(u.name, u.mechanism, u) for u in req.upsertions]
    for name, code, upsertion in changes:
        if name in errors:
            continue
        mechanism = MECHANISM_NAMES.get(code)
        if not name:
            errors[name] = (ErrorCode.UNACCEPTABLE_CREDENTIAL, "Username must not be empty")
        elif mechanism is None:
            errors[name] = (ErrorCode.UNSUPPORTED_SASL_MECHANISM, f"Unknown SCRAM mechanism {code}")
        elif counts[(name, code)] > 1:
            errors[name] = (ErrorCode.DUPLICATE_RESOURCE, "A user credential cannot be altered twice in the same request")
        elif upsertion is None:
            if store.get(name, mechanism) is None:
                errors[name] = (ErrorCode.RESOURCE_NOT_FOUND, "Attempt to delete a user credential that does not exist")
        else:
            problem = check_iterations(upsertion.iterations)
            if problem is not None:
                errors[name] = (ErrorCode.UNACCEPTABLE_CREDENTIAL, problem)
            elif not upsertion.salt:
                errors[name] = (ErrorCode.UNACCEPTABLE_CREDENTIAL, "Salt must not be empty")
            elif len(upsertion.salted_password) != hashlib.new(MECHANISMS[mechanism][1]).digest_size:
                errors[name] = (ErrorCode.UNACCEPTABLE_CREDENTIAL, "Salted password has the wrong length for the mechanism")
    return errors


@handler(ApiKey.ALTER_USER_SCRAM_CREDENTIALS, 0, 0)
async def handle_alter_user_scram_credentials(
    ctx: RequestContext, req: AlterUserScramCredentialsRequest
) -> AlterUserScramCredentialsResponse:
    if not allowed(ctx, AclOperation.ALTER, CLUSTER):
        users = dict.fromkeys([d.name for d in req.deletions] + [u.name for u in req.upsertions])
        denied = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
        return AlterUserScramCredentialsResponse(
            results=[AlterUserScramCredentialsResult(user=name, error_code=denied, error_message=None) for name in users]
        )
    store = ctx.broker.scram_credentials
    counts = Counter([(d.name, d.mechanism) for d in req.deletions] + [(u.name, u.mechanism) for u in req.upsertions])
    errors = _check(ctx, req, counts)
    for deletion in req.deletions:
        if deletion.name not in errors:
            store.delete(deletion.name, MECHANISM_NAMES[deletion.mechanism])
    for upsertion in req.upsertions:
        if upsertion.name not in errors:
            mechanism = MECHANISM_NAMES[upsertion.mechanism]
            credential = ScramCredential.from_salted_password(mechanism, upsertion.salted_password, upsertion.salt, upsertion.iterations)
            store.upsert(upsertion.name, mechanism, credential)
    if len(errors) < len({name for name, _ in counts}):
        store.save()
    users = dict.fromkeys([d.name for d in req.deletions] + [u.name for u in req.upsertions])
    results = []
    for name in users:
        code, message = errors.get(name, (ErrorCode.NONE, None))
        results.append(AlterUserScramCredentialsResult(user=name, error_code=code, error_message=message))
    return AlterUserScramCredentialsResponse(results=results)

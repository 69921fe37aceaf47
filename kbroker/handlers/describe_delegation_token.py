"""DescribeDelegationToken (key 41).

Version notes:
- v1-3 served (Kafka 4 removed v0); v2 is the flexible form; v3 (KIP-373) answers each
  token's requester.
- owners null: every token; empty: none; else the tokens those principals own.  Of those,
  a requester sees the ones it owns, requested or may renew, those it has DESCRIBE on
  (DELEGATION_TOKEN resource, the token id), and those of owners it has DESCRIBE_TOKENS on
  (USER resource), as Kafka.  The same refusals as CreateDelegationToken come first.
"""

from __future__ import annotations

from kbroker.acl.check import allowed
from kbroker.acl.model import AclOperation, ResourceType
from kbroker.handlers._delegation import refusal, split, store
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.describe_delegation_token_request import DescribeDelegationTokenRequest
from kbroker.wire.messages.describe_delegation_token_response import (
    DescribedDelegationToken,
    DescribedDelegationTokenRenewer,
    DescribeDelegationTokenResponse,
)


@handler(ApiKey.DESCRIBE_DELEGATION_TOKEN, 1, 3)
async def handle_describe_delegation_token(ctx: RequestContext, req: DescribeDelegationTokenRequest) -> DescribeDelegationTokenResponse:
    error = refusal(ctx)
    if error is not None:
        return DescribeDelegationTokenResponse(error_code=error)
    tokens = store(ctx)
    tokens.purge(ctx.now_ms)
    owners = None if req.owners is None else {f"{o.principal_type}:{o.principal_name}" for o in req.owners}
    me = ctx.session.principal
    out = []
    for token in sorted(tokens.tokens.values(), key=lambda t: (t.issue_ms, t.token_id)):
        if owners is not None and token.owner not in owners:
            continue
        if not (
            token.owner_or_renewer(me)
            or allowed(ctx, AclOperation.DESCRIBE, ResourceType.DELEGATION_TOKEN, token.token_id)
            or allowed(ctx, AclOperation.DESCRIBE_TOKENS, ResourceType.USER, token.owner)
        ):
            continue
        (kind, name), (rkind, rname) = split(token.owner), split(token.requester)
        if ctx.api_version < 3:  # the requester is a v3 field
            rkind = rname = ""
        out.append(
            DescribedDelegationToken(
                principal_type=kind, principal_name=name, token_requester_principal_type=rkind, token_requester_principal_name=rname,
                issue_timestamp=token.issue_ms, expiry_timestamp=token.expiry_ms, max_timestamp=token.max_ms,
                token_id=token.token_id, hmac=token.hmac,
                renewers=[DescribedDelegationTokenRenewer(principal_type=split(r)[0], principal_name=split(r)[1]) for r in token.renewers],
            )
        )
    return DescribeDelegationTokenResponse(tokens=out)

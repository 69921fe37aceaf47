"""The authorization decision, from an index of the ACLs (Kafka's StandardAuthorizer).

Theory of operation
-------------------
Kafka's rule for one action (principal P from host H wants operation O on resource R of
type T named N):

1. P in ``super.users``: allowed.
2. The ACLs that *apply to the resource* are those of type T whose pattern covers N: LITERAL
   N, LITERAL ``*``, and every PREFIXED pattern that N starts with.
3. Of these, an ACL *matches* when its principal is P or ``User:*``, its host is H or ``*``,
   and its operation is ALL or O, or (ALLOW only) implies O: READ/WRITE/DELETE/ALTER imply
   DESCRIBE, ALTER_CONFIGS implies DESCRIBE_CONFIGS.
4. Any matching DENY: denied.  Else any matching ALLOW: allowed.  Else, if no ACL applies to
   the resource at all, ``allow.everyone.if.no.acl.found`` decides; otherwise denied.

The index makes step 2 a few look-ups instead of a scan: per resource type, a dict of
literal names (N and ``*``), and a dict of prefixes beside the sorted list of those prefixes.
The prefixes of N in the list are found by bisection: the greatest entry P <= N is either a
prefix of N (a hit; continue below P) or not, and then every prefix of N in the list is also
a prefix of the common prefix of P and N (any longer one would sort between P and N), so the
search continues from that.  Each step is a C-speed bisection and most names take one or
two.  Another dict, per (resource type, principal), serves ``authorize_by_resource_type`` (Kafka's default
``Authorizer.authorizeByResourceType``, used for idempotent producers).

A request path asks the same question again and again (this principal, host, operation and
resource), so answers are memoized per question (at most ``MEMO_MAX_ENTRIES``, emptied when
full).  Every change updates the index and empties the memo before the call returns, and
nothing derived from the ACLs is kept anywhere else, so no answer can be stale: the next
request on any connection is decided from the new index.

Changes are written to the :class:`~kbroker.acl.store.AclStore` first, then applied: a
failed write leaves both unchanged.  Everything runs on the event-loop thread.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from os.path import commonprefix
from typing import TYPE_CHECKING

from kbroker.acl.model import (
    IMPLIES_DESCRIBE,
    IMPLIES_DESCRIBE_CONFIGS,
    WILDCARD,
    WILDCARD_PRINCIPAL,
    AclBinding,
    AclFilter,
    AclOperation,
    PatternType,
    PermissionType,
)
from kbroker.acl.store import AclStore
from kbroker.config import STANDARD_AUTHORIZER

if TYPE_CHECKING:
    from kbroker.config import BrokerConfig

# Bound of the decision memo (entries); a full memo is emptied, not evicted piecemeal.
MEMO_MAX_ENTRIES = 65536
_bisect_right = bisect.bisect_right
_ALL = AclOperation.ALL
_ALLOW = PermissionType.ALLOW
_DESCRIBE = AclOperation.DESCRIBE
_DESCRIBE_CONFIGS = AclOperation.DESCRIBE_CONFIGS
# Kafka's authorizeByResourceType first asks about this made-up literal name, so that super
# users and allow.everyone.if.no.acl.found are honoured.
_HARDCODED_NAME = "hardcode"


def acl_result(acl: AclBinding, principal: str, host: str, operation: int) -> bool | None:
    """True (ALLOW), False (DENY) or None (does not match) for one ACL that applies to the
    resource; Kafka's StandardAuthorizerData.findResult."""
    if acl.principal != principal and acl.principal != WILDCARD_PRINCIPAL:
        return None
    if acl.host != WILDCARD and acl.host != host:
        return None
    acl_op = acl.operation
    allow = acl.permission_type == _ALLOW
    if acl_op != _ALL and acl_op != operation:
        if not allow:
            return None
        if operation == _DESCRIBE:
            if acl_op not in IMPLIES_DESCRIBE:
                return None
        elif operation == _DESCRIBE_CONFIGS:
            if acl_op not in IMPLIES_DESCRIBE_CONFIGS:
                return None
        else:
            return None
    return allow


class _TypeIndex:
    """The ACLs of one resource type."""

    __slots__ = ("literal", "prefixed", "prefixes", "by_principal")

    def __init__(self) -> None:
        self.literal: dict[str, list[AclBinding]] = {}
        self.prefixed: dict[str, list[AclBinding]] = {}
        self.prefixes: list[str] = []  # the keys of ``prefixed``, sorted
        self.by_principal: dict[str, list[AclBinding]] = {}

    def add(self, acl: AclBinding) -> None:
        if acl.pattern_type == PatternType.PREFIXED:
            if acl.resource_name not in self.prefixed:
                bisect.insort(self.prefixes, acl.resource_name)
            self.prefixed.setdefault(acl.resource_name, []).append(acl)
        else:
            self.literal.setdefault(acl.resource_name, []).append(acl)
        self.by_principal.setdefault(acl.principal, []).append(acl)

    def remove(self, acl: AclBinding) -> None:
        if acl.pattern_type == PatternType.PREFIXED:
            _discard(self.prefixed, acl.resource_name, acl)
            if acl.resource_name not in self.prefixed:
                del self.prefixes[bisect.bisect_left(self.prefixes, acl.resource_name)]
        else:
            _discard(self.literal, acl.resource_name, acl)
        _discard(self.by_principal, acl.principal, acl)


def _discard(index: dict[str, list[AclBinding]], key: str, acl: AclBinding) -> None:
    entries = index[key]
    entries.remove(acl)
    if not entries:
        del index[key]


class StandardAuthorizer:
    def __init__(self, super_users: Iterable[str], allow_everyone_if_no_acl_found: bool, store: AclStore | None = None) -> None:
        self.super_users = frozenset(super_users)
        self.allow_everyone_if_no_acl_found = allow_everyone_if_no_acl_found
        self._store = store
        self._acls: set[AclBinding] = set()
        self._types: dict[int, _TypeIndex] = {}
        self._memo: dict[tuple[str, str, int, int, str], bool] = {}
        if store is not None:
            for acl in store.load():
                self._add(acl)

    # -- the decision ------------------------------------------------------------------------

    def authorize(self, principal: str, host: str, operation: int, resource_type: int, name: str) -> bool:
        key = (principal, host, operation, resource_type, name)
        memo = self._memo
        answer = memo.get(key)
        if answer is None:
            answer = self._decide(principal, host, operation, resource_type, name)
            if len(memo) >= MEMO_MAX_ENTRIES:
                memo.clear()
            memo[key] = answer
        return answer

    def _decide(self, principal: str, host: str, operation: int, resource_type: int, name: str) -> bool:
        if principal in self.super_users:
            return True
        index = self._types.get(resource_type)
        if index is None:
            return self.allow_everyone_if_no_acl_found
        found = False
        allowed = False
        for acls in self._applying(index, name):
            found = True
            for acl in acls:
                result = acl_result(acl, principal, host, operation)
                if result is False:
                    return False
                if result:
                    allowed = True
        return allowed or (not found and self.allow_everyone_if_no_acl_found)

    @staticmethod
    def _applying(index: _TypeIndex, name: str) -> list[list[AclBinding]]:
        """The ACL lists (never empty) whose pattern covers ``name``."""
        out: list[list[AclBinding]] = []
        literal = index.literal
        if literal:
            hit = literal.get(name)
            if hit is not None:
                out.append(hit)
            if name != WILDCARD:
                hit = literal.get(WILDCARD)
                if hit is not None:
                    out.append(hit)
        prefixes = index.prefixes
        key = name
        while key and prefixes:
            i = _bisect_right(prefixes, key) - 1
            if i < 0:
                break
            found = prefixes[i]
            if key.startswith(found):
                out.append(index.prefixed[found])
                key = found[:-1]
            else:
                key = key[: len(commonprefix((found, key)))]
        return out

    def authorize_by_resource_type(self, principal: str, host: str, operation: int, resource_type: int) -> bool:
        """Kafka's Authorizer.authorizeByResourceType: allowed when some ALLOW ACL of this
        type matches the principal, host and operation and no DENY dominates it."""
        if self.authorize(principal, host, operation, resource_type, _HARDCODED_NAME):
            return True
        index = self._types.get(resource_type)
        if index is None:
            return False
        deny_literal: set[str] = set()
        deny_prefixed: set[str] = set()
        allow_literal: set[str] = set()
        allow_prefixed: set[str] = set()
        wildcard_allow = False
        candidates = index.by_principal.get(principal, []) + (
            index.by_principal.get(WILDCARD_PRINCIPAL, []) if principal != WILDCARD_PRINCIPAL else []
        )
        for acl in candidates:
            if acl.host != host and acl.host != WILDCARD:
                continue
            if acl.operation != operation and acl.operation != _ALL:
                continue
            literal = acl.pattern_type == PatternType.LITERAL
            if acl.permission_type == PermissionType.DENY:
                if literal and acl.resource_name == WILDCARD:
                    return False
                (deny_literal if literal else deny_prefixed).add(acl.resource_name)
            elif literal and acl.resource_name == WILDCARD:
                wildcard_allow = True  # decides only once no wildcard DENY turned up
            else:
                (allow_literal if literal else allow_prefixed).add(acl.resource_name)
        if wildcard_allow:
            return True
        for names, is_literal in ((allow_literal, True), (allow_prefixed, False)):
            for allowed_name in names:
                if is_literal and allowed_name in deny_literal:
                    continue
                if not any(allowed_name[:n] in deny_prefixed for n in range(1, len(allowed_name) + 1)):
                    return True
        return False

    def authorized_operations(self, principal: str, host: str, resource_type: int, name: str, operations: Iterable[int]) -> int:
        """The bit set (1 << operation) of ``operations`` allowed on the resource."""
        bits = 0
        for op in operations:
            if self.authorize(principal, host, op, resource_type, name):
                bits |= 1 << op
        return bits

    # -- the ACL set -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._acls)

    def describe(self, acl_filter: AclFilter) -> list[AclBinding]:
        return sorted((acl for acl in self._acls if acl_filter.matches(acl)), key=AclBinding.sort_key)

    def create(self, acls: Iterable[AclBinding]) -> None:
        """Add ACLs (already validated); an existing one is left as is, as Kafka does.
        Raises OSError, changing nothing, when the durable copy cannot be written."""
        new = [acl for acl in dict.fromkeys(acls) if acl not in self._acls]
        if not new:
            return
        self._save(self._acls.union(new))
        for acl in new:
            self._add(acl)

    def delete(self, filters: list[AclFilter]) -> list[list[AclBinding]]:
        """Remove the ACLs each filter matches (an ACL goes to the first filter matching
        it); raises OSError, changing nothing, when the durable copy cannot be written."""
        removed: list[list[AclBinding]] = []
        taken: set[AclBinding] = set()
        for acl_filter in filters:
            hits = [acl for acl in self.describe(acl_filter) if acl not in taken]
            taken.update(hits)
            removed.append(hits)
        if taken:
            self._save(self._acls - taken)
            for acl in taken:
                self._remove(acl)
        return removed

    def _save(self, acls: set[AclBinding]) -> None:
        if self._store is not None:
            self._store.save(acls)

    def _add(self, acl: AclBinding) -> None:
        if acl in self._acls:
            return
        self._memo.clear()
        self._acls.add(acl)
        index = self._types.get(acl.resource_type)
        if index is None:
            index = self._types[acl.resource_type] = _TypeIndex()
        index.add(acl)

    def _remove(self, acl: AclBinding) -> None:
        self._memo.clear()
        self._acls.discard(acl)
        index = self._types[acl.resource_type]
        index.remove(acl)
        if not index.by_principal:
            del self._types[acl.resource_type]


def parse_super_users(value: str | None) -> frozenset[str]:
    """``super.users``: principals separated by ';' (Kafka's format, e.g. ``User:admin;User:bob``)."""
    return frozenset(p.strip() for p in (value or "").split(";") if p.strip())


def authorizer_from_config(config: BrokerConfig) -> StandardAuthorizer | None:
    """The authorizer ``authorizer.class.name`` asks for (None when unset), with the ACLs
    of the data dir loaded (AclStoreError if the file is damaged)."""
    if config.get("authorizer.class.name") != STANDARD_AUTHORIZER:
        return None
    return StandardAuthorizer(
        parse_super_users(config.get("super.users")),
        config.get_bool("allow.everyone.if.no.acl.found"),
        AclStore(config.data_dir),
    )

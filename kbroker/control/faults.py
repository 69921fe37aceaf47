"""The fault-rule engine: rules that make chosen requests fail, wait, or lose their connection.

Theory of operation
-------------------
A rule (see :func:`parse_rule` for its fields) has *matchers* (api, topic, partition, node,
client_id), *gates* (after, every, probability, count) and *effects* (error, delay_ms,
close_connection, blackhole, throttle_time_ms).  Rules live in :class:`FaultEngine`, one per
broker, added and removed through the control API (``kbroker.control``) or the in-process
test broker (``kbroker.testing``).

The hot path pays one attribute check: ``Broker.dispatch`` calls :meth:`FaultEngine.handle`
instead of the handler only while ``broker.faults_active`` is true, i.e. while some
request-level rule can still fire; the Produce handler consults :meth:`FaultEngine.after_append`
only while ``broker.append_faults_active`` is true.  With no rule (the normal case) nothing
else runs.

For each request, every rule whose matchers accept it is a *candidate*; its gates decide
whether it *fires* (in this order: the first ``after`` candidates are let through, then only
every ``every``-th, none once ``count`` is used up, and each with ``probability``).  A rule
counts ``hits`` when it fires and ``remaining`` goes down by one; a used-up rule stays listed
until deleted.  Effects of all rules that fire are combined, applied in this order: the
delays (summed), then blackhole (the connection takes requests and never answers again), then
close_connection (the request is dropped unanswered), then the handler runs with the error
placed as below, then throttle_time_ms (the largest) goes into the answer.

Where an error goes (:mod:`kbroker.control.placement`): as Kafka would place it, in the
answer's per-partition entries (or per-topic entries, or request-wide error code) that the
rule's topic/partition matchers select.  Produce, OffsetCommit, TxnOffsetCommit and
DeleteRecords never apply what they fail: the matching partitions are taken out of the
request before the handler runs and answered with the error.  Read-only APIs run and the
error is written over the selected entries.  Other APIs fail as a whole before their
handler runs (a request-wide error code), or, when the answer has none, run and carry the
error in their entries (as a timed-out controller operation can).  An ``after_append`` rule
(Produce only) fails a partition *after* its batch was stored, exactly where Kafka answers
NOT_ENOUGH_REPLICAS_AFTER_APPEND: a retried batch is then a duplicate for idempotence to absorb.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kbroker.connection import Blackhole, CloseConnection
from kbroker.errors import KafkaError
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode

if TYPE_CHECKING:
    from kbroker.registry import Handler, RequestContext
    from kbroker.server import Broker

# Bounds on what a rule may ask for (a rule is test input, but still input).
MAX_FAULT_RULES = 1000
MAX_DELAY_MS = 3_600_000
MAX_THROTTLE_TIME_MS = 2_147_483_647
MAX_LIST_ITEMS = 1000

MATCHER_FIELDS = ("api", "topic", "partition", "node", "client_id")
GATE_FIELDS = ("after", "every", "probability", "count", "seed")
EFFECT_FIELDS = (
    "error",
    "error_message",
    "delay_ms",
    "close_connection",
    "blackhole",
    "throttle_time_ms",
    "after_append",
)
RULE_FIELDS = frozenset(MATCHER_FIELDS + GATE_FIELDS + EFFECT_FIELDS)


class FaultRuleError(ValueError):
    """A rule that cannot be accepted; the message says why (the control API's 400)."""


def _api_names() -> dict[str, int]:
    """Every accepted spelling of an API name: Kafka's ("Produce", "OffsetForLeaderEpoch")
    and the enum's ("PRODUCE"), case-insensitively, as lower case."""
    names: dict[str, int] = {}
    for key in ApiKey:
        names[key.name.lower()] = int(key)
        names[key.name.replace("_", "").lower()] = int(key)
    return names


_API_NAMES = _api_names()


def api_name(key: int) -> str:
    """Kafka's name of an API key ("OffsetForLeaderEpoch")."""
    return "".join(part.capitalize() for part in ApiKey(key).name.split("_"))


def _listed(rule: dict[str, Any], name: str) -> list[Any] | None:
    value = rule.get(name)
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    if not items or len(items) > MAX_LIST_ITEMS:
        raise FaultRuleError(f"{name}: give one value or a list of 1 to {MAX_LIST_ITEMS}")
    return items


def _int(rule: dict[str, Any], name: str, lo: int, hi: int, default: int) -> int:
    value = rule.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise FaultRuleError(f"{name}: an integer from {lo} to {hi} (got {value!r})")
    return value


def _bool(rule: dict[str, Any], name: str) -> bool:
    value = rule.get(name, False)
    if not isinstance(value, bool):
        raise FaultRuleError(f"{name}: true or false (got {value!r})")
    return value


def _api_keys(rule: dict[str, Any]) -> frozenset[int] | None:
    items = _listed(rule, "api")
    if items is None or "*" in items:
        return None
    keys = set()
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            if item not in ApiKey._value2member_map_:
                raise FaultRuleError(f"api: unknown API key {item}")
            keys.add(item)
        elif isinstance(item, str) and item.replace("_", "").lower() in _API_NAMES:
            keys.add(_API_NAMES[item.replace("_", "").lower()])
        else:
            raise FaultRuleError(
                f'api: unknown API {item!r} (a name such as "Produce", a key, or "*")'
            )
    return frozenset(keys)


def _error_code(rule: dict[str, Any]) -> ErrorCode | None:
    value = rule.get("error")
    if value is None:
        return None
    code: ErrorCode | None = None
    if isinstance(value, str):
        code = ErrorCode.__members__.get(value.upper())
    elif isinstance(value, int) and not isinstance(value, bool):
        code = ErrorCode._value2member_map_.get(value)  # type: ignore[assignment]
    if code is None or code == ErrorCode.NONE:
        raise FaultRuleError(
            f'error: unknown Kafka error {value!r} (a name such as "NOT_LEADER_OR_FOLLOWER", or its code)'
        )
    return code


def _strings(rule: dict[str, Any], name: str) -> frozenset[str] | None:
    items = _listed(rule, name)
    if items is None:
        return None
    if not all(isinstance(x, str) for x in items):
        raise FaultRuleError(f"{name}: a string or a list of strings")
    return frozenset(items)


def _ints(rule: dict[str, Any], name: str) -> frozenset[int] | None:
    items = _listed(rule, name)
    if items is None:
        return None
    if not all(
        isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 2_147_483_647 for x in items
    ):
        raise FaultRuleError(f"{name}: a non-negative integer or a list of them")
    return frozenset(items)


@dataclass(slots=True, eq=False)
class FaultRule:
    """One parsed rule and its counters."""

    id: int
    source: dict[str, Any]  # the rule as given (what GET answers as "rule")
    api_keys: frozenset[int] | None
    topics: frozenset[str] | None
    partitions: frozenset[int] | None
    nodes: frozenset[int] | None
    client_ids: frozenset[str] | None
    after: int
    every: int
    probability: float
    remaining: int | None  # None: no count, fires as often as it matches
    rng: random.Random
    error: ErrorCode | None
    error_message: str | None
    delay_ms: int
    close_connection: bool
    blackhole: bool
    throttle_time_ms: int
    after_append: bool
    seen: int = 0
    hits: int = 0

    @property
    def scoped(self) -> bool:
        """The rule names topics or partitions: it selects entries, not whole requests."""
        return self.topics is not None or self.partitions is not None

    @property
    def used_up(self) -> bool:
        return self.remaining == 0

    def accepts(self, ctx: RequestContext) -> bool:
        """The matchers that need no look inside the request."""
        return (
            (self.api_keys is None or ctx.api_key in self.api_keys)
            and (self.nodes is None or ctx.node_id in self.nodes)
            and (self.client_ids is None or ctx.client_id in self.client_ids)
        )

    def selects(self, topic: str | None, partition: int | None) -> bool:
        return (self.topics is None or topic in self.topics) and (
            self.partitions is None or partition in self.partitions
        )

    def fires(self) -> bool:
        """A candidate came: the gates decide (and count)."""
        if self.remaining == 0:
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        if self.every > 1 and (self.seen - self.after) % self.every:
            return False
        if self.probability < 1.0 and self.rng.random() >= self.probability:
            return False
        self.hits += 1
        if self.remaining is not None:
            self.remaining -= 1
        return True

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": dict(self.source),
            "hits": self.hits,
            "remaining": self.remaining,
        }


def parse_rule(rule_id: int, rule: Any) -> FaultRule:
    """Validate a rule given as JSON; raises FaultRuleError saying what is wrong.

    Matchers (all optional; a missing one matches everything): ``api`` (a Kafka API name,
    its key, or "*"), ``topic``, ``partition``, ``node``, ``client_id`` (each a value or a
    list).  Gates: ``after`` (let the first N candidates through), ``every`` (then fire on
    every Nth), ``probability`` (0..1), ``seed`` (the probability's RNG, for repeatable
    tests), ``count`` (fire at most N times).  Effects (at least one): ``error`` (a Kafka
    error name or code) with optional ``error_message``, ``delay_ms``, ``close_connection``,
    ``blackhole``, ``throttle_time_ms``; ``after_append`` (Produce with an error only) fails
    partitions after storing them.
    """
    if not isinstance(rule, dict):
        raise FaultRuleError("a rule is a JSON object")
    unknown = sorted(set(rule) - RULE_FIELDS)
    if unknown:
        raise FaultRuleError(
            f"unknown rule field(s): {', '.join(unknown)} (known: {', '.join(sorted(RULE_FIELDS))})"
        )
    probability = rule.get("probability", 1.0)
    if (
        isinstance(probability, bool)
        or not isinstance(probability, int | float)
        or not 0.0 <= probability <= 1.0
    ):
        raise FaultRuleError(f"probability: a number from 0 to 1 (got {probability!r})")
    seed = rule.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise FaultRuleError("seed: an integer")
    count = rule.get("count")
    if count is not None:
        count = _int(rule, "count", 0, 2_147_483_647, 0)
    message = rule.get("error_message")
    if message is not None and not isinstance(message, str):
        raise FaultRuleError("error_message: a string")
    parsed = FaultRule(
        id=rule_id,
        source=dict(rule),
        api_keys=_api_keys(rule),
        topics=_strings(rule, "topic"),
        partitions=_ints(rule, "partition"),
        nodes=_ints(rule, "node"),
        client_ids=_strings(rule, "client_id"),
        after=_int(rule, "after", 0, 2_147_483_647, 0),
        every=_int(rule, "every", 1, 2_147_483_647, 1),
        probability=float(probability),
        remaining=count,
        rng=random.Random(seed),
        error=_error_code(rule),
        error_message=message,
        delay_ms=_int(rule, "delay_ms", 0, MAX_DELAY_MS, 0),
        close_connection=_bool(rule, "close_connection"),
        blackhole=_bool(rule, "blackhole"),
        throttle_time_ms=_int(rule, "throttle_time_ms", 0, MAX_THROTTLE_TIME_MS, 0),
        after_append=_bool(rule, "after_append"),
    )
    if message is not None and parsed.error is None:
        raise FaultRuleError("error_message needs an error")
    if not (
        parsed.error
        or parsed.delay_ms
        or parsed.close_connection
        or parsed.blackhole
        or parsed.throttle_time_ms
    ):
        raise FaultRuleError(
            "a rule needs an effect: error, delay_ms, close_connection, blackhole or throttle_time_ms"
        )
    if parsed.after_append:
        if parsed.api_keys != frozenset({ApiKey.PRODUCE}):
            raise FaultRuleError('after_append applies to "api": "Produce" only')
        if (
            parsed.error is None
            or parsed.delay_ms
            or parsed.close_connection
            or parsed.blackhole
            or parsed.throttle_time_ms
        ):
            raise FaultRuleError("after_append takes an error and no other effect")
    return parsed


@dataclass(slots=True)
class _Effects:
    delay_ms: int = 0
    blackhole: bool = False
    close_connection: bool = False
    error: ErrorCode | None = None
    error_message: str | None = None
    throttle_time_ms: int = 0
    # the rules with an error, for choosing the entries it goes to
    error_rules: list[FaultRule] = field(default_factory=list)


class FaultEngine:
    """A broker's fault rules (see the module docstring)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.rules: dict[int, FaultRule] = {}
        self._next_id = 1

    # -- administration -----------------------------------------------------------------

    def add(self, rule: Any) -> FaultRule:
        """Parse and add ``rule``; raises FaultRuleError."""
        if len(self.rules) >= MAX_FAULT_RULES:
            raise FaultRuleError(f"at most {MAX_FAULT_RULES} rules (delete some first)")
        parsed = parse_rule(self._next_id, rule)
        self._next_id += 1
        self.rules[parsed.id] = parsed
        self._refresh()
        return parsed

    def describe(self) -> list[dict[str, Any]]:
        return [r.describe() for r in self.rules.values()]

    def get(self, rule_id: int) -> FaultRule | None:
        return self.rules.get(rule_id)

    def clear(self, rule_id: int | None = None) -> bool:
        """Delete one rule (False if there is no such id) or, with None, every rule."""
        if rule_id is None:
            self.rules.clear()
        elif self.rules.pop(rule_id, None) is None:
            return False
        self._refresh()
        return True

    def _refresh(self) -> None:
        live = [r for r in self.rules.values() if not r.used_up]
        self.broker.faults_active = any(not r.after_append for r in live)
        self.broker.append_faults_active = any(r.after_append for r in live)

    # -- the request path ---------------------------------------------------------------

    def after_append(self, ctx: RequestContext, topic: str, partition: int) -> ErrorCode | None:
        """The error to answer a partition whose batch was just stored with, if a rule fires."""
        code: ErrorCode | None = None
        for rule in self.rules.values():
            if (
                rule.after_append
                and rule.accepts(ctx)
                and rule.selects(topic, partition)
                and rule.fires()
            ):
                code = code or rule.error
                if rule.used_up:
                    self._refresh()
        return code

    def _effects(self, ctx: RequestContext, request: Any) -> _Effects | None:
        from kbroker.control.placement import request_entries

        effects: _Effects | None = None
        entries: list[tuple[str | None, int | None]] | None = None
        for rule in list(self.rules.values()):
            if rule.after_append or rule.used_up or not rule.accepts(ctx):
                continue
            if rule.scoped:
                if entries is None:
                    entries = request_entries(ctx, request)
                if not any(rule.selects(t, p) for t, p in entries):
                    continue
            if not rule.fires():
                continue
            if rule.used_up:
                self._refresh()
            if effects is None:
                effects = _Effects()
            effects.delay_ms += rule.delay_ms
            effects.blackhole |= rule.blackhole
            effects.close_connection |= rule.close_connection
            effects.throttle_time_ms = max(effects.throttle_time_ms, rule.throttle_time_ms)
            if rule.error is not None:
                if effects.error is None:
                    effects.error, effects.error_message = rule.error, rule.error_message
                if rule.error == effects.error:
                    effects.error_rules.append(rule)
        return effects

    async def handle(self, handler: Handler, ctx: RequestContext, request: Any) -> Any:
        """Answer one request with the rules that fire applied (``Broker.dispatch`` calls
        this instead of the handler while a rule is active).  Raises CloseConnection,
        Blackhole, or KafkaError for a request-wide error."""
        effects = self._effects(ctx, request)
        if effects is None:
            return await handler.fn(ctx, request)
        if effects.delay_ms:
            await asyncio.sleep(effects.delay_ms / 1000)
        if effects.blackhole:
            raise Blackhole(f"blackholed by a fault rule ({api_name(ctx.api_key)})")
        if effects.close_connection:
            raise CloseConnection(f"closed by a fault rule ({api_name(ctx.api_key)})")
        if effects.error is None:
            response = await handler.fn(ctx, request)
        else:
            response = await self._answer_with_error(handler, ctx, request, effects)
        if (
            effects.throttle_time_ms
            and response is not None
            and hasattr(response, "throttle_time_ms")
        ):
            response.throttle_time_ms = max(response.throttle_time_ms, effects.throttle_time_ms)
        return response

    async def _answer_with_error(
        self, handler: Handler, ctx: RequestContext, request: Any, effects: _Effects
    ) -> Any:
        from kbroker.control import placement

        assert effects.error is not None
        code, message = effects.error, effects.error_message
        rules = effects.error_rules
        scoped = all(r.scoped for r in rules)

        def selects(topic: str | None, partition: int | None) -> bool:
            return any(r.selects(topic, partition) for r in rules)

        if ctx.api_key in placement.WITHHELD_APIS:
            kept, withheld = placement.withhold(ctx, request, selects)
            response = await handler.fn(ctx, kept)
            if response is not None:
                placement.answer_withheld(response, withheld, code, message)
            self._count_errors(ctx, code, len(withheld))
            return response
        if (
            not scoped
            and ctx.api_key not in placement.READ_ONLY_APIS
            and placement.has_request_error(handler.response_cls, ctx.api_version)
        ):
            raise KafkaError(code, message)
        response = await handler.fn(ctx, request)
        if response is not None:
            failed = placement.place_error(ctx, response, code, message, selects, whole=not scoped)
            self._count_errors(ctx, code, failed)
        return response

    def _count_errors(self, ctx: RequestContext, code: ErrorCode, partitions: int) -> None:
        """Count injected partition errors where the handlers count theirs (the errors
        metric counts per-partition errors of Produce and Fetch)."""
        if ctx.api_key in (ApiKey.PRODUCE, ApiKey.FETCH):
            for _ in range(partitions):
                self.broker.stats.error(ctx.api_key, code)

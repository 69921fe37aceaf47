"""The handler registry: which API keys and versions kbroker serves, and by what.

It is the single source of the ApiVersions answer: a key is advertised exactly when a
handler is registered for it, with the registered range.  Registering a key twice raises
at import time; a range beyond what the generated schemas can code raises too.

A handler may be registered from a version below the schema's minimum, to advertise it
and answer it with an error (Produce v0-2, as Kafka 4 does: KAFKA-18659).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wire.messages import REQUESTS, RESPONSES

if TYPE_CHECKING:
    from kbroker.server import Broker


@dataclass(slots=True)
class RequestContext:
    """What a handler knows about the request besides its body."""

    broker: Broker
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    peer: str
    now_ms: int


HandlerFn = Callable[[RequestContext, Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Handler:
    api_key: int
    min_version: int
    max_version: int
    fn: HandlerFn
    request_cls: type
    response_cls: type


HANDLERS: dict[int, Handler] = {}


def handler(api_key: int, min_version: int, max_version: int) -> Callable[[HandlerFn], HandlerFn]:
    """Register ``fn`` as the handler of ``api_key`` for versions min..max."""

    def register(fn: HandlerFn) -> HandlerFn:
        if api_key in HANDLERS:
            raise RuntimeError(f"API key {api_key} registered twice")
        request_cls: Any = REQUESTS[api_key]
        response_cls = RESPONSES[api_key]
        spec_max: int = request_cls.VALID_VERSIONS[1]
        if max_version > spec_max:
            raise RuntimeError(f"API key {api_key}: max {max_version} > schema max {spec_max}")
        HANDLERS[api_key] = Handler(api_key, min_version, max_version, fn, request_cls, response_cls)
        return fn

    return register


def advertised_versions() -> list[tuple[int, int, int]]:
    """(api_key, min_version, max_version) for ApiVersions, sorted by key."""
    return sorted((h.api_key, h.min_version, h.max_version) for h in HANDLERS.values())

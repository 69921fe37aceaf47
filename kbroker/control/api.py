"""The control API's dispatcher: ``/v1/...`` on the HTTP listener, routed to route tables.

Each module in :data:`ROUTE_MODULES` has ``ROUTES: list[tuple[str, str, RouteHandler]]``:
(method, path pattern, handler).  The pattern is a regular expression matched in full
against the path after ``/v1``, with named groups for its parameters
(``r"/faults/(?P<id>[0-9]+)"``).  A handler takes (broker, the groups as a dict, the parsed
JSON body or None) and returns (HTTP status, a JSON-able body); it may raise
:class:`ControlError` for a 4xx answer instead.

Answers are JSON.  Errors are ``{"error": "..."}``: 400 a body that is not JSON (or not
what the route takes), 404 a path no route has (or an id that does not exist), 405 a
method the path does not take (with ``Allow``), 413 a body above ``MAX_BODY_BYTES``.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from kbroker.http import HttpListener
    from kbroker.server import Broker

logger = logging.getLogger(__name__)

PREFIX = "/v1"
# The route tables served; adding a module is adding its name here.
ROUTE_MODULES: tuple[str, ...] = (
    "kbroker.control.faults_routes",
    "kbroker.control.cluster_routes",
)  # fmt: skip
# A control request is a small JSON document.
MAX_BODY_BYTES = 1024 * 1024
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD")

RouteHandler = Callable[["Broker", dict[str, str], Any], Awaitable[tuple[int, Any]]]


class ControlError(Exception):
    """A 4xx answer: ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body) + "\n",
        content_type="application/json",
        headers=headers,
    )


class ControlApi:
    """The compiled route tables of ``modules``, answering requests under ``/v1/``."""

    def __init__(self, broker: Broker, modules: tuple[str, ...] = ROUTE_MODULES) -> None:
        self.broker = broker
        self.routes: list[tuple[str, re.Pattern[str], RouteHandler]] = []
        for module in modules:
            table: list[tuple[str, str, RouteHandler]] = importlib.import_module(module).ROUTES
            for method, pattern, handler in table:
                self.routes.append((method.upper(), re.compile(pattern), handler))

    def install(self, http: HttpListener) -> None:
        http.add_prefix_route(PREFIX + "/", self.handle, METHODS)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path[len(PREFIX) :]
        allowed: list[str] = []
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            try:
                body = await self._body(request)
                status, answer = await handler(self.broker, match.groupdict(), body)
            except ControlError as exc:
                return json_response(exc.status, {"error": exc.message})
            return json_response(status, answer)
        if allowed:
            return json_response(
                405,
                {"error": f"method {request.method} not allowed"},
                {"Allow": ", ".join(allowed)},
            )
        return json_response(404, {"error": f"no such control route: {request.path}"})

    @staticmethod
    async def _body(request: web.BaseRequest) -> Any:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise ControlError(413, f"body above {MAX_BODY_BYTES} bytes")
        raw = await request.content.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            raise ControlError(413, f"body above {MAX_BODY_BYTES} bytes")
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ControlError(400, f"the body is not JSON: {exc}") from None


def install_control(broker: Broker, http: HttpListener) -> ControlApi:
    """Serve the control API on ``http`` (``kbroker.control.enabled``)."""
    api = ControlApi(broker)
    api.install(http)
    logger.info("control API on %s%s/", http.url, PREFIX)
    return api

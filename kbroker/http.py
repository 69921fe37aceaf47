"""The broker's one HTTP listener (``kbroker.http.listen``): health, readiness, metrics.

Served by aiohttp's low-level server (``aiohttp.web.Server``) on the broker's own event loop:
no extra thread, no routing framework.  Routes are exact paths registered with
:meth:`HttpListener.add_route`; other modules (the console, ...) add theirs the same way
before or after start.  A route serves GET and HEAD unless it names its methods (the
console's forms add POST); any other method is 405.  A prefix route
(:meth:`HttpListener.add_prefix_route`) serves the paths below its prefix that no exact
route serves: the control API (``kbroker.control``) under ``/v1/``.

Start-up order (see ``Broker.start``): the HTTP listener binds before the logs are loaded,
so ``/healthz`` answers during a long recovery while ``/readyz`` says 503 until the
Kafka listener accepts connections (``Broker.ready``).
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from kbroker.config import format_address, split_host_port
from kbroker.metrics import CONTENT_TYPE, LoopLagProbe, exposition, new_registry

if TYPE_CHECKING:
    from kbroker.server import Broker

logger = logging.getLogger(__name__)

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
# How long stopping waits for HTTP requests in progress.
HTTP_SHUTDOWN_TIMEOUT_S = 2.0


class HttpListener:
    def __init__(self, broker: Broker, listen: str) -> None:
        self.broker = broker
        self.host, self.port = split_host_port(listen, what="kbroker.http.listen")
        self.routes: dict[str, tuple[Handler, tuple[str, ...]]] = {}
        # (prefix, handler, methods): paths below a prefix that no exact route serves.
        self.prefix_routes: list[tuple[str, Handler, tuple[str, ...]]] = []
        self.registry, self.collector = new_registry(broker)
        self._runner: web.ServerRunner | None = None
        # --dev: when the port is taken, bind a free one instead of failing the start.
        self.fallback_to_free_port = False
        self.add_route("/healthz", self._healthz)
        self.add_route("/readyz", self._readyz)
        self.add_route("/metrics", self._metrics)
        # The web console (kbroker/console/): pages at / and below.
        from kbroker.console import install_console

        self.console = install_console(self)

    def add_route(self, path: str, handler: Handler, methods: tuple[str, ...] = ("GET", "HEAD")) -> None:
        """Serve ``methods`` of ``path`` (exact match) with ``handler``; a later call replaces it."""
        self.routes[path] = (handler, methods)

    def add_prefix_route(self, prefix: str, handler: Handler, methods: tuple[str, ...]) -> None:
        """Serve every path starting with ``prefix`` that has no exact route (the handler
        routes further itself: the control API's ``/v1/``)."""
        self.prefix_routes.append((prefix, handler, methods))

    @property
    def url(self) -> str:
        host = self.host or "0.0.0.0"
        return f"http://{format_address(host, self.port)}"

    async def start(self) -> None:
        # No access log: a scrape every few seconds would fill an info-level log.
        runner = web.ServerRunner(web.Server(self._dispatch, access_log=None), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host or None, self.port, reuse_address=True)
        try:
            try:
                await site.start()
            except OSError as exc:
                if not (self.fallback_to_free_port and exc.errno == errno.EADDRINUSE):
                    raise
                logger.info("HTTP port %d is taken; using a free one", self.port)
                site = web.TCPSite(runner, self.host or None, 0, reuse_address=True)
                await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.collector.probe = LoopLagProbe(asyncio.get_running_loop())
        self.collector.probe.start()
        if runner.addresses:  # the bound port (port 0 = a free one)
            self.port = runner.addresses[0][1]
        logger.info("HTTP listener on %s (web console at /; /healthz /readyz /metrics)", self.url)

    async def stop(self) -> None:
        if self.collector.probe is not None:
            self.collector.probe.stop()
            self.collector.probe = None
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.shutdown()
            await runner.cleanup()

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        route = self.routes.get(request.path)
        if route is None:
            route = next(((h, m) for prefix, h, m in self.prefix_routes if request.path.startswith(prefix)), None)
        if route is None:
            return web.Response(status=404, text="not found\n")
        handler, methods = route
        if request.method not in methods:
            return web.Response(status=405, text="method not allowed\n", headers={"Allow": ", ".join(methods)})
        return await handler(request)

    async def _healthz(self, request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.BaseRequest) -> web.StreamResponse:
        if self.broker.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready\n")

    async def _metrics(self, request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(body=exposition(self.registry), headers={"Content-Type": CONTENT_TYPE})

"""Helpers for the console tests: a broker thread with its HTTP listener, filled on its own
event loop, and plain HTTP requests to the console's pages."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from kbroker.log.results import AppendOrigin, AppendResult

from kbroker.clock import now_ms
from kbroker.testing import BrokerThread

HTTP_TIMEOUT_S = 10.0


class ConsoleBroker:
    """A broker thread plus helpers to fill it and to fetch the console's pages."""

    def __init__(self, bt: BrokerThread) -> None:
        self.bt = bt
        assert bt.broker is not None and bt.broker.http is not None
        self.broker = bt.broker
        self.url = bt.broker.http.url

    def on_loop(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the broker's event loop (where its state may be touched)."""

        async def run() -> Any:
            return fn()

        return self.bt.call(run())

    def create_topic(self, name: str, partitions: int = 1, configs: dict[str, str] | None = None) -> None:
        self.on_loop(lambda: self.broker.topics.create_topic(name, partitions, dict(configs or {}), now_ms()))

    def append(self, topic: str, partition: int, batch: bytes, *, coordinator: bool = False) -> AppendResult:
        origin = AppendOrigin.COORDINATOR if coordinator else AppendOrigin.CLIENT

        def go() -> AppendResult:
            log = self.broker.topics.log(topic, partition)
            assert log is not None
            return log.append(batch, leader_epoch=0, now_ms=now_ms(), origin=origin)

        result: AppendResult = self.on_loop(go)
        return result

    def get(self, path: str, **query: object) -> tuple[int, str]:
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def page(self, path: str, **query: object) -> str:
        status, body = self.get(path, **query)
        assert status == 200, (path, query, status, body[:500])
        return body

    def post(self, path: str, form: dict[str, str], headers: dict[str, str] | None = None) -> tuple[int, str, str]:
        """POST a form without following redirects: (status, Location, body)."""
        data = urllib.parse.urlencode(form).encode()
        req = urllib.request.Request(self.url + path, data=data, headers=headers or {}, method="POST")

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=HTTP_TIMEOUT_S) as resp:
                return resp.status, resp.headers.get("Location", ""), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Location", ""), exc.read().decode()

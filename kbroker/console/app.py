"""The console's request handlers: pages, JSON endpoints, static files and the write forms.

Every handler runs on the broker's event loop and reads state in-process (``state.py``);
the message browser's reads are bounded (``records.py``).  Templates are rendered by Jinja2
with autoescape on for every template, so names, keys and values that came from clients are
always HTML-escaped; the page's script reads nothing but the JSON endpoints' numbers.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import time
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import jinja2
from aiohttp import web

import kbroker
from kbroker.console import state
from kbroker.console.actions import ActionError, create_topic, delete_topic, reset_offsets
from kbroker.console.records import FORMATS, MAX_RECORDS_PER_PAGE, first_offset, read_page

if TYPE_CHECKING:
    from kbroker.http import HttpListener
    from kbroker.server import Broker

logger = logging.getLogger(__name__)

# How often the pages' script polls (the group page's lag, the overview's charts).
LAG_POLL_INTERVAL_MS = 2000
THROUGHPUT_POLL_INTERVAL_MS = 1000
# Points kept by the overview's charts (one per poll).
CHART_POINTS = 60
STATIC_FILES = {"console.css": "text/css", "console.js": "text/javascript"}
_HTML = "text/html"
# Pages may not be framed, scripts only from this origin, forms only post here.
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _format_bytes(n: int | float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # unreachable; keeps type checkers content


def _format_time(ms: int) -> str:
    if ms < 0:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _int_arg(request: web.BaseRequest, name: str) -> int | None:
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer\n") from None


def _timestamp_arg(raw: str) -> int | None:
    """Milliseconds since the epoch, or an ISO 8601 date/time (UTC unless it says otherwise)."""
    raw = raw.strip()
    if not raw:
        return None
    if raw.lstrip("-").isdigit():
        return int(raw)
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise web.HTTPBadRequest(text="timestamp must be milliseconds or an ISO 8601 date/time\n") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


class Console:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.read_only = broker.config.get_bool("kbroker.console.read.only")
        self.csrf_token = secrets.token_urlsafe(32)
        self.started = time.monotonic()
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("kbroker.console", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["bytes"] = _format_bytes
        self.env.filters["time"] = _format_time
        self.env.globals.update(
            read_only=self.read_only, csrf_token=self.csrf_token, urlencode=urlencode, version=kbroker.__version__
        )
        self._static = {
            name: resources.files("kbroker.console").joinpath("static", name).read_bytes() for name in STATIC_FILES
        }

    def install(self, http: HttpListener) -> None:
        pages = {
            "/": self.overview,
            "/topics": self.topics,
            "/topic": self.topic,
            "/messages": self.messages,
            "/groups": self.groups,
            "/group": self.group,
            "/api/group": self.api_group,
            "/api/throughput": self.api_throughput,
        }
        for path, handler in pages.items():
            http.add_route(path, handler)
        for name in STATIC_FILES:
            http.add_route(f"/static/{name}", self.static)
        for path, handler in {
            "/topics/create": self.post_create_topic,
            "/topics/delete": self.post_delete_topic,
            "/group/reset-offsets": self.post_reset_offsets,
        }.items():
            http.add_route(path, handler, methods=("POST",))

    # -- rendering -------------------------------------------------------------------------

    def _page(self, template: str, status: int = 200, **context: Any) -> web.Response:
        body = self.env.get_template(template).render(**context)
        return web.Response(text=body, status=status, content_type=_HTML, headers=_SECURITY_HEADERS)

    def _not_found(self, what: str) -> web.Response:
        return self._page("error.html", status=404, title="Not found", message=what, nav="")

    @staticmethod
    def _json(data: object) -> web.Response:
        return web.Response(
            text=json.dumps(data), content_type="application/json", headers={"Cache-Control": "no-store", **_SECURITY_HEADERS}
        )

    # -- pages -----------------------------------------------------------------------------

    async def overview(self, request: web.BaseRequest) -> web.StreamResponse:
        info = state.overview(self.broker, self.started)
        return self._page(
            "overview.html", nav="overview", title="Overview", info=info,
            poll_ms=THROUGHPUT_POLL_INTERVAL_MS, chart_points=CHART_POINTS,
        )  # fmt: skip

    async def topics(self, request: web.BaseRequest) -> web.StreamResponse:
        return self._page(
            "topics.html", nav="topics", title="Topics", topics=state.topics(self.broker),
            default_partitions=self.broker.config.get_int("num.partitions"),
            notice=request.query.get("notice", ""),
        )  # fmt: skip

    async def topic(self, request: web.BaseRequest) -> web.StreamResponse:
        name = request.query.get("name", "")
        info = state.topic_info(self.broker, name, with_configs=True)
        if info is None:
            return self._not_found(f"No topic named {name!r}.")
        return self._page("topic.html", nav="topics", title=info.name, topic=info)

    async def messages(self, request: web.BaseRequest) -> web.StreamResponse:
        name = request.query.get("topic", "")
        info = state.topic_info(self.broker, name)
        if info is None:
            return self._not_found(f"No topic named {name!r}.")
        partition = _int_arg(request, "partition") or 0
        log = self.broker.topics.log(name, partition)
        if log is None:
            return self._not_found(f"Topic {name!r} has no partition {partition}.")
        fmt = request.query.get("format", "auto")
        if fmt not in FORMATS:
            fmt = "auto"
        offset = _int_arg(request, "offset")
        timestamp_raw = request.query.get("timestamp", "")
        start = first_offset(log, offset=offset, timestamp_ms=_timestamp_arg(timestamp_raw))
        page = read_page(log, start, fmt)
        older = max(page.log_start_offset, start - MAX_RECORDS_PER_PAGE) if start > page.log_start_offset else None
        return self._page(
            "messages.html", nav="topics", title=f"{name} / {partition}", topic=info, partition=partition,
            page=page, fmt=fmt, formats=FORMATS, offset_arg="" if offset is None else offset,
            timestamp_arg=timestamp_raw, older=older, newest=offset is None and not timestamp_raw,
            max_records=MAX_RECORDS_PER_PAGE,
        )  # fmt: skip

    async def groups(self, request: web.BaseRequest) -> web.StreamResponse:
        infos = [g for g in (state.group_info(self.broker, gid) for gid in state.group_ids(self.broker)) if g is not None]
        return self._page("groups.html", nav="groups", title="Consumer Groups", groups=infos)

    async def group(self, request: web.BaseRequest) -> web.StreamResponse:
        group_id = request.query.get("id", "")
        info = state.group_info(self.broker, group_id)
        if info is None:
            return self._not_found(f"No consumer group {group_id!r}.")
        return self._page(
            "group.html", nav="groups", title=group_id, group=info, poll_ms=LAG_POLL_INTERVAL_MS,
            notice=request.query.get("notice", ""),
        )  # fmt: skip

    async def api_group(self, request: web.BaseRequest) -> web.StreamResponse:
        info = state.group_info(self.broker, request.query.get("id", ""))
        if info is None:
            return web.json_response({"error": "no such group"}, status=404)
        return self._json(info.to_json())

    async def api_throughput(self, request: web.BaseRequest) -> web.StreamResponse:
        return self._json(state.throughput(self.broker))

    async def static(self, request: web.BaseRequest) -> web.StreamResponse:
        name = request.path.rsplit("/", 1)[-1]
        return web.Response(
            body=self._static[name], content_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache", **_SECURITY_HEADERS}
        )

    # -- write forms -----------------------------------------------------------------------

    async def _form(self, request: web.BaseRequest) -> dict[str, str]:
        """The posted form, after the read-only, same-origin and CSRF checks."""
        if self.read_only:
            raise web.HTTPForbidden(text="the console is read-only (kbroker.console.read.only=true)\n")
        origin = request.headers.get("Origin")
        if origin is not None and origin != "null" and urlsplit(origin).netloc != request.host:
            raise web.HTTPForbidden(text="cross-origin form post refused\n")
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            raise web.HTTPForbidden(text="cross-site form post refused\n")
        form = await request.post()
        token = form.get("csrf_token")
        if not isinstance(token, str) or not hmac.compare_digest(token, self.csrf_token):
            raise web.HTTPForbidden(text="missing or wrong CSRF token; reload the page and try again\n")
        return {k: v for k, v in form.items() if isinstance(v, str)}

    def _error(self, message: str) -> web.Response:
        return self._page("error.html", status=400, title="Not done", message=message, nav="")

    async def post_create_topic(self, request: web.BaseRequest) -> web.StreamResponse:
        form = await self._form(request)
        try:
            name = create_topic(self.broker, form.get("name", ""), form.get("partitions", ""), form.get("configs", ""))
        except ActionError as exc:
            return self._error(str(exc))
        logger.info("console: created topic %s", name)
        raise web.HTTPSeeOther("/topic?" + urlencode({"name": name}))

    async def post_delete_topic(self, request: web.BaseRequest) -> web.StreamResponse:
        form = await self._form(request)
        try:
            name = delete_topic(self.broker, form.get("name", ""))
        except ActionError as exc:
            return self._error(str(exc))
        logger.info("console: deleted topic %s", name)
        raise web.HTTPSeeOther("/topics?" + urlencode({"notice": f"Deleted topic {name}."}))

    async def post_reset_offsets(self, request: web.BaseRequest) -> web.StreamResponse:
        form = await self._form(request)
        group_id = form.get("group", "")
        try:
            count = reset_offsets(self.broker, group_id, form.get("topic", ""), form.get("to", ""), form.get("offset", ""))
        except ActionError as exc:
            return self._error(str(exc))
        logger.info("console: reset %d committed offsets of group %s", count, group_id)
        notice = f"Reset {count} partition offset(s)."
        raise web.HTTPSeeOther("/group?" + urlencode({"id": group_id, "notice": notice}))

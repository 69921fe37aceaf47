"""The web console at ``/`` on the HTTP listener (``kbroker.http.listen``).

Server-rendered pages (Jinja2 templates with autoescape, in ``templates/``) plus one small
script (``static/console.js``) that polls two JSON endpoints: a group's lag and the broker's
throughput counters.  No build step: the templates and static files ship as package data.

Pages (every one reachable by links from the navigation bar):

=====================  ==========================================================
``/``                  cluster overview and live throughput charts
``/topics``            topics with partitions, records, sizes (create form when writable)
``/topic?name=T``      partitions (offsets, sizes, segments), configs, "Messages" links
``/messages?topic=T&partition=P[&offset=N|&timestamp=ISO|ms][&format=F]``
                       the message browser (newest records by default)
``/groups``            consumer groups with state, members, total lag
``/group?id=G``        members, assignments, committed offsets and lag (reset form)
``/api/group?id=G``    the group's lag as JSON (polled by the group page)
``/api/throughput``    cumulative counters as JSON (polled by the overview's charts)
=====================  ==========================================================

Read-only unless ``kbroker.console.read.only=false``; then POST forms create and delete
topics and reset a group's committed offsets.  Every POST must carry the console's CSRF
token (a random value per broker process, embedded in the forms it renders) and, when the
browser sends one, an ``Origin`` naming this listener.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kbroker.console.app import Console
    from kbroker.http import HttpListener


def install_console(http: HttpListener) -> Console:
    """Register the console's routes on ``http``."""
    from kbroker.console.app import Console

    console = Console(http.broker)
    console.install(http)
    return console

"""The event loop ``python -m kbroker`` runs on.

uvloop when it is installed (the ``fast`` extra), asyncio's own loop otherwise.  The
environment variable ``KBROKER_EVENT_LOOP`` overrides the choice: ``asyncio`` runs asyncio's
loop even with uvloop installed (CI runs one of its Python versions so, to exercise both
loops with the broker processes the compat tests start), ``uvloop`` requires uvloop, and
``auto`` (or unset) is the default above.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

EVENT_LOOP_ENV = "KBROKER_EVENT_LOOP"
EVENT_LOOP_CHOICES = ("auto", "asyncio", "uvloop")

T = TypeVar("T")


def loop_factory(environ: Mapping[str, str] = os.environ) -> Callable[[], asyncio.AbstractEventLoop]:
    """The event-loop constructor ``KBROKER_EVENT_LOOP`` asks for (ValueError if it names
    neither choice, ImportError if it asks for uvloop and uvloop is missing)."""
    choice = environ.get(EVENT_LOOP_ENV, "").strip().lower() or "auto"
    if choice not in EVENT_LOOP_CHOICES:
        raise ValueError(f"{EVENT_LOOP_ENV}={choice!r}: expected one of {', '.join(EVENT_LOOP_CHOICES)}")
    if choice == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], environ: Mapping[str, str] = os.environ) -> T:
    """Run ``main`` to completion on a new loop of the configured kind."""
    with asyncio.Runner(loop_factory=loop_factory(environ)) as runner:
        return runner.run(main)

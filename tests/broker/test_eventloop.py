"""KBROKER_EVENT_LOOP picks the loop ``python -m kbroker`` runs on (see kbroker.eventloop)."""

from __future__ import annotations

import asyncio

import pytest

from kbroker import eventloop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_asyncio_is_forced_even_with_uvloop_installed() -> None:
    assert eventloop.run(_loop_module(), {"KBROKER_EVENT_LOOP": "asyncio"}).startswith("asyncio")


@pytest.mark.parametrize("value", ["", "auto", "uvloop", " UVLOOP "])
def test_uvloop_when_installed(value: str) -> None:
    pytest.importorskip("uvloop")  # the fast extra; without it "auto" is asyncio (below)
    assert eventloop.run(_loop_module(), {"KBROKER_EVENT_LOOP": value}).startswith("uvloop")


def test_auto_falls_back_to_asyncio_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvloop", None)  # makes `import uvloop` raise ImportError
    assert eventloop.run(_loop_module(), {}).startswith("asyncio")
    with pytest.raises(ImportError):
        eventloop.loop_factory({"KBROKER_EVENT_LOOP": "uvloop"})


def test_an_unknown_choice_is_refused() -> None:
    with pytest.raises(ValueError, match="KBROKER_EVENT_LOOP='trio': expected one of auto, asyncio, uvloop"):
        eventloop.loop_factory({"KBROKER_EVENT_LOOP": "trio"})

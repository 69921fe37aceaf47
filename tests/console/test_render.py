"""How the message browser renders keys, values and headers (pure functions, no broker)."""

from __future__ import annotations

import json

from kbroker.console.records import HEX_LINE_BYTES, MAX_SHOWN_BYTES, render_bytes


def test_null_is_shown_as_null_not_as_empty() -> None:
    shown = render_bytes(None, "auto")
    assert (shown.kind, shown.text, shown.size_bytes) == ("null", "null", 0)
    assert render_bytes(b"", "auto").kind == "text"


def test_auto_pretty_prints_json_objects_and_keeps_plain_text() -> None:
    shown = render_bytes(b'{"a":1,"b":[true,null]}', "auto")
    assert shown.kind == "json"
    assert json.loads(shown.text) == {"a": 1, "b": [True, None]}
    assert "\n" in shown.text  # indented
    # a bare number or word is JSON too, but auto shows it as the text it is
    assert render_bytes(b"42", "auto").kind == "text"
    assert render_bytes("grüße".encode(), "auto").text == "grüße"


def test_auto_falls_back_to_hex_for_binary() -> None:
    shown = render_bytes(b"\x00\x01\xffabc", "auto")
    assert shown.kind == "hex"
    assert shown.text.startswith("00000000  00 01 ff 61 62 63")
    assert shown.text.endswith("...abc")


def test_forced_formats() -> None:
    assert render_bytes(b"42", "json").kind == "json"
    assert render_bytes(b"not json", "json").kind == "text"  # cannot parse: shown as text
    assert render_bytes(b'{"a":1}', "text").text == '{"a":1}'
    hexed = render_bytes(bytes(range(40)), "hex")
    assert hexed.kind == "hex"
    assert len(hexed.text.splitlines()) == -(-40 // HEX_LINE_BYTES)
    assert render_bytes(b"\xff\xfe", "text").text == "\ufffd\ufffd"  # replacement, not a crash


def test_long_values_are_cut_and_say_so() -> None:
    shown = render_bytes(b"x" * (MAX_SHOWN_BYTES + 10), "auto")
    assert shown.truncated and shown.size_bytes == MAX_SHOWN_BYTES + 10
    assert len(shown.text) == MAX_SHOWN_BYTES
    small = render_bytes(b"x" * 10, "auto")
    assert not small.truncated

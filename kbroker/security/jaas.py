"""Kafka's JAAS configuration syntax, as ``sasl.jaas.config`` values carry it.

    org.apache.kafka.common.security.plain.PlainLoginModule required
        username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";

One login module: its class name, a control flag (required, requisite, sufficient,
optional), options ``key=value`` (the value quoted with ``"`` or bare), and a closing
``;``.  Inside quotes ``\\"`` and ``\\\\`` are escapes.  :func:`parse_jaas` returns the class
name and the options, or raises ValueError saying what is wrong.
"""

from __future__ import annotations

import re

FLAGS = ("required", "requisite", "sufficient", "optional")
_TOKEN = re.compile(r'\s*(?:(?P<quoted>"(?:\\.|[^"\\])*")|(?P<eq>=)|(?P<semi>;)|(?P<word>[^\s=;"]+))', re.S)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"sasl.jaas.config: cannot parse at {text[pos:pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup
        assert kind is not None
        value = m.group(kind)
        if kind == "quoted":
            value = re.sub(r"\\(.)", r"\1", value[1:-1], flags=re.S)
        out.append((kind, value))
    return out


def parse_jaas(text: str) -> tuple[str, dict[str, str]]:
    """(login module class, options) of a one-module JAAS configuration."""
    tokens = _tokens(text)
    if len(tokens) < 3 or tokens[0][0] != "word" or tokens[1][0] != "word":
        raise ValueError("sasl.jaas.config: expected 'LoginModuleClass required key=\"value\" ... ;'")
    module, flag = tokens[0][1], tokens[1][1]
    if flag.lower() not in FLAGS:
        raise ValueError(f"sasl.jaas.config: control flag {flag!r} is not one of {', '.join(FLAGS)}")
    options: dict[str, str] = {}
    i = 2
    while i < len(tokens) and tokens[i][0] != "semi":
        if i + 2 >= len(tokens) or tokens[i][0] != "word" or tokens[i + 1][0] != "eq" or tokens[i + 2][0] not in ("word", "quoted"):
            raise ValueError(f"sasl.jaas.config: expected key=value after {module} {flag}")
        options[tokens[i][1]] = tokens[i + 2][1]
        i += 3
    if i >= len(tokens) or tokens[i][0] != "semi":
        raise ValueError("sasl.jaas.config: the login module must end with ';'")
    if i + 1 != len(tokens):
        raise ValueError("sasl.jaas.config: one login module only (text after ';')")
    return module, options

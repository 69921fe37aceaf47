"""Principals from TLS client certificates, as Kafka's DefaultKafkaPrincipalBuilder makes them.

A client that presents a certificate on an SSL listener is ``User:`` + the certificate's
subject distinguished name in RFC 2253 form (Java's ``X500Principal.getName()``), after
``ssl.principal.mapping.rules``.  Without a certificate the principal is ``User:ANONYMOUS``.

RFC 2253 form: the relative distinguished names most specific first
(``CN=alice,OU=eng,O=acme,C=US``), multi-valued ones joined with ``+``; the attribute types
Java names (CN, C, L, ST, O, OU, STREET, DC, UID) by keyword, every other one by its dotted
OID with the value as ``#`` + the hex of its DER encoding (``1.2.840.113549.1.9.1=#16...``
for an e-mail address), as Java writes them.

Mapping rules (Kafka's syntax): a comma- or newline-separated list of ``DEFAULT`` and
``RULE:pattern/replacement/[L|U]``.  The first rule whose pattern matches the whole name
wins: ``DEFAULT`` keeps the name; a ``RULE`` replaces every match of its pattern (``$1``
names a group, ``\\`` escapes) then lowercases (``L``) or uppercases (``U``).  ``/`` inside
a pattern or replacement is written ``\\/``.  No matching rule: the connection is refused
(:class:`NoMatchingRule`), as Kafka fails the authentication.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

# The attribute types Java's RFC 2253 form names by keyword.
_KEYWORDS = {
    NameOID.COMMON_NAME: "CN",
    NameOID.COUNTRY_NAME: "C",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.STREET_ADDRESS: "STREET",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.USER_ID: "UID",
}
_UTF8_STRING_TAG = 0x0C
# Characters escaped with a backslash in an RFC 2253 attribute value.
_SPECIAL = frozenset(',+"\\<>;')


class NoMatchingRule(ValueError):
    """No ssl.principal.mapping.rules entry matches the certificate's name."""


def _escape(value: str) -> str:
    out = []
    for i, ch in enumerate(value):
        if ch in _SPECIAL or (i == 0 and ch in "# ") or (i == len(value) - 1 and ch == " "):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _der_hex(attribute: x509.NameAttribute[Any]) -> str:
    value = attribute.value if isinstance(attribute.value, bytes) else attribute.value.encode("utf-8")
    tag = getattr(getattr(attribute, "_type", None), "value", _UTF8_STRING_TAG)
    n = len(value)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    return "#" + (bytes([tag]) + length + value).hex()


def rfc2253_name(name: x509.Name) -> str:
    """``name`` as Java's ``X500Principal.getName()`` writes it."""
    rdns = []
    for rdn in reversed(list(name.rdns)):
        parts = []
        for attribute in rdn:
            keyword = _KEYWORDS.get(attribute.oid)
            if keyword is None:
                parts.append(f"{attribute.oid.dotted_string}={_der_hex(attribute)}")
            else:
                parts.append(f"{keyword}={_escape(str(attribute.value))}")
        rdns.append("+".join(parts))
    return ",".join(rdns)


def certificate_subject(der: bytes) -> str:
    """The RFC 2253 subject of a DER certificate."""
    return rfc2253_name(x509.load_der_x509_certificate(der).subject)


# One rule: DEFAULT, or RULE:pattern/replacement/[LU], then a separator or the end.
_RULE = re.compile(r"\s*(?:(?P<default>DEFAULT)|RULE:(?P<pattern>(?:\\.|[^\\/])*)/(?P<replacement>(?:\\.|[^\\/])*)/(?P<case>[LU]?))\s*(?:[,\n]|$)")
_DOLLAR_GROUP = re.compile(r"\$(\d+)|\\(.)|([^$\\]+)|(\$)", re.S)


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: re.Pattern[str] | None  # None: DEFAULT
    replacement: tuple[tuple[int, str], ...] = ()  # (group or -1, literal)
    case: str = ""

    def apply(self, name: str) -> str | None:
        if self.pattern is None:
            return name
        if self.pattern.fullmatch(name) is None:
            return None

        def expand(m: re.Match[str]) -> str:
            return "".join(m.group(group) or "" if group >= 0 else literal for group, literal in self.replacement)

        out = self.pattern.sub(expand, name)
        return out.lower() if self.case == "L" else out.upper() if self.case == "U" else out


def _replacement(text: str) -> tuple[tuple[int, str], ...]:
    """Java's replacement syntax: ``$n`` is group n, ``\\x`` is a literal x."""
    parts = []
    for m in _DOLLAR_GROUP.finditer(text.replace("\\/", "/")):
        if m.group(1) is not None:
            parts.append((int(m.group(1)), ""))
        else:
            parts.append((-1, m.group(2) or m.group(3) or m.group(4) or ""))
    return tuple(parts)


class PrincipalMapper:
    """``ssl.principal.mapping.rules``, parsed once per listener."""

    def __init__(self, rules: str) -> None:
        self.rules = parse_rules(rules)

    def principal_name(self, subject: str) -> str:
        for rule in self.rules:
            mapped = rule.apply(subject)
            if mapped is not None:
                return mapped
        raise NoMatchingRule(f"no ssl.principal.mapping.rules entry matches {subject!r}")


def parse_rules(text: str) -> list[_Rule]:
    """The rules of ``text``; ValueError naming the first malformed one."""
    rules: list[_Rule] = []
    pos, text = 0, text.strip()
    while pos < len(text):
        m = _RULE.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"ssl.principal.mapping.rules: cannot parse {text[pos:]!r}")
        if m["default"]:
            rules.append(_Rule(None))
        else:
            try:
                pattern = re.compile(m["pattern"].replace("\\/", "/"))
            except re.error as exc:
                raise ValueError(f"ssl.principal.mapping.rules: bad pattern {m['pattern']!r}: {exc}") from None
            rules.append(_Rule(pattern, _replacement(m["replacement"]), m["case"]))
        pos = m.end()
    return rules or [_Rule(None)]

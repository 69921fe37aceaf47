#!/usr/bin/env python3
"""Generate ``wire/messages/`` and ``wire/api.py`` from Kafka's message specs.

Usage: ``python tools/gen_wire.py [--specs ../shared/kafka-protocol] [--out .]``

Reads ``<specs>/messages/*.json`` (requests, responses, headers and "data" specs) and
``<specs>/internal-records/*.json`` (``__consumer_offsets`` / ``__transaction_state``
key/value formats).  The files carry ``//`` comments, stripped before parsing.
The output is deterministic: the same specs always give byte-identical files, so a test
can regenerate into a temp dir and diff.  The specs' prose ("about") is not carried over.
"""

from __future__ import annotations

import argparse
import json
import keyword
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX = 32767
PRIMITIVES = {
    "bool",
    "int8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "float64",
    "uuid",
    "string",
    "bytes",
    "records",
}
INT_TYPES = {"int8", "int16", "uint16", "int32", "uint32", "int64"}


def strip_comments(text: str) -> str:
    """Remove ``//`` comments that are outside JSON strings."""
    out: list[str] = []
    for line in text.splitlines():
        in_str = False
        esc = False
        cut = len(line)
        for i, ch in enumerate(line):
            if in_str:
                if esc:
                    esc = False
                elif ch == "\\":
                    esc = True
                elif ch == '"':
                    in_str = False
            elif ch == '"':
                in_str = True
            elif ch == "/" and line[i + 1 : i + 2] == "/":
                cut = i
                break
        out.append(line[:cut])
    return "\n".join(out)


def snake(name: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
    return s + "_" if keyword.iskeyword(s) else s


def upper_snake(name: str) -> str:
    return snake(name).rstrip("_").upper()


def parse_versions(text: str | None) -> tuple[int, int] | None:
    if text is None or text == "none":
        return None
    text = str(text)
    if text.endswith("+"):
        return (int(text[:-1]), MAX)
    if "-" in text:
        lo, hi = text.split("-")
        return (int(lo), int(hi))
    return (int(text), int(text))


@dataclass
class FieldSpec:
    name: str
    py_name: str
    elem: str  # primitive name or struct class name
    array: bool
    versions: tuple[int, int]
    nullable: tuple[int, int] | None
    tag: int | None
    tagged: tuple[int, int] | None
    ignorable: bool
    flexible: tuple[int, int] | None
    flexible_override: bool
    default: Any


@dataclass
class StructSpec:
    name: str
    fields: list[FieldSpec] = field(default_factory=list)


class SpecFile:
    """One parsed spec, its structs flattened (children before parents)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.raw: dict[str, Any] = json.loads(strip_comments(path.read_text()))
        self.name: str = self.raw["name"]
        self.kind: str = self.raw["type"]
        self.structs: list[StructSpec] = []
        self._names: set[str] = set()
        for common in self.raw.get("commonStructs", []):
            self._add_struct(common["name"], common["fields"])
        self._add_struct(self.name, self.raw["fields"])

    def _add_struct(self, name: str, fields: list[dict[str, Any]]) -> None:
        if name in self._names:
            raise SystemExit(f"{self.path.name}: duplicate struct name {name}")
        self._names.add(name)
        st = StructSpec(name)
        for f in fields:
            typ: str = f["type"]
            array = typ.startswith("[]")
            elem = typ[2:] if array else typ
            if elem not in PRIMITIVES and "fields" in f:
                self._add_struct(elem, f["fields"])
            # a tagged field without "versions" exists in its tagged versions
            versions = parse_versions(f.get("versions", f.get("taggedVersions")))
            if versions is None:
                raise SystemExit(f"{self.path.name}: field {f['name']} has no versions")
            st.fields.append(
                FieldSpec(
                    name=f["name"],
                    py_name=snake(f["name"]),
                    elem=elem,
                    array=array,
                    versions=versions,
                    nullable=parse_versions(f.get("nullableVersions")),
                    tag=f.get("tag"),
                    tagged=parse_versions(f.get("taggedVersions")),
                    ignorable=bool(f.get("ignorable", False)),
                    flexible=parse_versions(f.get("flexibleVersions")),
                    flexible_override="flexibleVersions" in f,
                    default=f.get("default"),
                )
            )
        self.structs.append(st)


def pystr(s: str) -> str:
    """A double-quoted Python literal (the style ruff format would give)."""
    return json.dumps(s)


def _is_null_default(fs: FieldSpec) -> bool:
    return fs.default is not None and str(fs.default) in ("null", "None")


def py_type(fs: FieldSpec) -> str:
    base = {
        "bool": "bool",
        "float64": "float",
        "uuid": "UUID",
        "string": "str",
        "bytes": "bytes",
        "records": "bytes | memoryview",
    }.get(fs.elem, "int" if fs.elem in INT_TYPES else fs.elem)
    t = f"list[{base}]" if fs.array else base
    if fs.nullable is not None or _is_null_default(fs) or fs.elem == "records":
        t += " | None"
    return t


def py_default(fs: FieldSpec) -> tuple[str, str | None]:
    """(default in the ``__init__`` signature, expression making a fresh one or None).

    Lists and nested structs default to the ``FACTORY`` sentinel, replaced in the body by
    a new object, so instances never share a mutable default.
    """
    if _is_null_default(fs):
        return "None", None
    if fs.array:
        return "FACTORY", "[]"
    d = fs.default
    e = fs.elem
    if e in INT_TYPES:
        return (str(int(str(d), 0)) if d is not None and str(d) != "" else "0"), None
    if e == "bool":
        return ("True" if str(d).lower() == "true" else "False"), None
    if e == "float64":
        return (repr(float(d)) if d is not None else "0.0"), None
    if e == "string":
        return (pystr(str(d)) if d is not None else '""'), None
    if e == "uuid":
        return "ZERO_UUID", None
    if e == "bytes":
        return 'b""', None
    if e == "records":
        return "None", None
    return "FACTORY", f"{e}()"


def _vr(v: tuple[int, int]) -> str:
    return f"({v[0]}, {'MAX' if v[1] == MAX else v[1]})"


def schema_entry(fs: FieldSpec) -> str:
    lo, hi = fs.versions
    typ = fs.elem if fs.elem in PRIMITIVES else "struct"
    parts = [pystr(fs.py_name), pystr(typ), str(lo), "MAX" if hi == MAX else str(hi)]
    if fs.array:
        parts.append("array=True")
    if typ == "struct":
        parts.append(f"struct={fs.elem}")
    if fs.nullable is not None:
        parts.append(f"nullable={_vr(fs.nullable)}")
    if fs.tag is not None:
        parts.append(f"tag={fs.tag}")
    if fs.tagged is not None:
        parts.append(f"tagged={_vr(fs.tagged)}")
    if fs.ignorable:
        parts.append("ignorable=True")
    if fs.flexible_override:
        parts.append("flexible_override=True")
        if fs.flexible is not None:
            parts.append(f"flexible={_vr(fs.flexible)}")
    return "F(" + ", ".join(parts) + ")"


UNKNOWN_TAGS = "unknown_tagged_fields"


def render_class(spec: SpecFile, st: StructSpec) -> list[str]:
    """One struct class: ``__slots__``, annotations, class vars and a keyword-only ``__init__``.

    Plain class statements only (no decorator, no exec): importing the module creates the
    classes and nothing else.  ``__eq__`` / ``__repr__`` come from ``wire.schema.StructBase``.
    """
    raw = spec.raw
    names = [fs.py_name for fs in st.fields] + [UNKNOWN_TAGS]
    types = [py_type(fs) for fs in st.fields] + ["dict[int, bytes]"]
    defaults = [py_default(fs) for fs in st.fields] + [("FACTORY", "{}")]
    out = ["", "", f"class {st.name}(StructBase):"]
    if len(names) == 1:
        out.append(f"    __slots__ = ({pystr(names[0])},)")
    else:
        out.append("    __slots__ = (")
        out += [f"        {pystr(n)}," for n in names]
        out.append("    )")
    out.append("    SCHEMA: ClassVar[tuple[F, ...]]")
    if st.name == spec.name:
        valid = parse_versions(raw["validVersions"])
        assert valid is not None
        flex = parse_versions(raw.get("flexibleVersions"))
        if "apiKey" in raw:
            out.append(f"    API_KEY: ClassVar[int] = {raw['apiKey']}")
        out.append(f"    VALID_VERSIONS: ClassVar[tuple[int, int]] = {valid!r}")
        out.append(f"    FLEXIBLE_MIN: ClassVar[int | None] = {flex[0] if flex else None!r}")
    out.append("")
    out += [f"    {n}: {t}" for n, t in zip(names, types, strict=True)]
    out += ["", "    def __init__(", "        self,", "        *,"]
    out += [f"        {n}: {t} = {d}," for n, t, (d, _) in zip(names, types, defaults, strict=True)]
    out.append("    ) -> None:")
    for n, (_, fresh) in zip(names, defaults, strict=True):
        if fresh is None:
            out.append(f"        self.{n} = {n}")
        else:
            out.append(f"        self.{n} = {fresh} if {n} is FACTORY else {n}")
    return out


def render_module(spec: SpecFile) -> str:
    uses_uuid = any(f.elem == "uuid" for s in spec.structs for f in s.fields)
    body: list[str] = []
    for st in spec.structs:
        body += render_class(spec, st)
    for st in spec.structs:
        body += ["", ""]
        if not st.fields:
            body.append(f"{st.name}.SCHEMA = ()")
            continue
        body.append(f"{st.name}.SCHEMA = (")
        for fs in st.fields:
            body.append(f"    {schema_entry(fs)},")
        body.append(")")
    text = "\n".join(body)
    names = ["FACTORY"]
    if "MAX" in text:
        names.append("MAX")
    if "ZERO_UUID" in text:
        names.append("ZERO_UUID")
    names += ["F", "StructBase"]
    head = [
        f"# generated by tools/gen_wire.py from {spec.path.name}; do not edit",
        "from __future__ import annotations",
        "",
        "from typing import ClassVar",
    ]
    if uses_uuid:
        head.append("from uuid import UUID")
    head += [
        "",
        "from kbroker.wire.schema import " + ", ".join(names),
        "",
        "__all__ = [" + ", ".join(pystr(s.name) for s in sorted(spec.structs, key=lambda s: s.name)) + "]",
    ]
    return "\n".join(head) + "\n" + text + "\n"


def render_index(specs: list[SpecFile]) -> str:
    """wire/messages/_index.py: api key -> modules, ranges and flexible min."""
    by_key: dict[int, dict[str, SpecFile]] = {}
    for s in specs:
        if s.kind in ("request", "response"):
            by_key.setdefault(int(s.raw["apiKey"]), {})[s.kind] = s
    lines = [
        "# generated by tools/gen_wire.py from messages/*Request.json and *Response.json; do not edit",
        '"""API key -> (request module, request class, response module, response class,',
        'spec min version, spec max version, first flexible request version or None, api name)."""',
        "",
        "from __future__ import annotations",
        "",
        "INDEX: dict[int, tuple[str, str, str, str, int, int, int | None, str]] = {",
    ]
    for key in sorted(by_key):
        req, resp = by_key[key]["request"], by_key[key]["response"]
        valid = parse_versions(req.raw["validVersions"])
        flex = parse_versions(req.raw.get("flexibleVersions"))
        assert valid is not None
        api = upper_snake(req.name[: -len("Request")])
        lines.append(
            f"    {key}: ({pystr(module_name(req))}, {pystr(req.name)}, {pystr(module_name(resp))}, "
            f"{pystr(resp.name)}, {valid[0]}, {valid[1]}, {flex[0] if flex else None!r}, {pystr(api)}),"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_api(specs: list[SpecFile]) -> str:
    keys = sorted(
        (int(s.raw["apiKey"]), upper_snake(s.name[: -len("Request")]))
        for s in specs
        if s.kind == "request"
    )
    lines = [
        "# generated by tools/gen_wire.py from messages/*Request.json; do not edit",
        '"""Every Kafka API key (names from the request specs, in UPPER_SNAKE)."""',
        "",
        "from __future__ import annotations",
        "",
        "from enum import IntEnum",
        "",
        "",
        "class ApiKey(IntEnum):",
    ]
    lines += [f"    {name} = {key}" for key, name in keys]
    return "\n".join(lines) + "\n"


def module_name(spec: SpecFile) -> str:
    return snake(spec.name)


def load(specs_root: Path, sub: str) -> list[SpecFile]:
    """Every spec with at least one valid version (removed APIs say ``"validVersions": "none"``)."""
    specs = []
    for path in sorted((specs_root / sub).glob("*.json")):
        raw = json.loads(strip_comments(path.read_text()))
        if raw.get("type") in ("request", "response") and parse_versions(raw["validVersions"]) is None:
            continue
        specs.append(SpecFile(path))
    return specs


def generate(specs_root: Path) -> dict[str, str]:
    """Return {relative output path: file text} for everything the generator owns."""
    messages = load(specs_root, "messages")
    internal = load(specs_root, "internal-records")
    out: dict[str, str] = {}
    for s in messages:
        out[f"wire/messages/{module_name(s)}.py"] = render_module(s)
    for s in internal:
        out[f"wire/messages/internal/{module_name(s)}.py"] = render_module(s)
    out["wire/messages/internal/__init__.py"] = (
        "# generated by tools/gen_wire.py from internal-records/*.json; do not edit\n"
        '"""Key/value formats of __consumer_offsets and __transaction_state records.\n\n'
        'Import the modules directly, e.g. ``kbroker.wire.messages.internal.offset_commit_key``."""\n'
    )
    out["wire/messages/_index.py"] = render_index(messages)
    out["wire/api.py"] = render_api(messages)
    return out


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--specs", type=Path, default=root.parent / "shared" / "kafka-protocol")
    ap.add_argument("--out", type=Path, default=root)
    args = ap.parse_args(argv)
    files = generate(args.specs)
    # remove generated modules whose spec disappeared (or lost all its versions)
    for old in sorted((args.out / "wire" / "messages").rglob("*.py")):
        rel = str(old.relative_to(args.out))
        if rel not in files and old.read_text().startswith("# generated by tools/gen_wire.py"):
            old.unlink()
    for rel, text in files.items():
        path = args.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"wrote {len(files)} files under {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

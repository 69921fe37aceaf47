"""Encode and decode the generated message classes.

Theory of operation
-------------------
Every generated struct class carries ``SCHEMA`` (a tuple of :class:`wire.schema.F`).
The first time a (class, version) pair is used, :class:`_Compiler` walks that schema
*for that version only* and writes specialised Python source: one decoder and one
encoder function per struct class reachable from the message, with

* the fields the version does not carry left out of the wire code (the decoder sets
  their defaults; the encoder raises :class:`EncodeError` if a non-ignorable one holds
  a non-default value, Kafka's rule);
* runs of fixed-width fields packed/unpacked with a single precompiled ``struct.Struct``;
* compact or classic string/bytes/array forms chosen up front (flexible versions, KIP-482),
  honouring a field's own ``flexibleVersions`` override;
* tagged fields decoded when known and kept verbatim in ``unknown_tagged_fields``
  otherwise; on encode, known tags are written only when they differ from the default
  and unknown ones are merged back in tag order.

The source is compiled with ``exec`` once and cached, so later messages pay only for the
specialised code.  Versions below the spec's minimum (KIP-896) are still coded from the
fields' own version ranges.  Decoding never raises anything but :class:`DecodeError`:
lengths are checked against the remaining bytes before allocating (``wire.primitives``),
and any stray low-level error from a short buffer is converted at the top.
``plan_source(cls, version)`` returns the generated source for reading.

:func:`size` has a plan of its own, compiled (separately, on first use) from the same walk
of the version's fields: it adds up fixed widths, length prefixes and payload lengths and
the tagged-field section without writing a byte, so ``size == len(encode(...))`` is a real
check of both (``size_plan_source`` shows it).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from operator import itemgetter
from typing import Any, TypeVar
from uuid import UUID

from kbroker.wire import primitives as p
from kbroker.wire.exceptions import DecodeError, EncodeError
from kbroker.wire.schema import F, StructBase

T = TypeVar("T")

_FIXED: dict[str, tuple[str, int]] = {
    "bool": ("?", 1),
    "int8": ("b", 1),
    "int16": ("h", 2),
    "uint16": ("H", 2),
    "int32": ("i", 4),
    "uint32": ("I", 4),
    "int64": ("q", 8),
    "float64": ("d", 8),
}
_IMMUTABLE = (int, float, str, bytes, bool, UUID, type(None))
_LOW_LEVEL = (struct.error, IndexError, ValueError, OverflowError, TypeError, KeyError)


def _read_tags(buf: memoryview, pos: int, obj: Any, known: dict[int, Any], what: str) -> int:
    n, pos = p.read_uvarint(buf, pos)
    if n > len(buf) - pos:
        raise DecodeError(f"{what}: {n} tagged fields cannot fit in {len(buf) - pos} bytes")
    unknown: dict[int, bytes] = {}
    for _ in range(n):
        tag, pos = p.read_uvarint(buf, pos)
        size, pos = p.read_uvarint(buf, pos)
        end = pos + size
        if end > len(buf):
            raise DecodeError(f"{what}: tagged field {tag} of {size} bytes overruns the buffer")
        k = known.get(tag)
        if k is None:
            unknown[tag] = bytes(buf[pos:end])
        else:
            value, q = k[1](buf[:end], pos)
            if q != end:
                raise DecodeError(f"{what}: tagged field {tag} ({k[0]}) has {end - q} extra bytes")
            setattr(obj, k[0], value)
        pos = end
    obj.unknown_tagged_fields = unknown
    return pos


def _write_tags(
    out: bytearray, obj: Any, known: tuple[tuple[int, str, Any, Any], ...], unknown: dict[int, bytes]
) -> None:
    items: list[tuple[int, Any]] = []
    for tag, attr, default, enc in known:
        value = getattr(obj, attr)
        if value != default:
            data = bytearray()
            enc(value, data)
            items.append((tag, data))
    if unknown:
        items.extend(unknown.items())
        items.sort(key=itemgetter(0))
    p.write_uvarint(out, len(items))
    for tag, data in items:
        p.write_uvarint(out, tag)
        p.write_uvarint(out, len(data))
        out += data


def _uvarint_size(value: int) -> int:
    """Bytes of ``value`` as an unsigned varint (``write_uvarint``), without writing it."""
    if value < 0:
        raise EncodeError(f"unsigned varint out of range: {value}")
    return (value.bit_length() + 6) // 7 or 1


def _size_string(value: str | None, compact: bool, nullable: bool, what: str) -> int:
    """Bytes ``write_string`` would append for ``value``."""
    if value is None:
        if not nullable:
            raise EncodeError(f"{what}: null is not allowed in this version")
        return 1 if compact else 2
    n = len(value) if value.isascii() else len(value.encode("utf-8"))
    if compact:
        return ((n + 1).bit_length() + 6) // 7 + n if n >= 127 else n + 1
    if n > 0x7FFF:
        raise EncodeError(f"{what}: string of {n} bytes is longer than 32767")
    return n + 2


def _size_bytes(value: Any, compact: bool, nullable: bool, what: str) -> int:
    """Bytes ``write_bytes`` would append for ``value`` (bytes, bytearray or memoryview)."""
    if value is None:
        if not nullable:
            raise EncodeError(f"{what}: null is not allowed in this version")
        return 1 if compact else 4
    n = len(value)
    if compact:
        return ((n + 1).bit_length() + 6) // 7 + n if n >= 127 else n + 1
    return n + 4


def _size_tags(
    obj: Any, known: tuple[tuple[int, str, Any, Any], ...], unknown: dict[int, bytes]
) -> int:
    """Bytes ``_write_tags`` would append: the count, then tag, length and data of each
    known tagged field that differs from its default and of each unknown one."""
    count = 0
    total = 0
    for tag, attr, default, sz in known:
        value = getattr(obj, attr)
        if value != default:
            n = sz(value)
            count += 1
            total += _uvarint_size(tag) + _uvarint_size(n) + n
    for tag, data in unknown.items():
        n = len(data)
        count += 1
        total += _uvarint_size(tag) + _uvarint_size(n) + n
    return _uvarint_size(count) + total


_BASE_NS: dict[str, Any] = {
    "_new": object.__new__,
    "_pack": struct.pack,
    "_unpack": struct.unpack_from,
    "_i8": struct.Struct(">b").unpack_from,
    "_rstr": p.read_string,
    "_rbytes": p.read_bytes,
    "_ruuid": p.read_uuid,
    "_ralen": p.read_array_len,
    "_wstr": p.write_string,
    "_wbytes": p.write_bytes,
    "_wuuid": p.write_uuid,
    "_walen": p.write_array_len,
    "_rtags": _read_tags,
    "_wtags": _write_tags,
    "_uvs": _uvarint_size,
    "_sstr": _size_string,
    "_sbytes": _size_bytes,
    "_stags": _size_tags,
    "DecodeError": DecodeError,
    "EncodeError": EncodeError,
}


class _Compiler:
    """Writes the decoder/encoder source for one message class at one version."""

    def __init__(self, version: int, flexible: bool) -> None:
        self.version = version
        self.flexible = flexible
        self.ns: dict[str, Any] = dict(_BASE_NS)
        self.src: list[str] = []
        self.done: dict[type, tuple[str, str]] = {}
        self.protos: dict[type, Any] = {}
        self.differs_done: dict[type, str] = {}
        self.sized: dict[type, str] = {}
        self.n = 0

    def const(self, value: Any, prefix: str = "_k") -> str:
        self.n += 1
        name = f"{prefix}{self.n}"
        self.ns[name] = value
        return name

    def fresh(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    # -- field helpers ---------------------------------------------------------------

    def compact(self, f: F) -> bool:
        if f.flexible_override:
            return f.flexible is not None and f.flexible[0] <= self.version <= f.flexible[1]
        return self.flexible

    def default_expr(self, cls: type, f: F) -> tuple[str, str]:
        """(expression creating a fresh default, name of a value to compare against).

        The defaults are read off an instance built with no arguments: immutable ones are
        shared, a list becomes ``[]`` and a nested struct a call of its class.
        """
        proto = self.protos.get(cls)
        if proto is None:
            proto = self.protos[cls] = cls()
        value = getattr(proto, f.name)
        if isinstance(value, _IMMUTABLE):
            name = self.const(value, "_d")
            return name, name
        if type(value) is list and not value:
            return "[]", self.const([], "_d")
        if not isinstance(value, StructBase):
            raise TypeError(f"{cls.__name__}.{f.name}: unexpected default {value!r}")
        factory = type(value)
        fname = self.const(factory, "_f")
        return f"{fname}()", self.const(factory(), "_d")

    def differs(self, cls: type, f: F, src: str) -> str:
        """An expression true when ``src`` (the value of ``f``) != its default.

        For a nested struct this calls a generated check of its fields (see
        :meth:`struct_differs`) instead of ``!=``, which builds two tuples per call: Fetch
        responses compare three tagged structs per partition with their defaults.
        """
        proto = self.protos.get(cls)
        if proto is None:
            proto = self.protos[cls] = cls()
        value = getattr(proto, f.name)
        if isinstance(value, StructBase):
            return f"{self.struct_differs(type(value))}({src})"
        _, cmp = self.default_expr(cls, f)
        return f"{src} != {cmp}"

    def struct_differs(self, cls: type) -> str:
        """Name of ``def f(v)``: ``v != cls()``, field by field (False only for an instance
        of exactly ``cls`` whose every field equals its default, as dataclass ``==``)."""
        name = self.differs_done.get(cls)
        if name is not None:
            return name
        name = self.differs_done[cls] = self.fresh("_nd_" + cls.__name__)
        C = self.const(cls, "_C")
        schema: tuple[F, ...] = cls.SCHEMA  # type: ignore[attr-defined]
        terms = [f"v.__class__ is not {C}"]
        terms += [self.differs(cls, f, f"v.{f.name}") for f in schema]
        terms.append(f"v.unknown_tagged_fields != {self.const({}, '_d')}")
        self.src.append(f"def {name}(v):\n    return " + " or ".join(terms))
        return name

    def dec_value(self, f: F, target: str, what: str, ind: str) -> list[str]:
        """Lines decoding one (non-run) field into ``target``."""
        v = self.version
        w = self.const(what, "_w")
        compact = self.compact(f)
        nullable = f.nullable_in(v)
        if f.array:
            n = self.fresh("n")
            lines = [f"{ind}{n}, pos = _ralen(buf, pos, {compact}, {w})", f"{ind}if {n} < 0:"]
            if nullable:
                lines.append(f"{ind}    {target} = None")
            else:
                lines.append(f"{ind}    raise DecodeError({w} + ': null array in a version that cannot be null')")
            lines.append(f"{ind}else:")
            ind2 = ind + "    "
            if f.kind in _FIXED:
                code, width = _FIXED[f.kind]
                lines += [
                    f"{ind2}if {n} * {width} > len(buf) - pos:",
                    f"{ind2}    raise DecodeError({w} + ': array overruns the buffer')",
                    f"{ind2}{target} = list(_unpack('>%d{code}' % {n}, buf, pos))",
                    f"{ind2}pos += {n} * {width}",
                ]
                return lines
            lst = self.fresh("l")
            e = self.fresh("e")
            lines += [f"{ind2}{lst} = []", f"{ind2}for _ in range({n}):"]
            lines += self.dec_scalar(f, e, w, compact, False, ind2 + "    ")
            lines += [f"{ind2}    {lst}.append({e})", f"{ind2}{target} = {lst}"]
            return lines
        return self.dec_scalar(f, target, w, compact, nullable, ind)

    def dec_scalar(self, f: F, target: str, w: str, compact: bool, nullable: bool, ind: str) -> list[str]:
        k = f.kind
        if k in _FIXED:
            code, width = _FIXED[k]
            s = self.const(struct.Struct(">" + code).unpack_from, "_u")
            return [f"{ind}({target},) = {s}(buf, pos)", f"{ind}pos += {width}"]
        if k == "string":
            return [f"{ind}{target}, pos = _rstr(buf, pos, {compact}, {nullable}, {w})"]
        if k in ("bytes", "records"):
            zc = k == "records"
            return [f"{ind}{target}, pos = _rbytes(buf, pos, {compact}, {nullable}, {w}, {zc})"]
        if k == "uuid":
            return [f"{ind}{target}, pos = _ruuid(buf, pos, {w})"]
        assert f.struct is not None
        dec, _ = self.struct(f.struct)
        if nullable:
            m = self.fresh("m")
            return [
                f"{ind}({m},) = _i8(buf, pos)",
                f"{ind}pos += 1",
                f"{ind}if {m} < 0:",
                f"{ind}    {target} = None",
                f"{ind}else:",
                f"{ind}    {target}, pos = {dec}(buf, pos)",
            ]
        return [f"{ind}{target}, pos = {dec}(buf, pos)"]

    def enc_value(self, f: F, src: str, what: str, ind: str) -> list[str]:
        v = self.version
        w = self.const(what, "_w")
        compact = self.compact(f)
        nullable = f.nullable_in(v)
        if f.array:
            lines = [f"{ind}if {src} is None:"]
            if nullable:
                lines.append(f"{ind}    _walen(out, -1, {compact})")
            else:
                lines.append(f"{ind}    raise EncodeError({w} + ': null array in a version that cannot be null')")
            lines += [f"{ind}else:", f"{ind}    _walen(out, len({src}), {compact})"]
            if f.kind in _FIXED:
                code, _ = _FIXED[f.kind]
                lines.append(f"{ind}    out += _pack('>%d{code}' % len({src}), *{src})")
                return lines
            e = self.fresh("e")
            lines.append(f"{ind}    for {e} in {src}:")
            lines += self.enc_scalar(f, e, w, compact, False, ind + "        ")
            return lines
        return self.enc_scalar(f, src, w, compact, nullable, ind)

    def enc_scalar(self, f: F, src: str, w: str, compact: bool, nullable: bool, ind: str) -> list[str]:
        k = f.kind
        if k in _FIXED:
            code, _ = _FIXED[k]
            s = self.const(struct.Struct(">" + code).pack, "_p")
            return [f"{ind}out += {s}({src})"]
        if k == "string":
            return [f"{ind}_wstr(out, {src}, {compact}, {nullable}, {w})"]
        if k in ("bytes", "records"):
            return [f"{ind}_wbytes(out, {src}, {compact}, {nullable}, {w})"]
        if k == "uuid":
            return [f"{ind}_wuuid(out, {src}, {w})"]
        assert f.struct is not None
        _, enc = self.struct(f.struct)
        if nullable:
            return [
                f"{ind}if {src} is None:",
                f"{ind}    out.append(255)",
                f"{ind}else:",
                f"{ind}    out.append(1)",
                f"{ind}    {enc}({src}, out)",
            ]
        return [f"{ind}{enc}({src}, out)"]

    # -- structs ---------------------------------------------------------------------

    def struct(self, cls: type) -> tuple[str, str]:
        """Compile ``cls`` (and what it contains); return (decoder, encoder) names."""
        if cls in self.done:
            return self.done[cls]
        dname, ename = self.fresh("_dec_" + cls.__name__), self.fresh("_enc_" + cls.__name__)
        self.done[cls] = (dname, ename)
        v, flex = self.version, self.flexible
        C = self.const(cls, "_C")
        schema: tuple[F, ...] = cls.SCHEMA  # type: ignore[attr-defined]
        regular = [f for f in schema if f.in_version(v) and not f.tagged_in(v)]
        tagged = [f for f in schema if flex and f.in_version(v) and f.tagged_in(v)]
        absent = [f for f in schema if not (f in regular or f in tagged)]
        name = cls.__name__

        dec = [f"def {dname}(buf, pos):", f"    o = _new({C})"]
        enc = [f"def {ename}(o, out):"]
        i = 0
        while i < len(regular):
            f = regular[i]
            if f.kind in _FIXED and not f.array:
                run = [f]
                while (
                    i + len(run) < len(regular)
                    and regular[i + len(run)].kind in _FIXED
                    and not regular[i + len(run)].array
                ):
                    run.append(regular[i + len(run)])
                fmt = ">" + "".join(_FIXED[r.kind][0] for r in run)
                st = struct.Struct(fmt)
                u = self.const(st.unpack_from, "_u")
                pk = self.const(st.pack, "_p")
                targets = ", ".join(f"o.{r.name}" for r in run)
                dec += [f"    ({targets},) = {u}(buf, pos)", f"    pos += {st.size}"]
                enc.append(f"    out += {pk}({targets})")
                i += len(run)
                continue
            dec += self.dec_value(f, f"o.{f.name}", f"{name}.{f.name}", "    ")
            enc.append(f"    x = o.{f.name}")
            enc += self.enc_value(f, "x", f"{name}.{f.name}", "    ")
            i += 1
        for f in absent + tagged:
            make, _ = self.default_expr(cls, f)
            dec.append(f"    o.{f.name} = {make}")
        for f in absent:
            if f.ignorable:
                continue
            msg = self.const(
                f"{name}.{f.name}: a non-default value cannot be sent in version {v}", "_w"
            )
            enc += [f"    if {self.differs(cls, f, 'o.' + f.name)}:", f"        raise EncodeError({msg})"]
        if flex:
            known: dict[int, tuple[str, str]] = {}
            enc_known: list[tuple[int, str, str, str]] = []
            nondefault: list[str] = []
            for f in tagged:
                assert f.tag is not None
                tdec = self.fresh("_tdec")
                tenc = self.fresh("_tenc")
                body = [f"def {tdec}(buf, pos):"]
                body += self.dec_value(f, "x", f"{name}.{f.name}", "    ")
                body.append("    return x, pos")
                body += [f"def {tenc}(x, out):"]
                body += self.enc_value(f, "x", f"{name}.{f.name}", "    ")
                self.src.append("\n".join(body))
                known[f.tag] = (f.name, tdec)
                _, cmp = self.default_expr(cls, f)
                enc_known.append((f.tag, f.name, cmp, tenc))
                nondefault.append(self.differs(cls, f, "o." + f.name))
            w = self.const(name, "_w")
            kd = self.fresh("_tags")
            items = ", ".join(f"{t}: ({a!r}, {fn})" for t, (a, fn) in sorted(known.items()))
            self.src.append(f"{kd} = {{{items}}}")
            dec += [
                "    if buf[pos] == 0:",
                "        pos += 1",
                "        o.unknown_tagged_fields = {}",
                "    else:",
                f"        pos = _rtags(buf, pos, o, {kd}, {w})",
            ]
            ke = self.fresh("_tagenc")
            entries = "".join(f"({t}, {a!r}, {c}, {fn}), " for t, a, c, fn in enc_known)
            self.src.append(f"{ke} = ({entries})")
            cond = " or ".join(["u", *nondefault])
            enc += [
                "    u = o.unknown_tagged_fields",
                f"    if {cond}:",
                f"        _wtags(out, o, {ke}, u)",
                "    else:",
                "        out.append(0)",
            ]
        else:
            dec.append("    o.unknown_tagged_fields = {}")
        dec.append("    return o, pos")
        if len(enc) == 1:
            enc.append("    pass")
        self.src.append("\n".join(dec))
        self.src.append("\n".join(enc))
        return dname, ename

    # -- size plans ------------------------------------------------------------------
    #
    # A size plan walks the same per-version field plan as the encoder but only adds up
    # widths: a constant for the fixed-width fields of a struct, length prefixes (varint or
    # fixed) plus payload lengths for strings, bytes, records and arrays, 16 per uuid, and
    # for flexible versions the tagged-field section (count, then tag, length and data of
    # each field the encoder would write).  It writes no bytes, and it raises the same
    # EncodeError the encoder would for a null that is not allowed, a non-default value in
    # a field the version lacks, or an over-long classic string.

    def size_value(self, f: F, src: str, what: str, ind: str) -> list[str]:
        """Lines adding the encoded size of ``src`` (the value of ``f``) to ``n``."""
        w = self.const(what, "_w")
        compact = self.compact(f)
        nullable = f.nullable_in(self.version)
        if not f.array:
            return self.size_scalar(f, src, w, compact, nullable, ind)
        lines = [f"{ind}if {src} is None:"]
        if nullable:
            lines.append(f"{ind}    n += {1 if compact else 4}")
        else:
            lines.append(f"{ind}    raise EncodeError({w} + ': null array in a version that cannot be null')")
        lines.append(f"{ind}else:")
        prefix = f"_uvs(len({src}) + 1)" if compact else "4"
        if f.kind in _FIXED:
            _, width = _FIXED[f.kind]
            lines.append(f"{ind}    n += {prefix} + {width} * len({src})")
            return lines
        lines.append(f"{ind}    n += {prefix}")
        if f.kind == "struct":
            assert f.struct is not None
            lines.append(f"{ind}    n += sum(map({self.size_struct(f.struct)}, {src}))")
            return lines
        e = self.fresh("e")
        lines.append(f"{ind}    for {e} in {src}:")
        lines += self.size_scalar(f, e, w, compact, False, ind + "        ")
        return lines

    def size_scalar(self, f: F, src: str, w: str, compact: bool, nullable: bool, ind: str) -> list[str]:
        k = f.kind
        if k in _FIXED:
            return [f"{ind}n += {_FIXED[k][1]}"]
        if k == "string":
            return [f"{ind}n += _sstr({src}, {compact}, {nullable}, {w})"]
        if k in ("bytes", "records"):
            return [f"{ind}n += _sbytes({src}, {compact}, {nullable}, {w})"]
        if k == "uuid":
            return [f"{ind}n += 16"]
        assert f.struct is not None
        sz = self.size_struct(f.struct)
        if nullable:
            return [f"{ind}n += 1 if {src} is None else 1 + {sz}({src})"]
        return [f"{ind}n += {sz}({src})"]

    def size_struct(self, cls: type) -> str:
        """Compile the size function of ``cls`` (and what it contains); return its name."""
        name = self.sized.get(cls)
        if name is not None:
            return name
        sname = self.sized[cls] = self.fresh("_size_" + cls.__name__)
        v, flex = self.version, self.flexible
        schema: tuple[F, ...] = cls.SCHEMA  # type: ignore[attr-defined]
        regular = [f for f in schema if f.in_version(v) and not f.tagged_in(v)]
        tagged = [f for f in schema if flex and f.in_version(v) and f.tagged_in(v)]
        absent = [f for f in schema if not (f in regular or f in tagged)]
        cname = cls.__name__
        fixed = sum(_FIXED[f.kind][1] for f in regular if f.kind in _FIXED and not f.array)
        body = [f"def {sname}(o):", f"    n = {fixed}"]
        for f in regular:
            if f.kind in _FIXED and not f.array:
                continue
            body.append(f"    x = o.{f.name}")
            body += self.size_value(f, "x", f"{cname}.{f.name}", "    ")
        for f in absent:
            if f.ignorable:
                continue
            msg = self.const(
                f"{cname}.{f.name}: a non-default value cannot be sent in version {v}", "_w"
            )
            body += [f"    if {self.differs(cls, f, 'o.' + f.name)}:", f"        raise EncodeError({msg})"]
        if flex:
            entries: list[str] = []
            nondefault: list[str] = []
            for f in tagged:
                tsz = self.fresh("_tsize")
                tbody = [f"def {tsz}(x):", "    n = 0"]
                tbody += self.size_value(f, "x", f"{cname}.{f.name}", "    ")
                tbody.append("    return n")
                self.src.append("\n".join(tbody))
                _, cmp = self.default_expr(cls, f)
                entries.append(f"({f.tag}, {f.name!r}, {cmp}, {tsz}), ")
                nondefault.append(self.differs(cls, f, "o." + f.name))
            ks = self.fresh("_tagsize")
            self.src.append(f"{ks} = ({''.join(entries)})")
            cond = " or ".join(["u", *nondefault])
            body += [
                "    u = o.unknown_tagged_fields",
                f"    if {cond}:",
                f"        n += _stags(o, {ks}, u)",
                "    else:",
                "        n += 1",
            ]
        body.append("    return n")
        self.src.append("\n".join(body))
        return sname

    def build_size(self, cls: type) -> tuple[Callable[[Any], int], str]:
        sname = self.size_struct(cls)
        source = "\n\n".join(self.src) + "\n"
        code = compile(source, f"<wire size plan {cls.__name__} v{self.version}>", "exec")
        exec(code, self.ns)
        return self.ns[sname], source

    def build(self, cls: type) -> tuple[Callable[..., Any], Callable[..., Any], str]:
        dname, ename = self.struct(cls)
        source = "\n\n".join(self.src) + "\n"
        code = compile(source, f"<wire plan {cls.__name__} v{self.version}>", "exec")
        exec(code, self.ns)
        return self.ns[dname], self.ns[ename], source


_PLANS: dict[tuple[type, int], tuple[Callable[..., Any], Callable[..., Any], str]] = {}


def _plan(cls: type, version: int) -> tuple[Callable[..., Any], Callable[..., Any], str]:
    plan = _PLANS.get((cls, version))
    if plan is None:
        valid = getattr(cls, "VALID_VERSIONS", None)
        if valid is None:
            raise TypeError(f"{cls.__name__} is not a top-level message class")
        if not 0 <= version <= valid[1]:
            raise ValueError(f"{cls.__name__} has no version {version} (spec range {valid})")
        fmin = cls.FLEXIBLE_MIN  # type: ignore[attr-defined]
        flexible = fmin is not None and version >= fmin
        plan = _Compiler(version, flexible).build(cls)
        _PLANS[(cls, version)] = plan
    return plan


def plan_source(cls: type, version: int) -> str:
    """The generated source of the (class, version) plan, for reading and debugging."""
    return _plan(cls, version)[2]


def decode_from(cls: type[T], version: int, buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[T, int]:
    """Decode one ``cls`` at ``version`` starting at ``pos``; return (message, end position)."""
    try:
        dec = _plan(cls, version)[0]
    except ValueError as e:
        raise DecodeError(str(e)) from None
    mv = buf if isinstance(buf, memoryview) else memoryview(buf)
    try:
        msg, end = dec(mv, pos)
    except DecodeError as e:
        raise DecodeError(f"{cls.__name__} v{version}: {e}") from None
    except _LOW_LEVEL as e:
        raise DecodeError(f"{cls.__name__} v{version}: truncated or malformed input ({e})") from None
    return msg, end


def decode(cls: type[T], version: int, buf: bytes | bytearray | memoryview) -> T:
    """Decode exactly the whole of ``buf`` as ``cls`` at ``version``.

    Records fields come back as zero-copy memoryview slices of ``buf``.
    """
    msg, end = decode_from(cls, version, buf, 0)
    if end != len(buf):
        raise DecodeError(f"{cls.__name__} v{version}: {len(buf) - end} unexpected trailing bytes")
    return msg


def encode_into(msg: Any, version: int, out: bytearray) -> None:
    """Append the encoding of ``msg`` at ``version`` to ``out``."""
    try:
        enc = _plan(type(msg), version)[1]
    except ValueError as e:
        raise EncodeError(str(e)) from None
    try:
        enc(msg, out)
    except EncodeError:
        raise
    except (struct.error, TypeError, AttributeError, ValueError, OverflowError) as e:
        raise EncodeError(f"{type(msg).__name__} v{version}: cannot encode ({e})") from None


def encode(msg: Any, version: int) -> bytes:
    """Encode ``msg`` at ``version`` (no size prefix, no header)."""
    out = bytearray()
    encode_into(msg, version, out)
    return bytes(out)


_SIZE_PLANS: dict[tuple[type, int], tuple[Callable[[Any], int], str]] = {}


def _size_plan(cls: type, version: int) -> tuple[Callable[[Any], int], str]:
    plan = _SIZE_PLANS.get((cls, version))
    if plan is None:
        valid = getattr(cls, "VALID_VERSIONS", None)
        if valid is None:
            raise TypeError(f"{cls.__name__} is not a top-level message class")
        if not 0 <= version <= valid[1]:
            raise ValueError(f"{cls.__name__} has no version {version} (spec range {valid})")
        fmin = cls.FLEXIBLE_MIN  # type: ignore[attr-defined]
        flexible = fmin is not None and version >= fmin
        plan = _Compiler(version, flexible).build_size(cls)
        _SIZE_PLANS[(cls, version)] = plan
    return plan


def size_plan_source(cls: type, version: int) -> str:
    """The generated source of the (class, version) size plan, for reading and debugging."""
    return _size_plan(cls, version)[1]


def size(msg: Any, version: int) -> int:
    """The number of bytes ``encode(msg, version)`` produces, computed without encoding.

    Walks a compiled size plan (see :meth:`_Compiler.size_value`); raises
    :class:`EncodeError` where ``encode`` would for the codec's rules.
    """
    try:
        sz = _size_plan(type(msg), version)[0]
    except ValueError as e:
        raise EncodeError(str(e)) from None
    try:
        return sz(msg)
    except EncodeError:
        raise
    except (struct.error, TypeError, AttributeError, ValueError, OverflowError) as e:
        raise EncodeError(f"{type(msg).__name__} v{version}: cannot size ({e})") from None

"""The field model the generated message modules are written in.

Each generated struct class carries ``SCHEMA``: a tuple of :class:`F`, one per
field in spec order.  The codec (``wire.codec``) reads it to build one
encoder/decoder plan per (class, version).  Version ranges are inclusive
``(lo, hi)`` pairs; ``MAX`` stands for Kafka's open-ended ``N+``.

The generated classes derive from :class:`StructBase`: plain classes with ``__slots__``
(the fields, in spec order, then ``unknown_tagged_fields``) and a generated keyword-only
``__init__``; equality and repr come from the base, driven by ``__slots__``.  They behave
like ``@dataclass(slots=True, kw_only=True)`` classes but cost no code generation at
import (a dataclass decorator costs ~1 ms per class; the broker imports ~150 of them).
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

MAX = 32767
"""Upper bound of an open-ended version range (``"3+"`` is ``(3, MAX)``)."""

ZERO_UUID = UUID(int=0)
"""Default of every uuid field (Kafka's ``Uuid.ZERO_UUID``)."""

Versions = tuple[int, int]

PRIMITIVES = frozenset(
    {
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
)


@dataclass(frozen=True, slots=True)
class F:
    """One field of a struct.

    ``kind`` is a primitive name (see :data:`PRIMITIVES`) or ``"struct"``, in which
    case ``struct`` is the class.  ``array`` marks ``[]type``.  ``flexible`` overrides
    the message's flexible versions for this field only (RequestHeader.ClientId is
    never compact).
    """

    name: str
    kind: str
    lo: int
    hi: int
    array: bool = False
    struct: type | None = None
    nullable: Versions | None = None
    tag: int | None = None
    tagged: Versions | None = None
    ignorable: bool = False
    flexible: Versions | None = None
    flexible_override: bool = False

    def in_version(self, version: int) -> bool:
        return self.lo <= version <= self.hi

    def nullable_in(self, version: int) -> bool:
        return self.nullable is not None and self.nullable[0] <= version <= self.nullable[1]

    def tagged_in(self, version: int) -> bool:
        return self.tagged is not None and self.tagged[0] <= version <= self.tagged[1]


class _Factory:
    """The default of a mutable field in a generated ``__init__``: "make a fresh one"."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<factory>"


FACTORY: Any = _Factory()
"""Sentinel default of list, dict and struct fields: ``__init__`` replaces it with a new
empty list / dict / default struct, so no two instances share a mutable default."""


def _install_eq(cls: type) -> Callable[[Any, Any], Any]:
    """Give ``cls`` its own ``__eq__``, the one ``@dataclass`` would write: a comparison of
    the tuples of field values.  Done on the first comparison of a class, not at import
    (most classes are never compared), and ~2x faster than a loop over ``__slots__``."""
    names: tuple[str, ...] = cls.__slots__  # type: ignore[attr-defined]
    for n in names:
        if not n.isidentifier():  # pragma: no cover - generated names are identifiers
            raise TypeError(f"{cls.__qualname__}: bad field name {n!r}")
    mine = "".join(f"self.{n}, " for n in names)
    theirs = "".join(f"other.{n}, " for n in names)
    src = (
        "def __eq__(self, other):\n"
        "    if other.__class__ is self.__class__:\n"
        f"        return ({mine}) == ({theirs})\n"
        "    return NotImplemented\n"
    )
    ns: dict[str, Any] = {}
    exec(compile(src, f"<{cls.__qualname__}.__eq__>", "exec"), ns)
    eq: Callable[[Any, Any], Any] = ns["__eq__"]
    eq.__qualname__ = f"{cls.__qualname__}.__eq__"
    cls.__eq__ = eq  # type: ignore[method-assign,assignment]
    return eq


class StructBase:
    """Base of every generated struct class: ``__eq__`` and ``__repr__`` over ``__slots__``.

    Equality is field-wise and only between instances of the very same class (like a
    dataclass: the tuples of field values are compared, so an identical object is equal
    to itself even if it is a NaN); instances are unhashable, as mutable dataclasses are.
    Importing a generated module runs no code generation: ``__eq__`` is specialised per
    class on its first comparison.
    """

    __slots__ = ()
    __match_args__ = ()
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        # replaced, on first use, by a per-class __eq__ comparing field tuples
        eq = _install_eq(self.__class__)
        result: bool = eq(self, other)
        return result

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        names: tuple[str, ...] = self.__slots__
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{self.__class__.__qualname__}({fields})"

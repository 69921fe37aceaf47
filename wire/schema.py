"""The field model the generated message modules are written in.

Each generated struct class carries ``SCHEMA``: a tuple of :class:`F`, one per
field in spec order.  The codec (``wire.codec``) reads it to build one
encoder/decoder plan per (class, version).  Version ranges are inclusive
``(lo, hi)`` pairs; ``MAX`` stands for Kafka's open-ended ``N+``.
"""

from __future__ import annotations

from dataclasses import dataclass
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

"""Hypothesis-built messages round-trip at every version; sizes agree.

Requests, responses, data specs and internal records alike: ``codec.size`` (a size plan
that writes nothing) == bytes ``codec.encode`` wrote == bytes ``codec.decode_from`` consumed.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import kbroker.wire.messages
import kbroker.wire.messages.internal
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kbroker.wire import codec
from kbroker.wire.messages import REQUESTS, RESPONSES
from kbroker.wire.schema import F

_INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
}


def _scalar(f: F, version: int, flexible: bool, nullable: bool) -> st.SearchStrategy[Any]:
    k = f.kind
    if k in _INT_RANGES:
        lo, hi = _INT_RANGES[k]
        s: st.SearchStrategy[Any] = st.integers(lo, hi)
    elif k == "bool":
        s = st.booleans()
    elif k == "float64":
        s = st.floats(allow_nan=False)
    elif k == "string":
        s = st.text(max_size=8)
    elif k in ("bytes", "records"):
        s = st.binary(max_size=12)
    elif k == "uuid":
        s = st.uuids()
    else:
        assert f.struct is not None
        s = message_strategy(f.struct, version, flexible)
    return st.none() | s if nullable else s


def _field(f: F, version: int, flexible: bool) -> st.SearchStrategy[Any]:
    nullable = f.nullable_in(version)
    if f.array:
        s = st.lists(_scalar(f, version, flexible, False), max_size=3)
        return st.none() | s if nullable else s
    return _scalar(f, version, flexible, nullable)


def message_strategy(cls: type, version: int, flexible: bool) -> st.SearchStrategy[Any]:
    """Messages of ``cls`` whose every field can be carried at ``version``."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    schema: tuple[F, ...] = cls.SCHEMA  # type: ignore[attr-defined]
    known_tags = set()
    for f in schema:
        if f.tag is not None:
            known_tags.add(f.tag)
        if not f.in_version(version):
            continue
        if f.tagged_in(version) and not flexible:
            continue
        fields[f.name] = _field(f, version, flexible)
    if flexible:
        free = [t for t in range(20, 30) if t not in known_tags]
        fields["unknown_tagged_fields"] = st.dictionaries(
            st.sampled_from(free), st.binary(max_size=4), max_size=2
        )
    return st.fixed_dictionaries(fields).map(lambda kw: cls(**kw))


def top_level_strategy(cls: type, version: int) -> st.SearchStrategy[Any]:
    fmin = cls.FLEXIBLE_MIN  # type: ignore[attr-defined]
    return message_strategy(cls, version, fmin is not None and version >= fmin)

CLASSES = [
    pytest.param(cls, id=cls.__name__)
    for key in sorted(REQUESTS)
    for cls in (REQUESTS[key], RESPONSES[key])
]


def _versioned(cls: type) -> st.SearchStrategy[tuple[int, Any]]:
    versions = st.integers(0, cls.VALID_VERSIONS[1])  # type: ignore[attr-defined]
    return versions.flatmap(lambda v: st.tuples(st.just(v), top_level_strategy(cls, v)))


def _round_trips(cls: type, max_examples: int) -> None:
    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(_versioned(cls))
    def check(case: tuple[int, Any]) -> None:
        version, msg = case
        data = codec.encode(msg, version)
        back, consumed = codec.decode_from(cls, version, data + b"\x00junk", 0)
        assert codec.size(msg, version) == len(data) == consumed
        assert back == msg
        assert codec.encode(back, version) == data

    check()


@pytest.mark.parametrize("cls", CLASSES)
def test_generated_messages_round_trip(cls: type) -> None:
    _round_trips(cls, 6)


def _data_classes() -> list[type]:
    """Top-level classes of the data specs (no api key) and of the internal records."""
    out = []
    for pkg in (kbroker.wire.messages, kbroker.wire.messages.internal):
        for info in pkgutil.iter_modules(pkg.__path__):
            if info.name.startswith("_") or info.ispkg:
                continue
            module = importlib.import_module(f"{pkg.__name__}.{info.name}")
            for name in module.__all__:
                cls = getattr(module, name)
                internal = pkg is kbroker.wire.messages.internal  # API_KEY: record type
                if hasattr(cls, "VALID_VERSIONS") and (internal or not hasattr(cls, "API_KEY")):
                    out.append(cls)
    return out


DATA_CLASSES = [pytest.param(cls, id=cls.__name__) for cls in _data_classes()]


@pytest.mark.parametrize("cls", DATA_CLASSES)
def test_generated_data_and_internal_records_round_trip(cls: type) -> None:
    _round_trips(cls, 10)

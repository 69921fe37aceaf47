"""The generated message classes behave like the keyword-only, slotted dataclasses they
replaced: keyword-only construction, spec defaults, a fresh mutable default per instance,
field-wise equality, a dataclass-style repr, ``__slots__`` and no ``__dict__``."""

from __future__ import annotations

import gc
import importlib
import inspect
import subprocess
import sys
import typing
import uuid
from pathlib import Path
from typing import Any

import pytest
from kbroker.wire.messages._index import INDEX
from kbroker.wire.schema import FACTORY, ZERO_UUID, F, StructBase

ROOT = Path(__file__).resolve().parents[2]


def _module_names() -> list[str]:
    out = []
    for path in sorted((ROOT / "wire" / "messages").rglob("*.py")):
        if path.name.startswith("_"):
            continue
        out.append(".".join(("kbroker", *path.relative_to(ROOT).with_suffix("").parts)))
    return out


MODULES = _module_names()


def _classes() -> list[type]:
    out = []
    for name in MODULES:
        mod = importlib.import_module(name)
        out += [getattr(mod, c) for c in mod.__all__]
    return out


CLASSES = _classes()
_INT_KINDS = {"int8", "int16", "uint16", "int32", "uint32", "int64"}


def _check_default(cls: type, f: F, value: Any) -> None:
    where = f"{cls.__name__}.{f.name}"
    if value is None:  # a "null" default, or a records field
        assert f.kind == "records" or f.nullable is not None or f.struct is not None, where
        return
    if f.array:
        assert value == [], where
    elif f.kind == "struct":
        assert f.struct is not None and type(value) is f.struct and value == f.struct(), where
    elif f.kind in _INT_KINDS:
        assert type(value) is int, where
    elif f.kind == "bool":
        assert type(value) is bool, where
    elif f.kind == "float64":
        assert type(value) is float, where
    elif f.kind == "string":
        assert type(value) is str, where
    elif f.kind == "bytes":
        assert value == b"", where
    elif f.kind == "uuid":
        assert value == ZERO_UUID, where
    else:  # pragma: no cover
        raise AssertionError(f"{where}: unexpected kind {f.kind}")


def test_every_module_was_found() -> None:
    assert len(MODULES) > 200
    assert len(CLASSES) > 450


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_class_shape_defaults_and_fresh_mutables(cls: type) -> None:
    schema: tuple[F, ...] = cls.SCHEMA  # type: ignore[attr-defined]
    names = tuple(f.name for f in schema) + ("unknown_tagged_fields",)
    assert issubclass(cls, StructBase)
    assert cls.__slots__ == names  # type: ignore[attr-defined]
    # the annotations a type checker sees: every field, in order, plus the class vars
    ann = [a for a in cls.__annotations__ if a not in ("SCHEMA", "API_KEY", "VALID_VERSIONS", "FLEXIBLE_MIN")]
    assert tuple(ann) == names
    # a keyword-only constructor with a default for every field
    params = list(inspect.signature(cls).parameters.values())
    assert [p.name for p in params] == list(names)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    assert all(p.default is not inspect.Parameter.empty for p in params)
    with pytest.raises(TypeError):
        cls(0)
    with pytest.raises(TypeError):
        cls(no_such_field=1)

    a, b = cls(), cls()
    assert not hasattr(a, "__dict__")
    with pytest.raises(AttributeError):
        a.no_such_field = 1
    for f in schema:
        _check_default(cls, f, getattr(a, f.name))
    assert a.unknown_tagged_fields == {}
    # mutable defaults are fresh per instance; nothing is the sentinel
    for n in names:
        va, vb = getattr(a, n), getattr(b, n)
        assert va is not FACTORY
        if isinstance(va, list | dict | StructBase):
            assert va is not vb, f"{cls.__name__}.{n} shared between instances"
    assert a == b
    assert (a != b) is False
    with pytest.raises(TypeError):
        hash(a)
    # repr: dataclass style, every field in order
    text = repr(a)
    assert text.startswith(f"{cls.__qualname__}(") and text.endswith(")")
    assert text == f"{cls.__qualname__}(" + ", ".join(f"{n}={getattr(a, n)!r}" for n in names) + ")"


def test_metadata_classes_in_detail() -> None:
    from kbroker.wire.messages.metadata_request import MetadataRequest, MetadataRequestTopic
    from kbroker.wire.messages.metadata_response import (
        MetadataResponse,
        MetadataResponseBroker,
        MetadataResponsePartition,
        MetadataResponseTopic,
    )

    assert (MetadataResponse.API_KEY, MetadataResponse.VALID_VERSIONS, MetadataResponse.FLEXIBLE_MIN) == (
        3,
        (0, 13),
        9,
    )
    r = MetadataResponse()
    assert (r.throttle_time_ms, r.brokers, r.cluster_id, r.controller_id) == (0, [], None, -1)
    assert r.cluster_authorized_operations == -2147483648
    t = MetadataResponseTopic()
    assert (t.name, t.topic_id, t.is_internal, t.topic_authorized_operations) == ("", ZERO_UUID, False, -2147483648)
    assert MetadataResponsePartition().leader_epoch == -1

    broker = MetadataResponseBroker(node_id=1, host="h", port=9092)
    assert repr(broker) == (
        "MetadataResponseBroker(node_id=1, host='h', port=9092, rack=None, unknown_tagged_fields={})"
    )
    assert broker == MetadataResponseBroker(node_id=1, host="h", port=9092)
    assert broker != MetadataResponseBroker(node_id=1, host="h", port=9093)
    assert broker != MetadataResponseBroker(node_id=1, host="h", port=9092, unknown_tagged_fields={5: b"x"})
    # only the same class compares equal, as with dataclasses (not even identical fields)
    assert MetadataRequestTopic() != MetadataResponseTopic()
    assert broker.__eq__(object()) is NotImplemented
    assert broker != (1, "h", 9092, None, {})

    # nested structures compare field-wise, recursively; passed lists are kept, not copied
    brokers = [broker]
    a = MetadataResponse(brokers=brokers, topics=[MetadataResponseTopic(name="t", topic_id=uuid.UUID(int=7))])
    assert a.brokers is brokers
    b = MetadataResponse(
        brokers=[MetadataResponseBroker(node_id=1, host="h", port=9092)],
        topics=[MetadataResponseTopic(name="t", topic_id=uuid.UUID(int=7))],
    )
    assert a == b
    b.topics[0].partitions.append(MetadataResponsePartition(partition_index=3))
    assert a != b
    assert "partitions=[MetadataResponsePartition(error_code=0, partition_index=3," in repr(b)

    # nullable arrays: None is a value of its own, distinct from the fresh-list default
    assert MetadataRequest().topics == []
    assert MetadataRequest(topics=None).topics is None
    # a NaN-free identity shortcut like tuples: an object is equal to itself
    assert a == a


def test_default_struct_fields_are_fresh_instances() -> None:
    candidates = [
        (cls, f) for cls in CLASSES for f in cls.SCHEMA if f.kind == "struct" and not f.array  # type: ignore[attr-defined]
    ]
    assert candidates, "expected some non-array struct fields (e.g. FetchResponse.CurrentLeader)"
    for cls, f in candidates:
        x, y = cls(), cls()
        vx, vy = getattr(x, f.name), getattr(y, f.name)
        if vx is None:
            continue
        assert vx is not vy and vx == vy
        setattr(vx, vx.__slots__[0], 12345)
        assert vx != vy


def test_float_default_and_recursive_repr() -> None:
    floats = [(cls, f) for cls in CLASSES for f in cls.SCHEMA if f.kind == "float64"]  # type: ignore[attr-defined]
    for cls, f in floats:
        assert isinstance(getattr(cls(), f.name), float)
    from kbroker.wire.messages.metadata_response import MetadataResponse

    r = MetadataResponse()
    r.brokers.append(r)  # type: ignore[arg-type]
    assert "brokers=[...]" in repr(r)


def test_top_level_classes_match_the_index() -> None:
    for key, (req_mod, req_cls, resp_mod, resp_cls, lo, hi, flex, _name) in INDEX.items():
        req = getattr(importlib.import_module(f"kbroker.wire.messages.{req_mod}"), req_cls)
        resp = getattr(importlib.import_module(f"kbroker.wire.messages.{resp_mod}"), resp_cls)
        for cls in (req, resp):
            assert key == cls.API_KEY
        assert (lo, hi) == req.VALID_VERSIONS
        assert flex == req.FLEXIBLE_MIN


TYPING_FILE = typing.__file__


def test_generated_modules_do_no_code_generation_at_import() -> None:
    """Executing a generated module body builds its classes with class statements and its
    SCHEMA with ``F(...)`` calls, and nothing else: no ``exec``/``compile``/``type()``, no
    ``@dataclass`` or namedtuple factory (which generate code per class at import).  Counted
    with a profile hook, so the check does not depend on how fast the machine is."""
    codes = []
    schema_entries = 0
    for name in MODULES:
        mod = importlib.import_module(name)
        assert not hasattr(mod, "dataclass"), name
        path = Path(mod.__file__ or "")
        codes.append((name, str(path), compile(path.read_text(), str(path), "exec")))
        schema_entries += sum(
            len(getattr(mod, c).SCHEMA) for c in dir(mod) if isinstance(getattr(mod, c), type)
            and issubclass(getattr(mod, c), StructBase) and getattr(mod, c).__module__ == name
        )
    f_init = F.__init__.__code__
    f_inits = 0
    foreign: list[str] = []
    c_calls: set[str] = set()
    current = ""

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal f_inits
        if event == "call":
            if frame.f_code is f_init:
                f_inits += 1
            elif frame.f_code.co_filename == TYPING_FILE and frame.f_code.co_name == "__getattr__":
                pass  # Python 3.13: `from typing import ...` may go through typing's module __getattr__
            elif frame.f_code.co_filename != current:  # not the module body or a class body
                foreign.append(f"{frame.f_code.co_filename}:{frame.f_code.co_name}")
        elif event == "c_call" and frame.f_code.co_filename == current:
            c_calls.add(getattr(arg, "__qualname__", repr(arg)))

    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection would run gc.callbacks (hypothesis installs one) in between
    try:
        for name, filename, code in codes:
            namespace = {"__name__": name}
            current = filename
            sys.setprofile(profile)
            try:
                exec(code, namespace)
            finally:
                sys.setprofile(None)
    finally:
        if gc_was_enabled:
            gc.enable()
    assert not foreign, foreign[:10]
    assert c_calls == {"__build_class__"}, c_calls
    assert f_inits == schema_entries


def test_import_wire_messages_imports_no_message_module_but_the_headers() -> None:
    code = (
        "import sys; import kbroker.wire.messages; "
        "print(sorted(m for m in sys.modules if m.startswith('kbroker.wire.messages.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    # ``wire`` (the parent package) imports the two header classes, nothing else
    assert out.stdout.strip() == (
        "['kbroker.wire.messages._index', 'kbroker.wire.messages.request_header', 'kbroker.wire.messages.response_header']"
    )


def test_codec_tells_default_tagged_structs_field_by_field() -> None:
    """The encoder's "is this tagged struct at its default?" check (a generated field-wise
    test, not ``!=``) agrees with ``==``: a default struct is not written, any difference
    (a field, unknown tags) is, and it decodes back equal."""
    from kbroker.wire.codec import decode, encode
    from kbroker.wire.messages.fetch_response import (
        FetchableTopicResponse,
        FetchResponse,
        LeaderIdAndEpoch,
        PartitionData,
    )

    def message(**kw: Any) -> FetchResponse:
        return FetchResponse(responses=[FetchableTopicResponse(topic="t", partitions=[PartitionData(**kw)])])

    plain = encode(message(), 12)
    assert encode(message(current_leader=LeaderIdAndEpoch()), 12) == plain
    assert LeaderIdAndEpoch() == LeaderIdAndEpoch(leader_id=-1, leader_epoch=-1)
    for leader in (
        LeaderIdAndEpoch(leader_id=1),
        LeaderIdAndEpoch(leader_epoch=0),
        LeaderIdAndEpoch(unknown_tagged_fields={9: b"x"}),
    ):
        data = encode(message(current_leader=leader), 12)
        assert len(data) > len(plain)
        back = decode(FetchResponse, 12, data)
        assert back.responses[0].partitions[0].current_leader == leader
        assert back == message(current_leader=leader)

"""Every (api key, version, request/response) round-trips; sizes agree.

``codec.size`` runs its own compiled size plan (no bytes are produced), so
``size == bytes written == bytes consumed`` checks the size plan, the encoder and the
decoder against each other.
"""

from __future__ import annotations

import importlib
import pkgutil

import kbroker.wire.messages
import kbroker.wire.messages.internal
import pytest
from kbroker.wire import codec
from kbroker.wire.messages import REQUESTS, RESPONSES

CASES = [
    pytest.param(cls, v, id=f"{cls.__name__}-v{v}")
    for key in sorted(REQUESTS)
    for cls in (REQUESTS[key], RESPONSES[key])
    for v in range(0, cls.VALID_VERSIONS[1] + 1)
]


def _data_classes() -> list[type]:
    out = []
    for pkg in (kbroker.wire.messages, kbroker.wire.messages.internal):
        for info in pkgutil.iter_modules(pkg.__path__):
            if info.name.startswith("_") or info.ispkg:
                continue
            module = importlib.import_module(f"{pkg.__name__}.{info.name}")
            for name in module.__all__:
                cls = getattr(module, name)
                # data specs, and internal records (whose API_KEY is their record type)
                internal = pkg is kbroker.wire.messages.internal
                if hasattr(cls, "VALID_VERSIONS") and (internal or not hasattr(cls, "API_KEY")):
                    out.append(cls)
    return out


DATA_CASES = [
    pytest.param(cls, v, id=f"{cls.__name__}-v{v}")
    for cls in _data_classes()
    for v in range(0, cls.VALID_VERSIONS[1] + 1)
]


def _check(cls: type, version: int) -> None:
    msg = cls()
    data = codec.encode(msg, version)
    back, consumed = codec.decode_from(cls, version, data + b"trailing", 0)
    assert codec.size(msg, version) == len(data) == consumed
    assert back == msg
    assert codec.encode(back, version) == data


@pytest.mark.parametrize(("cls", "version"), CASES)
def test_default_message_round_trips(cls: type, version: int) -> None:
    _check(cls, version)


@pytest.mark.parametrize(("cls", "version"), DATA_CASES)
def test_default_data_and_internal_record_round_trips(cls: type, version: int) -> None:
    _check(cls, version)


def test_every_api_key_has_both_directions() -> None:
    assert set(REQUESTS) == set(RESPONSES)
    assert len(REQUESTS) > 80
    for key in REQUESTS:
        assert REQUESTS[key].API_KEY == key == RESPONSES[key].API_KEY
    assert len(DATA_CASES) > 40

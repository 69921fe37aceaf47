"""What the request and response targets check after a successful decode."""

from __future__ import annotations

from typing import Any

from kbroker.wire import codec
from kbroker.wire.codec import plan_source
from kbroker.wire.exceptions import EncodeError


def compile_plans(classes: list[type]) -> None:
    """Compile the decode/encode plans of every version of ``classes`` now (the engine
    instruments the generated functions once, before fuzzing starts)."""
    for cls in classes:
        for version in range(cls.VALID_VERSIONS[1] + 1):  # type: ignore[attr-defined]
            plan_source(cls, version)
            codec.size_plan_source(cls, version)


def check_round_trip(cls: type, version: int, msg: Any) -> None:
    """A decoded message re-encodes, ``size`` agrees, and the bytes are a fixed point.

    The broker echoes decoded values (names, ids) into its answers, so whatever the
    decoder accepts the encoder must be able to write.
    """
    try:
        encoded = codec.encode(msg, version)
    except EncodeError as exc:
        raise AssertionError(
            f"{cls.__name__} v{version}: decoded but cannot re-encode: {exc}"
        ) from exc
    assert codec.size(msg, version) == len(encoded), f"{cls.__name__} v{version}: size mismatch"
    again = codec.decode(cls, version, encoded)
    assert codec.encode(again, version) == encoded, f"{cls.__name__} v{version}: not a fixed point"

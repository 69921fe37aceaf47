"""The generated message classes, one module per Kafka spec file.

``REQUESTS`` / ``RESPONSES`` map an API key to its request / response class.  They
import a module on first access only, so ``import wire.messages`` stays cheap
(broker start-up must not pay for ~190 modules it may never use).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, KeysView

from kbroker.wire.messages._index import INDEX


class LazyClassMap(dict[int, type]):
    """A ``dict[int, type]`` that imports each class the first time it is looked up.

    All keys are known from the start (``in``, ``len``, iteration need no import);
    reading a value imports its module.
    """

    def __init__(self, column: int) -> None:
        super().__init__()
        self._column = column

    def _load(self, key: int) -> type:
        row = INDEX[key]
        module = importlib.import_module(f"{__name__}.{row[self._column]!s}")
        cls: type = getattr(module, str(row[self._column + 1]))
        dict.__setitem__(self, key, cls)
        return cls

    def __missing__(self, key: int) -> type:
        if key not in INDEX:
            raise KeyError(key)
        return self._load(key)

    def get(self, key: int, default: type | None = None) -> type | None:  # type: ignore[override]
        return self[key] if key in INDEX else default

    def __contains__(self, key: object) -> bool:
        return key in INDEX

    def __iter__(self) -> Iterator[int]:
        return iter(INDEX)

    def __len__(self) -> int:
        return len(INDEX)

    def keys(self) -> KeysView[int]:  # type: ignore[override]
        return INDEX.keys()

    def values(self) -> list[type]:  # type: ignore[override]
        return [self[k] for k in INDEX]

    def items(self) -> list[tuple[int, type]]:  # type: ignore[override]
        return [(k, self[k]) for k in INDEX]

    def __repr__(self) -> str:
        return f"LazyClassMap({sorted(INDEX)})"


REQUESTS: dict[int, type] = LazyClassMap(0)
RESPONSES: dict[int, type] = LazyClassMap(2)

__all__ = ["INDEX", "REQUESTS", "RESPONSES"]

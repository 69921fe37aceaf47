"""REQUESTS/RESPONSES import their classes from the installed package (issue 10).

They once imported ``wire.messages.<module>``, the pre-rename top-level name: outside a
source checkout that import fails, and inside one it loads a second copy of every class.
"""

from __future__ import annotations

import kbroker.wire.messages as messages
from kbroker.wire.messages import INDEX, LazyClassMap


def test_every_class_comes_from_kbroker_wire_messages() -> None:
    for column in (0, 2):
        fresh = LazyClassMap(column)  # nothing cached: each lookup imports
        for key in INDEX:
            cls = fresh[key]
            assert cls.__module__.startswith(messages.__name__ + "."), (key, cls.__module__)
            assert cls is (messages.REQUESTS if column == 0 else messages.RESPONSES)[key]

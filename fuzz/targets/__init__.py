"""The fuzz targets: one module each, with ``seeds()``, ``prepare()`` and ``test_one_input``.

``prepare()`` runs once before fuzzing (e.g. compiles every codec plan, so the engine can
instrument the generated code); ``seeds()`` returns the seed corpus; ``test_one_input``
raises only when the target's property is violated.
"""

from __future__ import annotations

NAMES = (
    "requests",
    "responses",
    "records",
    "compression",
    "log_recovery",
    "groups",
    "transactions",
)

"""``/v1/faults``: add, list and delete fault rules (:mod:`kbroker.control.faults`).

- ``POST /v1/faults`` a rule -> 201 ``{"id", "rule", "hits", "remaining"}``; 400 for a
  rule that does not validate;
- ``GET /v1/faults`` -> ``{"faults": [{"id", "rule", "hits", "remaining"}, ...]}``;
- ``GET /v1/faults/{id}`` -> one of them, 404 for an unknown id;
- ``DELETE /v1/faults`` -> ``{"deleted": N}``; ``DELETE /v1/faults/{id}`` -> ``{"deleted": 1}``,
  404 for an unknown id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kbroker.control.api import ControlError, RouteHandler
from kbroker.control.faults import FaultRuleError

if TYPE_CHECKING:
    from kbroker.server import Broker


async def add_fault(broker: Broker, params: dict[str, str], body: Any) -> tuple[int, Any]:
    if body is None:
        raise ControlError(400, "POST a rule as a JSON object")
    try:
        rule = broker.fault_engine.add(body)
    except FaultRuleError as exc:
        raise ControlError(400, str(exc)) from None
    return 201, rule.describe()


async def list_faults(broker: Broker, params: dict[str, str], body: Any) -> tuple[int, Any]:
    return 200, {"faults": broker.fault_engine.describe()}


async def get_fault(broker: Broker, params: dict[str, str], body: Any) -> tuple[int, Any]:
    rule = broker.fault_engine.get(int(params["id"]))
    if rule is None:
        raise ControlError(404, f"no fault rule {params['id']}")
    return 200, rule.describe()


async def delete_faults(broker: Broker, params: dict[str, str], body: Any) -> tuple[int, Any]:
    count = len(broker.fault_engine.rules)
    broker.fault_engine.clear()
    return 200, {"deleted": count}


async def delete_fault(broker: Broker, params: dict[str, str], body: Any) -> tuple[int, Any]:
    if not broker.fault_engine.clear(int(params["id"])):
        raise ControlError(404, f"no fault rule {params['id']}")
    return 200, {"deleted": 1}


ROUTES: list[tuple[str, str, RouteHandler]] = [
    ("POST", r"/faults", add_fault),
    ("GET", r"/faults", list_faults),
    ("DELETE", r"/faults", delete_faults),
    ("GET", r"/faults/(?P<id>[0-9]{1,18})", get_fault),
    ("DELETE", r"/faults/(?P<id>[0-9]{1,18})", delete_fault),
]

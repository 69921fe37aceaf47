"""The control API (``kbroker.control.enabled``) of a broker process, over HTTP with urllib,
and the settings that turn it on at a free port."""

from __future__ import annotations

import json
import socket
import urllib.request
from typing import Any

HTTP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ControlClient:
    """``/v1/faults`` of one broker."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}/v1"

    def settings(self) -> dict[str, str]:
        return {
            "kbroker.http.listen": self.base.removeprefix("http://").removesuffix("/v1"),
            "kbroker.control.enabled": "true",
        }

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
            return json.loads(resp.read())

    def add_fault(self, rule: dict[str, Any]) -> int:
        return int(self._call("POST", "/faults", rule)["id"])

    def fault(self, fault_id: int) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", f"/faults/{fault_id}")
        return found

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

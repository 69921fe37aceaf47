"""The control API's HTTP plumbing (kbroker.control.api) and /v1/faults administration."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest
from control_harness import http

from kbroker.config import ConfigError, build_config
from kbroker.control.api import MAX_BODY_BYTES, ControlApi
from kbroker.control.faults import FaultRuleError
from kbroker.server import Broker
from kbroker.testing import BrokerThread


def test_the_control_api_is_absent_unless_enabled(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data", {"kbroker.http.listen": "127.0.0.1:0"})
    bt.start()
    try:
        assert bt.broker is not None and bt.broker.http is not None
        url = f"http://127.0.0.1:{bt.broker.http.port}/v1/faults"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url, timeout=10)
        assert err.value.code == 404
        # the engine is there all the same: the in-process API does not need HTTP
        fault_id = bt.add_fault({"api": "Metadata", "throttle_time_ms": 5})
        assert [f["id"] for f in bt.faults()] == [fault_id]
    finally:
        bt.close()


def test_enabling_it_without_an_http_listener_is_a_config_error(tmp_path: Path) -> None:
    config = build_config(
        listen="127.0.0.1:0",
        data_dir=str(tmp_path),
        overrides=["kbroker.control.enabled=true"],
        environ={},
    )
    with pytest.raises(ConfigError, match="kbroker.http.listen"):
        Broker(config)


def test_add_list_get_and_delete_rules(broker: BrokerThread) -> None:
    status, first = http(
        broker,
        "POST",
        "/faults",
        {"api": "Produce", "error": "NOT_LEADER_OR_FOLLOWER", "count": 3, "topic": "t"},
    )
    assert status == 201
    assert first == {
        "id": first["id"], "rule": {"api": "Produce", "error": "NOT_LEADER_OR_FOLLOWER", "count": 3, "topic": "t"},
        "hits": 0, "remaining": 3,
    }  # fmt: skip
    status, second = http(broker, "POST", "/faults", {"api": "Fetch", "delay_ms": 500})
    assert status == 201 and second["remaining"] is None
    status, listed = http(broker, "GET", "/faults")
    assert status == 200 and [f["id"] for f in listed["faults"]] == [first["id"], second["id"]]
    assert http(broker, "GET", f"/faults/{second['id']}") == (200, second)
    assert http(broker, "DELETE", f"/faults/{first['id']}") == (200, {"deleted": 1})
    assert http(broker, "DELETE", f"/faults/{first['id']}")[0] == 404
    assert http(broker, "GET", f"/faults/{first['id']}")[0] == 404
    assert http(broker, "DELETE", "/faults") == (200, {"deleted": 1})
    assert http(broker, "GET", "/faults") == (200, {"faults": []})


def test_the_python_api_sees_the_same_rules(broker: BrokerThread) -> None:
    via_http = http(broker, "POST", "/faults", {"api": "*", "throttle_time_ms": 10})[1]["id"]
    via_python = broker.add_fault({"api": 18, "delay_ms": 1})
    assert [f["id"] for f in broker.faults()] == [via_http, via_python]
    assert http(broker, "GET", "/faults")[1]["faults"] == broker.faults()
    broker.clear_faults(via_http)
    assert [f["id"] for f in broker.faults()] == [via_python]
    with pytest.raises(KeyError):
        broker.clear_faults(via_http)
    broker.clear_faults()
    assert broker.faults() == []
    with pytest.raises(FaultRuleError, match="unknown API"):
        broker.add_fault({"api": "Nope", "delay_ms": 1})


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"api": "Produc", "error": "NOT_LEADER_OR_FOLLOWER"}, "unknown API"),
        ({"api": 999, "error": "NOT_LEADER_OR_FOLLOWER"}, "unknown API key"),
        ({"api": "Produce", "error": "NOT_A_KAFKA_ERROR"}, "unknown Kafka error"),
        ({"api": "Produce", "error": "NONE"}, "unknown Kafka error"),
        ({"api": "Produce"}, "needs an effect"),
        ({"api": "Fetch", "delay_ms": "500"}, "delay_ms"),
        ({"api": "Fetch", "delay_ms": -1}, "delay_ms"),
        ({"api": "Fetch", "close_connection": 1}, "close_connection"),
        ({"api": "Fetch", "blackhole": True, "probability": 2}, "probability"),
        ({"api": "Fetch", "blackhole": True, "count": True}, "count"),
        ({"api": "Fetch", "blackhole": True, "topic": 7}, "topic"),
        ({"api": "Fetch", "blackhole": True, "partition": [-1]}, "partition"),
        ({"api": "Fetch", "blackhole": True, "nodes": 1}, "unknown rule field"),
        ({"api": "Fetch", "error": "NOT_LEADER_OR_FOLLOWER", "after_append": True}, "Produce"),
        ({"api": "Produce", "delay_ms": 5, "after_append": True}, "error"),
        ({"api": "Produce", "throttle_time_ms": 5, "error_message": "x"}, "error_message"),
        ([{"api": "Fetch", "delay_ms": 5}], "JSON object"),
    ],
)
def test_invalid_rules_are_400_with_the_reason(
    broker: BrokerThread, rule: object, message: str
) -> None:
    status, body = http(broker, "POST", "/faults", rule)
    assert status == 400
    assert message in body["error"]
    assert broker.faults() == []


def test_http_errors_are_json(broker: BrokerThread) -> None:
    status, body = http(broker, "POST", "/faults", raw=b"{not json")
    assert status == 400 and "not JSON" in body["error"]
    assert http(broker, "POST", "/faults")[0] == 400  # no body
    status, body = http(broker, "GET", "/nothing-here")
    assert status == 404 and "no such control route" in body["error"]
    assert http(broker, "GET", "/faults/x")[0] == 404
    status, body = http(broker, "PUT", "/faults", {"api": "*", "delay_ms": 1})
    assert status == 405 and "not allowed" in body["error"]
    status, body = http(broker, "POST", "/faults", raw=b" " * (MAX_BODY_BYTES + 1))
    assert status == 413


def test_route_tables_come_from_the_listed_modules(broker: BrokerThread) -> None:
    assert broker.broker is not None
    api = ControlApi(broker.broker, ("kbroker.control.faults_routes",))
    assert {(method, pattern.pattern) for method, pattern, _ in api.routes} >= {
        ("POST", "/faults"),
        ("GET", "/faults"),
    }
    # the exact HTTP routes still win over the /v1/ prefix
    assert broker.broker.http is not None
    with urllib.request.urlopen(
        f"http://127.0.0.1:{broker.broker.http.port}/healthz", timeout=10
    ) as resp:
        assert resp.read() == b"ok\n"

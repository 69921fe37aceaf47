"""The ``kbroker`` pytest fixture other projects use: a real broker their clients can reach."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def test_fixture_serves_a_real_client(kbroker) -> None:
    producer = KafkaProducer(bootstrap_servers=kbroker.bootstrap)
    producer.send("plugin-topic", b"hello").get(timeout=10)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=kbroker.bootstrap, consumer_timeout_ms=5000)
    consumer.assign([TopicPartition("plugin-topic", 0)])
    consumer.seek_to_beginning()
    assert [m.value for m in consumer] == [b"hello"]
    consumer.close()


def test_restart_keeps_the_port_and_the_data(kbroker) -> None:
    producer = KafkaProducer(bootstrap_servers=kbroker.bootstrap)
    producer.send("kept", b"x").get(timeout=10)
    producer.close()
    before = kbroker.bootstrap
    kbroker.restart()
    assert kbroker.bootstrap == before
    consumer = KafkaConsumer(bootstrap_servers=kbroker.bootstrap, consumer_timeout_ms=5000)
    consumer.assign([TopicPartition("kept", 0)])
    consumer.seek_to_beginning()
    assert [m.value for m in consumer] == [b"x"]
    consumer.close()


# -- the plugin is cheap for projects that never use it -----------------------------------

_CONFTEST = """
import json, os, sys

def pytest_sessionfinish(session):
    mods = sorted(m for m in sys.modules if m in ("wire", "log", "coordinator")
                  or m == "kbroker" or m.startswith("kbroker."))
    with open(os.environ["KBROKER_PLUGIN_MODULES_OUT"], "w") as f:
        json.dump(mods, f)
"""


def _run_pytest_elsewhere(tmp_path: Path, test_source: str) -> list[str]:
    """Run pytest on one test file in a directory outside this project (so only the
    installed entry point can bring the plugin in); return the kbroker modules loaded at
    the end of that session."""
    project = tmp_path / "other-project"
    project.mkdir(parents=True)
    (project / "conftest.py").write_text(_CONFTEST)
    (project / "test_it.py").write_text(test_source)
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_DISABLE_PLUGIN_AUTOLOAD"}
    env["KBROKER_PLUGIN_MODULES_OUT"] = str(out)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "test_it.py",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return list(json.loads(out.read_text()))


def test_plugin_imports_nothing_of_the_broker_until_a_test_asks_for_the_fixture(
    tmp_path: Path,
) -> None:
    unused = "def test_plain():\n    assert 1 + 1 == 2\n"
    assert _run_pytest_elsewhere(tmp_path / "a", unused) == ["kbroker", "kbroker.pytest_plugin"]
    used = "def test_uses(kbroker):\n    assert kbroker.bootstrap.startswith('127.0.0.1:')\n"
    loaded = _run_pytest_elsewhere(tmp_path / "b", used)
    # the fixture brought the broker in (the coordinator itself loads with the first group)
    assert {"kbroker.testing", "kbroker.server", "kbroker.wire", "kbroker.log"} <= set(loaded)
    assert not {"wire", "log", "coordinator"} & set(loaded)

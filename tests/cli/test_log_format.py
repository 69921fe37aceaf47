"""``--log-format json``: every stderr line is one JSON object with a ``message`` field, the
ready line, warnings, the stop line and errors included; ``text`` (the default) is unchanged."""

from __future__ import annotations

import json
import re
import signal
import socket
from pathlib import Path
from typing import Any

from cli_helpers import READY, Running, run_kbroker


def parse_lines(lines: list[str]) -> list[dict[str, Any]]:
    """Each non-empty line as a JSON object that has a string ``message``."""
    records = []
    for line in lines:
        if not line:
            continue
        record = json.loads(line)  # fails with the line if it is not JSON
        assert isinstance(record, dict), line
        assert isinstance(record.get("message"), str), line
        records.append(record)
    return records


def test_json_lines_from_start_to_stop(tmp_path: Path) -> None:
    data = tmp_path / "data"
    broker = Running(
        "--log-format", "json", "--log-level", "info", "--listen", "127.0.0.1:0",
        "--data-dir", str(data), "--set", "process.roles=broker", cwd=tmp_path,
    )
    try:
        broker.wait_for(re.compile(r'"event": "ready"'))
        before = parse_lines(broker.lines)
        ready = before[-1]
        assert ready["event"] == "ready" and ready["level"] == "INFO"
        # the message is the text line, word for word; the parts are fields too
        m = READY.match(ready["message"])
        assert m is not None, ready
        assert ready["listen"] == m["addr"] and ready["advertised"] == m["adv"]
        assert ready["data_dir"] == str(data)
        host, port = ready["listen"].rsplit(":", 1)
        socket.create_connection((host, int(port)), timeout=10).close()  # it does serve there
        warning = [r for r in before if r.get("event") == "ignored_properties"]
        assert [w["properties"] for w in warning] == [["process.roles"]]
    except BaseException:
        broker.kill()
        raise
    broker.proc.send_signal(signal.SIGTERM)
    code, err = broker.finish()
    assert code == 0, err
    records = parse_lines(err.splitlines())
    assert any(r["message"].startswith("stopped: ") and r["logger"] == "kbroker.server" for r in records), err


def test_text_is_the_default_and_stays_as_it_was(tmp_path: Path) -> None:
    broker = Running("--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    broker.wait_ready()
    assert READY.match(broker.lines[-1])
    broker.proc.send_signal(signal.SIGTERM)
    assert broker.finish()[0] == 0


def one_json_error(proc: Any, code: int, fragment: str) -> dict[str, Any]:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    records = parse_lines(proc.stderr.splitlines())
    assert len(records) == 1, proc.stderr
    (record,) = records
    assert record["level"] == "ERROR" and record["event"] == "error" and record["exit_code"] == code
    assert fragment in record["message"] and not record["message"].startswith("kbroker: error:")
    return record


def test_usage_errors_are_json(tmp_path: Path) -> None:
    one_json_error(run_kbroker("--log-format", "json", "--bogus", cwd=tmp_path), 2, "unrecognized arguments: --bogus")
    one_json_error(
        run_kbroker("--set", "num.partition=3", "--log-format=json", cwd=tmp_path), 2, "did you mean 'num.partitions'?"
    )


def test_machine_refusals_are_json(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    proc = run_kbroker("--log-format", "json", "--listen", "127.0.0.1:0", "--data-dir", str(afile), cwd=tmp_path)
    one_json_error(proc, 1, str(afile))

"""Every start-up failure: one ``kbroker: error:`` line, the right exit status, no traceback.

Exit 2 for usage and configuration mistakes, 1 for what the machine refused.  The tests run
as root, so "unwritable" is made real with a path under a regular file and with a read-only
tmpfs mount (when this machine lets us mount one).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, clean_env, run_kbroker

from kbroker.metadata import METADATA_FILE

USAGE, RUNTIME = 2, 1


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_kbroker("--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    assert_one_line_error(proc, RUNTIME, f"cannot listen on 127.0.0.1:{port}: address already in use")


def test_data_dir_under_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    proc = run_kbroker("--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "plain" / "data"), cwd=tmp_path)
    assert_one_line_error(proc, RUNTIME, "a parent is not a directory")


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("x")
    proc = run_kbroker("--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert_one_line_error(proc, RUNTIME, f"data dir {tmp_path / 'data'} is not a directory")


@contextlib.contextmanager
def read_only_mount(path: Path) -> Iterator[None]:
    path.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_data_dir_on_a_read_only_mount(tmp_path: Path) -> None:
    with read_only_mount(tmp_path / "ro"):
        proc = run_kbroker("--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "ro"), cwd=tmp_path)
        assert_one_line_error(proc, RUNTIME, "is not writable: read-only file system")
        below = run_kbroker("--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "ro" / "d"), cwd=tmp_path)
        assert_one_line_error(below, RUNTIME, "cannot create data dir")


def test_port_out_of_range(tmp_path: Path) -> None:
    proc = run_kbroker("--listen", "127.0.0.1:99999", "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    assert_one_line_error(proc, USAGE, "port 99999 out of range 0-65535")


def test_unknown_log_level(tmp_path: Path) -> None:
    proc = run_kbroker("--log-level", "verbose", cwd=tmp_path)
    assert_one_line_error(proc, USAGE, "argument --log-level: invalid choice: 'VERBOSE'")


def test_unknown_flag(tmp_path: Path) -> None:
    assert_one_line_error(run_kbroker("--lisen", "x", cwd=tmp_path), USAGE, "unrecognized arguments")


def test_unknown_property_gets_a_suggestion(tmp_path: Path) -> None:
    proc = run_kbroker("--set", "num.partition=3", cwd=tmp_path)
    assert_one_line_error(proc, USAGE, "unknown property 'num.partition' (from --set); did you mean 'num.partitions'?")


def test_unknown_property_without_a_near_name(tmp_path: Path) -> None:
    proc = run_kbroker("--set", "no.such.key=1", cwd=tmp_path)
    assert_one_line_error(proc, USAGE, "unknown property 'no.such.key'")


def test_environment_typo_is_refused(tmp_path: Path) -> None:
    proc = run_kbroker(cwd=tmp_path, env=clean_env(KBROKER_PROP_NUM_PARTITION="3"))
    assert_one_line_error(
        proc, USAGE, "unknown property 'num.partition' (from KBROKER_PROP_NUM_PARTITION); did you mean 'num.partitions'?"
    )


def test_out_of_range_value_names_the_range(tmp_path: Path) -> None:
    proc = run_kbroker("--set", "num.partitions=-5", cwd=tmp_path)
    assert_one_line_error(proc, USAGE, "invalid value -5 for num.partitions: value must be at least 1")


def test_badly_typed_value(tmp_path: Path) -> None:
    proc = run_kbroker("--set", "auto.create.topics.enable=yes", cwd=tmp_path)
    assert_one_line_error(proc, USAGE, "invalid value 'yes' for auto.create.topics.enable (boolean)")


def test_missing_config_file(tmp_path: Path) -> None:
    proc = run_kbroker("--config", str(tmp_path / "nope.properties"), cwd=tmp_path)
    assert_one_line_error(proc, USAGE, "cannot read config file")


def test_tls_listener_without_keystore_is_a_one_line_error(tmp_path: Path) -> None:
    props = tmp_path / "server.properties"
    props.write_text("listeners=SSL://:9093\n")
    proc = run_kbroker("--config", str(props), cwd=tmp_path)
    assert_one_line_error(proc, RUNTIME, "listener SSL: a TLS listener needs ssl.keystore.location or ssl.keystore.key")


def test_listener_without_protocol_is_refused(tmp_path: Path) -> None:
    proc = run_kbroker(
        "--set", "listeners=PLAINTEXT://:9092,OTHER://:9094",
        "--set", "listener.security.protocol.map=PLAINTEXT:PLAINTEXT",
        cwd=tmp_path,
    )
    assert_one_line_error(proc, USAGE, "OTHER has no security protocol in listener.security.protocol.map")


def test_malformed_listen_address(tmp_path: Path) -> None:
    proc = run_kbroker("--listen", "::1:9092", cwd=tmp_path)
    assert_one_line_error(proc, USAGE, "--listen must be HOST:PORT (IPv6 as [ADDR]:PORT)")


@pytest.mark.parametrize("uvloop", ["installed", "blocked"])
def test_damaged_metadata_is_one_line_and_debug_shows_where(tmp_path: Path, uvloop: str) -> None:
    """With or without uvloop; the traceback --log-level debug shows is not chained to the
    ModuleNotFoundError of a missing uvloop (the loop no longer runs inside that handler)."""
    data = tmp_path / "d"
    data.mkdir()
    (data / METADATA_FILE).write_text("{not json")
    block = "sys.modules['uvloop'] = None; " if uvloop == "blocked" else ""
    args = ["--listen", "127.0.0.1:0", "--data-dir", str(data)]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        code = f"import sys; {block}from kbroker.cli import main; sys.exit(main({[*args, *extra]!r}))"
        return subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60
        )

    assert_one_line_error(run(), RUNTIME, "JSONDecodeError")
    debug = run("--log-level", "debug")
    assert debug.returncode == RUNTIME
    assert "Traceback" in debug.stderr
    assert "During handling of the above exception" not in debug.stderr
    assert "No module named 'uvloop'" not in debug.stderr


def test_unreadable_metadata_file_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "d"
    (data / METADATA_FILE).mkdir(parents=True)  # a directory where the file should be
    proc = run_kbroker("--listen", "127.0.0.1:0", "--data-dir", str(data), cwd=tmp_path)
    assert_one_line_error(proc, RUNTIME, f"Is a directory: {data / METADATA_FILE}")

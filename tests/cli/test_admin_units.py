"""The admin CLI's pure parts: tables, kcat-style formats, option parsing, the partitioner,
the reset planner, and the verbs' command line (usage errors, unreachable broker)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, clean_env, run_kbroker

from kbroker.commands import build_parser
from kbroker.commands.group import _assignment, plan_reset
from kbroker.commands.output import (
    ConsumedRecord,
    UsageError,
    compile_format,
    format_ms,
    format_record,
    parse_datetime_ms,
    parse_kv,
    parse_topic_partition,
    record_json,
    table,
)
from kbroker.commands.produce import murmur2, partition_for, split_line

REC = ConsumedRecord("t", 2, 41, 1_700_000_000_123, b"k1", b"v\x00x", [("a", b"1"), ("b", None)])


def test_table_aligns_columns_and_prints_none_as_empty() -> None:
    out = table(["NAME", "N"], [["orders", 3], ["a", None]])
    assert out == "NAME    N\norders  3\na\n"


def test_format_tokens_and_escapes_like_kcat() -> None:
    parts = compile_format("%t/%p@%o %k=%v (%K,%S) %T [%h] 100%%\\t|\\n")
    assert format_record(parts, REC) == b"t/2@41 k1=v\x00x (2,3) 1700000000123 [a=1,b=] 100%\t|\n"
    assert format_record(compile_format("%s"), REC) == b"v\x00x"  # %s is kcat's name for the value


def test_null_key_and_value_print_empty_with_length_minus_one() -> None:
    rec = ConsumedRecord("t", 0, 0, 5, None, None, [])
    assert format_record(compile_format("[%k][%v] %K %S [%h]"), rec) == b"[][] -1 -1 []"


@pytest.mark.parametrize("bad", ["%x", "abc%", "%"])
def test_unknown_format_token_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError, match="unknown token"):
        compile_format(bad)


def test_record_json_shape() -> None:
    assert record_json(REC) == {
        "topic": "t", "partition": 2, "offset": 41, "timestamp": 1_700_000_000_123, "key": "k1",
        "value": "v\x00x", "headers": [{"key": "a", "value": "1"}, {"key": "b", "value": None}],
    }
    odd = ConsumedRecord("t", 0, 0, 0, None, b"\xff", [])
    assert record_json(odd)["key"] is None and record_json(odd)["value"] == "\\xff"


def test_parse_kv() -> None:
    assert parse_kv(["a=1", "b=x=y", "a=2", "c="], "--config") == {"a": "2", "b": "x=y", "c": ""}
    for bad in ("novalue", "=v"):
        with pytest.raises(UsageError, match="--config takes KEY=VALUE"):
            parse_kv([bad], "--config")


def test_parse_topic_partition() -> None:
    assert parse_topic_partition("orders") == ("orders", None)
    assert parse_topic_partition("orders:3") == ("orders", 3)
    for bad in ("orders:x", ":3"):
        with pytest.raises(UsageError):
            parse_topic_partition(bad)


def test_parse_datetime_ms_utc_by_default_and_with_zones() -> None:
    assert parse_datetime_ms("2023-11-14T22:13:20Z") == 1_700_000_000_000
    assert parse_datetime_ms("2023-11-14T22:13:20") == 1_700_000_000_000
    assert parse_datetime_ms("2023-11-15T00:13:20.5+02:00") == 1_700_000_000_500
    with pytest.raises(UsageError, match="ISO 8601"):
        parse_datetime_ms("yesterday")
    assert format_ms(1_700_000_000_500) == "2023-11-14T22:13:20.500Z"
    assert format_ms(-1) == "-"


def test_murmur2_matches_kafkas_test_vectors() -> None:
    # Kafka's UtilsTest.testMurmur2 (signed 32-bit results).
    vectors = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for data, signed in vectors.items():
        assert murmur2(data) == signed & 0xFFFFFFFF, data
    assert partition_for(b"21", 7) == (-973932308 & 0x7FFFFFFF) % 7


def test_split_line() -> None:
    assert split_line(b"k:v:w", b":") == (b"k", b"v:w")
    assert split_line(b"nokey", b":") == (None, b"nokey")
    assert split_line(b"k:v", None) == (None, b"k:v")
    assert split_line(b":v", b":") == (b"", b"v")


def test_plan_reset_clamps_to_the_log() -> None:
    assert plan_reset(5, 20, to_earliest=True) == 5
    assert plan_reset(5, 20, to_latest=True) == 20
    assert plan_reset(5, 20, to_offset=2) == 5
    assert plan_reset(5, 20, to_offset=25) == 20
    assert plan_reset(5, 20, to_offset=9) == 9
    assert plan_reset(5, 20, by_time=12) == 12
    assert plan_reset(5, 20, by_time=-1) == 20  # a time after every record: the end


def test_assignment_of_a_consumer_member() -> None:
    from kbroker.wire.codec import encode
    from kbroker.wire.messages.consumer_protocol_assignment import (
        ConsumerProtocolAssignment,
        TopicPartition,
    )

    msg = ConsumerProtocolAssignment(assigned_partitions=[TopicPartition(topic="b", partitions=[2, 0]), TopicPartition(topic="a", partitions=[1])])
    data = (1).to_bytes(2, "big") + bytes(encode(msg, 1))
    assert _assignment("consumer", data) == [("a", [1]), ("b", [0, 2])]
    assert _assignment("consumer", b"") == []
    assert _assignment("connect", data) == []
    assert _assignment("consumer", b"\x00\x01\xff") == []


def test_parser_puts_names_first_and_options_after_the_verb() -> None:
    args = build_parser().parse_args(
        ["topic", "create", "a", "b", "--partitions", "6", "-c", "cleanup.policy=compact", "--bootstrap", "h:1", "--json"]
    )
    assert (args.names, args.partitions, args.config, args.bootstrap, args.json) == (
        ["a", "b"], 6, ["cleanup.policy=compact"], "h:1", True
    )
    args = build_parser().parse_args(["group", "reset-offsets", "g", "--topic", "t:1", "--to-datetime", "2024-01-01"])
    assert (args.name, args.topic, args.to_datetime, args.dry_run) == ("g", ["t:1"], "2024-01-01", False)


def test_reset_needs_exactly_one_target(tmp_path: Path) -> None:
    proc = run_kbroker("group", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest", cwd=tmp_path)
    assert_one_line_error(proc, 2, "not allowed with argument")
    proc = run_kbroker("group", "reset-offsets", "g", "--topic", "t", cwd=tmp_path)
    assert_one_line_error(proc, 2, "one of the arguments --to-earliest --to-latest --to-offset --to-datetime is required")


def test_missing_action_is_a_one_line_usage_error(tmp_path: Path) -> None:
    proc = run_kbroker("topic", cwd=tmp_path)
    assert_one_line_error(proc, 2, "see kbroker topic --help")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once closed


def test_unreachable_broker_is_one_line_exit_1(tmp_path: Path) -> None:
    port = _closed_port()
    proc = run_kbroker("topic", "list", "--bootstrap", f"127.0.0.1:{port}", cwd=tmp_path)
    assert_one_line_error(proc, 1, f"cannot connect to 127.0.0.1:{port}")
    proc = run_kbroker("topic", "list", "--bootstrap", "nonsense", cwd=tmp_path)
    assert_one_line_error(proc, 1, "--bootstrap takes HOST:PORT")


def test_bootstrap_from_the_environment(tmp_path: Path) -> None:
    port = _closed_port()
    proc = subprocess.run(
        [sys.executable, "-m", "kbroker", "group", "list"], cwd=tmp_path, capture_output=True, text=True,
        env=clean_env(KBROKER_BOOTSTRAP=f"127.0.0.1:{port}"), timeout=30, stdin=subprocess.DEVNULL,
    )
    assert_one_line_error(proc, 1, f"127.0.0.1:{port}")


def test_bad_option_values_exit_2(tmp_path: Path) -> None:
    proc = run_kbroker("consume", "t", "--format", "%q", "--bootstrap", "127.0.0.1:1", cwd=tmp_path)
    assert_one_line_error(proc, 2, "unknown token '%q'")
    proc = run_kbroker("topic", "alter-config", "t", "--bootstrap", "127.0.0.1:1", cwd=tmp_path)
    assert_one_line_error(proc, 2, "needs --set KEY=VALUE or --delete KEY")


def test_help_of_the_broker_names_the_verbs(tmp_path: Path) -> None:
    proc = run_kbroker("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for verb in ("kbroker topic", "kbroker group", "kbroker produce", "kbroker consume", "kbroker acl", "kbroker user"):
        assert verb in proc.stdout

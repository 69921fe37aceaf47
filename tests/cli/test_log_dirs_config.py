"""log.dirs / log.dir and the data dir: which directories hold logs, where metadata goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbroker.config import ConfigError, build_config


def test_data_dir_alone_is_the_only_log_dir(tmp_path: Path) -> None:
    config = build_config(data_dir=str(tmp_path / "d"), environ={})
    assert config.effective_log_dirs == (tmp_path / "d",)
    assert config.describe_value("log.dirs") == str(tmp_path / "d")


def test_log_dirs_with_a_data_dir_keeps_metadata_apart(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    config = build_config(data_dir=str(tmp_path / "meta"), overrides=[f"log.dirs={a}, {b}"], environ={})
    assert config.data_dir == tmp_path / "meta"
    assert config.effective_log_dirs == (a, b)
    assert config.describe_value("log.dirs") == f"{a},{b}"
    assert config.describe_value("log.dir") == str(a)


def test_log_dirs_without_a_data_dir_puts_metadata_in_the_first(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    config = build_config(overrides=[f"log.dirs={a},{b}"], environ={})
    assert (config.data_dir, config.effective_log_dirs) == (a, (a, b))


def test_log_dirs_wins_over_log_dir(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    config = build_config(overrides=[f"log.dirs={a}", f"log.dir={b}"], environ={})
    assert config.effective_log_dirs == (a,)
    config = build_config(overrides=[f"log.dir={b}"], environ={})
    assert config.effective_log_dirs == (b,)


@pytest.mark.parametrize("value", [",", " , ", "x,x", "x,./x"])
def test_bad_log_dirs_are_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="log.dirs"):
        build_config(overrides=[f"log.dirs={value}"], environ={})

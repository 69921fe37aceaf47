"""A clean-venv install: the real wheel holds one top-level import package, ``kbroker``.

The source keeps ``wire/``, ``log/`` and ``coordinator/`` at the top of the tree and
setuptools' package-dir installs them as ``kbroker.wire``, ``kbroker.log`` and
``kbroker.coordinator``.  An editable install (what the rest of the suite runs on) cannot
show what a user gets, so this test builds the wheel from a copy of the source tree (pip,
with the build backend pyproject names), installs it (non-editable) into a fresh venv and
asks that venv's interpreter, in isolated mode from an empty directory, what it can import.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[1]
PIP_TIMEOUT_S = 240
# Not part of the distribution's source: never copied into the build tree.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", "__pycache__", "node_modules", ".hypothesis",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", ".venv", "kbroker-data", "results",
)  # fmt: skip

# Run inside the fresh venv: which top-level names import, and what the metadata says.
_PROBE = r"""
import importlib, importlib.metadata as md, json
result = {}
for name in ("wire", "log", "coordinator", "kbroker.wire", "kbroker.log", "kbroker.coordinator",
             "kbroker.wire.messages.produce_request", "kbroker.server"):
    try:
        mod = importlib.import_module(name)
    except ModuleNotFoundError as e:
        result[name] = "missing: " + str(e.name)
    else:
        result[name] = mod.__file__
dist = md.distribution("kbroker")
result["top_level.txt"] = (dist.read_text("top_level.txt") or "").split()
result["files_top"] = sorted({f.parts[0] for f in dist.files or ()
                              if not f.parts[0].endswith(".dist-info") and f.parts[0] != ".."})
result["entry_points"] = sorted(f"{e.group}:{e.name}={e.value}" for e in dist.entry_points)
print(json.dumps(result))
"""


def _pip(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_S,
    )
    assert proc.returncode == 0, f"pip {' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel pip builds from a clean copy of the source tree."""
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=_NOT_SOURCE, symlinks=True)
    out = base / "wheelhouse"
    _pip("wheel", "--no-deps", "--wheel-dir", str(out), str(src))
    [whl] = out.glob("kbroker-*.whl")
    return whl


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Install the wheel (non-editable, with its dependencies) into a fresh venv; probe it."""
    base = tmp_path_factory.mktemp("venv")
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    _pip("--python", str(python), "install", "--no-compile", str(wheel))
    empty = base / "cwd"
    empty.mkdir()
    proc = subprocess.run(
        [str(python), "-I", "-c", _PROBE],
        cwd=empty,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    result["site"] = str(env_dir)
    return dict(result)


def test_the_wheel_holds_only_kbroker_and_every_generated_message_module(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top_level = zf.read(next(n for n in names if n.endswith(".dist-info/top_level.txt")))
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"kbroker"}, tops
    assert top_level.decode().split() == ["kbroker"]
    source = {
        p.relative_to(ROOT / "wire" / "messages").as_posix()
        for p in (ROOT / "wire" / "messages").rglob("*.py")
    }
    packed = {
        n.removeprefix("kbroker/wire/messages/")
        for n in names
        if n.startswith("kbroker/wire/messages/") and n.endswith(".py")
    }
    assert len(source) > 200
    assert packed == source, sorted(source ^ packed)[:10]
    for sub in ("log", "coordinator"):
        want = {p.name for p in (ROOT / sub).glob("*.py")}
        got = {n.split("/")[-1] for n in names if n.startswith(f"kbroker/{sub}/") and n.count("/") == 2}
        if sub == "log":  # the cleaner's C loops (setup.py), built for this interpreter
            built = {n for n in got if n.startswith("_cleaner_scan.") and n.endswith(".so")}
            assert len(built) == 1, sorted(got)
            got -= built
        assert got == want, (sub, sorted(want ^ got))
    # the web console's templates and static files are package data
    for sub in ("templates", "static"):
        want = {p.name for p in (ROOT / "kbroker" / "console" / sub).iterdir() if p.is_file()}
        got = {n.split("/")[-1] for n in names if n.startswith(f"kbroker/console/{sub}/")}
        assert want and got == want, (sub, sorted(want ^ got))


def test_only_kbroker_is_importable_at_top_level_after_a_clean_install(
    installed: dict[str, object],
) -> None:
    site = str(installed["site"])
    for name in ("wire", "log", "coordinator"):
        assert installed[name] == f"missing: {name}", (name, installed[name])
    for name in ("kbroker.wire", "kbroker.log", "kbroker.coordinator",
                 "kbroker.wire.messages.produce_request", "kbroker.server"):  # fmt: skip
        where = installed[name]
        # imported from the venv's copy, not from this source tree
        assert isinstance(where, str) and where.startswith(site), (name, where)
    assert installed["top_level.txt"] == ["kbroker"]
    assert installed["files_top"] == ["kbroker"]
    assert "pytest11:kbroker=kbroker.pytest_plugin" in installed["entry_points"]  # type: ignore[operator]
    assert "console_scripts:kbroker=kbroker.cli:run" in installed["entry_points"]  # type: ignore[operator]

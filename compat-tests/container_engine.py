"""A container engine for the testcontainers test: podman (with runc) serving the Docker API
on a private unix socket, and kbroker's image built locally from ``docker/Dockerfile``.

No registry is reachable from these machines, so the image's base cannot be pulled.  It is
built from the Python running the tests instead: a root filesystem holding that
interpreter's installation (at the same path, without its site-packages other than pip),
the shared libraries ``ldd`` says it and the test venv's extension modules need, ``/bin/sh``
(dash) for the Dockerfile's ``RUN``, and a wheelhouse of kbroker's dependencies (built with
pip from the package registry) with ``PIP_NO_INDEX``/``PIP_FIND_LINKS`` pointing at it.
``podman import`` turns that into an image; ``podman build --build-arg BASE_IMAGE=...``
then builds the shipped Dockerfile on it, with no network.

The engine's configuration (``containers.conf``, passed by ``CONTAINERS_CONF`` to every podman
we run) adapts it to this sandbox: RLIMIT_NOFILE stays at the test process's own limits
(podman's default raises it, which needs CAP_SYS_RESOURCE, which the sandbox lacks) and
RLIMIT_NPROC at podman's CLI default (see :data:`PODMAN_NPROC`), and
containers get slirp4netns networking with slirp4netns' own port forwarder, so the host
side of a published port is a loopback socket and no bridge or NAT rule is set up.

Only processes started here are stopped here, by their pid.
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clients import missing

ROOT = Path(__file__).resolve().parent.parent
# What docker/Dockerfile copies into the image (the build context holds only these).
CONTEXT_ITEMS = ("pyproject.toml", "README.md", "wire", "log", "coordinator", "kbroker")
SERVICE_START_S = 30.0
PODMAN_TIMEOUT_S = 600
PIP_TIMEOUT_S = 600
STOP_TIMEOUT_S = 15.0
# RLIMIT_NPROC podman's own CLI gives containers; the API service would otherwise copy the
# host's, which the OCI runtime may not set here (seen: 96368 refused, 32768 accepted).
PODMAN_NPROC = 32768
BASE_REPO = "localhost/kbroker-test-base"
IMAGE = "localhost/kbroker:compat-test"
# Commands a Dockerfile's RUN lines commonly use, copied into the base with their libraries.
BASE_COMMANDS = ("rm", "mkdir", "cp", "mv", "cat", "ls", "ln", "chmod", "sleep", "env", "true")
# Parts of the interpreter's installation the image does not need.
_SKIP_STDLIB = {"test", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip", "__pycache__"}
_LDD_PATH = re.compile(r"(/\S+) \(0x[0-9a-f]+\)$")


def tools() -> dict[str, str]:
    """podman, runc, slirp4netns and ldd, or a skip (a failure with CI=true)."""
    found = {name: shutil.which(name) for name in ("podman", "runc", "slirp4netns", "ldd", "dash")}
    absent = sorted(name for name, path in found.items() if path is None)
    if absent:
        missing(f"the container test needs {', '.join(absent)} (apt-get install podman runc slirp4netns)")
    return {k: v for k, v in found.items() if v is not None}


def containers_conf(path: Path) -> Path:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[0], PODMAN_NPROC)
    path.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={soft}:{hard}", "nproc={nproc}:{nproc}"]\n'
        'netns = "slirp4netns"\n'
        "[engine]\n"
        'network_cmd_options = ["port_handler=slirp4netns"]\n'
    )
    return path


class Engine:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.tools = tools()
        self.env = {**os.environ, "CONTAINERS_CONF": str(containers_conf(workdir / "containers.conf"))}
        self.socket = workdir / "podman.sock"
        self.service: subprocess.Popen[bytes] | None = None

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    def podman(self, *args: str, timeout: float = PODMAN_TIMEOUT_S) -> str:
        proc = subprocess.run(
            [self.tools["podman"], *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if proc.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args[:3])} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
        return proc.stdout

    def start_service(self) -> None:
        log = (self.workdir / "podman-service.log").open("wb")
        self.service = subprocess.Popen(
            [self.tools["podman"], "system", "service", "--time=0", self.docker_host],
            env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + SERVICE_START_S
        while not self.socket.exists():
            if self.service.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podman system service did not start:\n{(self.workdir / 'podman-service.log').read_text()[-3000:]}")
            time.sleep(0.1)

    def stop_service(self) -> None:
        if self.service is not None and self.service.poll() is None:
            self.service.send_signal(signal.SIGTERM)
            try:
                self.service.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait(STOP_TIMEOUT_S)

    # -- the image --------------------------------------------------------------------------

    def build_image(self) -> str:
        wheels = self.workdir / "wheels"
        context = self.workdir / "context"
        _build_context(context)
        _wheelhouse(context, wheels)
        base = self._base_image(wheels)
        self.podman(
            "build", "--network=none", "--build-arg", f"BASE_IMAGE={base}",
            "-f", str(context / "docker" / "Dockerfile"), "-t", IMAGE, str(context),
        )  # fmt: skip
        return IMAGE

    def _base_image(self, wheels: Path) -> str:
        prefix = Path(sys.base_prefix)
        digest = hashlib.sha256()
        for wheel in sorted(wheels.iterdir()):
            digest.update(wheel.name.encode())
        digest.update(sys.version.encode())
        digest.update(Path(__file__).read_bytes())  # how the base is made is part of its identity
        tag = f"{BASE_REPO}:py{sys.version_info.major}.{sys.version_info.minor}-{digest.hexdigest()[:12]}"
        if subprocess.run([self.tools["podman"], "image", "exists", tag], env=self.env, timeout=60).returncode == 0:
            return tag
        rootfs = self.workdir / "rootfs"
        _copy_interpreter(prefix, rootfs)
        (rootfs / "bin").mkdir(exist_ok=True)
        shutil.copy2(self.tools["dash"], rootfs / "bin" / "sh")
        for name in BASE_COMMANDS:
            found = shutil.which(name)
            if found is not None:
                shutil.copy2(found, rootfs / "bin" / name)
        libraries = _shared_libraries(self.tools["ldd"], [*_elf_files(rootfs), *_elf_files(Path(sys.prefix))])
        for lib in libraries:
            _copy_file(lib, rootfs)
        shutil.copytree(wheels, rootfs / "wheels")
        for d in ("tmp", "etc", "var/lib", "dev", "proc", "sys", "root"):
            (rootfs / d).mkdir(parents=True, exist_ok=True)
        (rootfs / "tmp").chmod(0o1777)
        tarball = self.workdir / "rootfs.tar"
        with tarfile.open(tarball, "w") as tar:
            tar.add(rootfs, arcname=".")
        shutil.rmtree(rootfs)
        path = f"{prefix}/bin:/usr/local/bin:/usr/bin:/bin"
        changes = [f"ENV PATH={path}", "ENV PIP_NO_INDEX=1", "ENV PIP_FIND_LINKS=/wheels",
                   "ENV PIP_DISABLE_PIP_VERSION_CHECK=1", "ENV LANG=C.UTF-8"]  # fmt: skip
        args = ["import"]
        for change in changes:
            args += ["--change", change]
        self.podman(*args, str(tarball), tag)
        tarball.unlink()
        return tag


def _build_context(context: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    context.mkdir(parents=True)
    for item in CONTEXT_ITEMS:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, context / item, ignore=ignore)
        else:
            shutil.copy2(src, context / item)
    (context / "docker").mkdir()
    shutil.copy2(ROOT / "docker" / "Dockerfile", context / "docker" / "Dockerfile")


def _wheelhouse(context: Path, wheels: Path) -> None:
    """Wheels of everything ``pip install '.[fast]'`` needs in the image, build backend
    included (setuptools, wheel), for this interpreter."""
    wheels.mkdir()
    for args in (["wheel", "--wheel-dir", str(wheels), f"{context}[fast]"],
                 ["download", "--dest", str(wheels), "--only-binary=:all:", "setuptools>=68", "wheel"]):  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
            capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"pip {args[0]} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    for built in wheels.glob("kbroker-*.whl"):  # the Dockerfile builds kbroker itself
        built.unlink()


def _copy_interpreter(prefix: Path, rootfs: Path) -> None:
    """The interpreter's installation at the same path under ``rootfs``: bin/ (python and
    pip only), lib/ without the test suite and without site-packages other than pip."""
    dest = rootfs / prefix.relative_to("/")
    (dest / "bin").mkdir(parents=True)
    for entry in (prefix / "bin").iterdir():
        if re.fullmatch(r"(python|pip)[0-9.]*", entry.name):
            shutil.copy2(entry, dest / "bin" / entry.name, follow_symlinks=False)
    stdlib = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (dest / "lib").mkdir()
    for entry in (prefix / "lib").iterdir():
        if entry.name.startswith("libpython") and not entry.name.endswith(".a"):
            shutil.copy2(entry, dest / "lib" / entry.name, follow_symlinks=False)
    lib = prefix / "lib" / stdlib

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n in _SKIP_STDLIB or n.startswith("config-") or n.endswith(".a")}
        if Path(directory) == lib / "site-packages":
            skipped |= {n for n in names if not n.startswith("pip")}
        return skipped

    shutil.copytree(lib, dest / "lib" / stdlib, ignore=ignore, symlinks=True)


def _elf_files(top: Path) -> Iterator[Path]:
    for path in top.rglob("*"):
        if path.is_file() and not path.is_symlink() and (path.suffix == ".so" or ".so." in path.name or path.parent.name == "bin"):
            with path.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    yield path


def _shared_libraries(ldd: str, files: list[Path]) -> set[Path]:
    found: set[Path] = set()
    for path in files:
        proc = subprocess.run([ldd, str(path)], capture_output=True, text=True, timeout=60)
        for line in proc.stdout.splitlines():
            m = _LDD_PATH.search(line.strip())
            if m and not m.group(1).startswith(sys.base_prefix):
                found.add(Path(m.group(1)))
    return found


def _copy_file(path: Path, rootfs: Path) -> None:
    """``path`` under ``rootfs`` at the same place, symlinks followed to their target (both
    the link and the file are recreated)."""
    target = rootfs / path.relative_to("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        real = path.resolve()
        _copy_file(real, rootfs)
        if not target.exists():
            target.symlink_to(real)
    elif not target.exists():
        shutil.copy2(path, target)


@contextmanager
def podman_engine(workdir: Path) -> Iterator[Engine]:
    engine = Engine(workdir)
    engine.start_service()
    try:
        yield engine
    finally:
        engine.stop_service()

"""The full MLflow package for tests that run a real `mlflow server`, and the servers themselves.

The test venv has only mlflow-skinny (no server), and MLflow's protos cannot share a process
with ours anyway, so the server runs from a venv of its own with `mlflow==MLFLOW_VERSION`,
made once and cached outside the clone (`${XDG_CACHE_HOME:-~/.cache}/mlflow-webhooks-tests/`),
keyed by the MLflow and Python versions. It is built in a temporary directory and renamed into
place when complete, under a lock, so concurrent sessions never use a half-made one. Console
scripts in it keep the temporary path in their shebangs: everything here runs it as
`python -m ...`, which does not care.

The bridge (clients/mlflow_bridge) is installed per session with `pip install --target` into a
directory of the session's own that goes on the server's PYTHONPATH, not into the shared venv:
sessions in other worktrees then never swap its code under a running test, and
importlib.metadata still finds its `mlflow.app` entry point there.

MLflow servers take 15-25 s to start on a loaded machine: the session fixtures below start one
plain server and one bridged server, shared by every module that needs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.support import ROOT, ServerProcess, own_server

MLFLOW_VERSION = "3.17.2"
BRIDGE_SOURCE = ROOT / "clients" / "mlflow_bridge"
# Installing the venv downloads ~300 MB of wheels; a server start imports most of them.
INSTALL_TIMEOUT = 900.0
START_TIMEOUT = 180.0
# Native webhooks may deliver to receivers on loopback over plain HTTP (MLflow refuses private
# addresses and http by default, at create time and again at connect time), see at once the
# webhooks a test just created (the list is cached 60 s by default), and fail fast. MLflow's
# job runner (huey consumers, on by default) is not needed and costs a loaded machine dearly.
SERVER_ENV = {
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "MLFLOW_WEBHOOK_CACHE_TTL": "0",
    "MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_WEBHOOK_REQUEST_TIMEOUT": "10",
}


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlflow-webhooks-tests"


def venv_dir() -> Path:
    py = f"py{sys.version_info.major}.{sys.version_info.minor}"
    return cache_root() / f"mlflow-{MLFLOW_VERSION}-{py}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _complete(venv: Path) -> bool:
    return (venv / ".complete").exists() and (venv / "bin" / "python").exists()


def mlflow_python() -> Path:
    """The python of the cached MLflow venv, made first if missing."""
    venv = venv_dir()
    if _complete(venv):
        return venv / "bin" / "python"
    with _locked(cache_root() / ".lock"):
        if not _complete(venv):
            _build_venv(venv)
    return venv / "bin" / "python"


def _build_venv(venv: Path) -> None:
    if venv.exists():  # left by an older layout or a hand edit: never trust it
        shutil.rmtree(venv)
    building = Path(tempfile.mkdtemp(prefix=f".building-{venv.name}-", dir=venv.parent))
    try:
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(building)], check=True, timeout=120)
        python = str(building / "bin" / "python")
        pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        # setuptools builds the bridge without build isolation later (no download per session).
        subprocess.run(
            [*pip, f"mlflow=={MLFLOW_VERSION}", "setuptools>=68", "wheel"],
            check=True,
            timeout=INSTALL_TIMEOUT,
        )
        (building / ".complete").write_text(MLFLOW_VERSION + "\n")
        building.rename(venv)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise


def install_bridge(python: Path, target: Path) -> Path:
    """Installs the checkout's bridge into `target` (for PYTHONPATH); returns `target`."""
    build = target.parent / f"{target.name}-build"
    shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(build, ignore_errors=True)
    # Built from a copy so that the checkout gets no build/ or egg-info of the session's.
    shutil.copytree(
        BRIDGE_SOURCE, build, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(build),
        ],
        check=True,
        timeout=300,
    )
    shutil.rmtree(build, ignore_errors=True)
    return target


CALL_TIMEOUT = 60.0


class MlflowClientProcess:
    """MlflowClient calls run by tests/mlflow_worker.py in a process of its own, over pipes
    (MLflow's protos and ours cannot share one process)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc

    @classmethod
    async def start(
        cls, tracking_uri: str, env: dict[str, str] | None = None, python: Path | None = None
    ) -> MlflowClientProcess:
        """`python` defaults to the test venv's (mlflow-skinny); the cached MLflow venv's
        (mlflow_python()) has the full client, prompts included."""
        proc = await asyncio.create_subprocess_exec(
            str(python or sys.executable),
            str(ROOT / "tests" / "mlflow_worker.py"),
            tracking_uri,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def answer(self, op: str, **args: Any) -> dict[str, Any]:
        assert self._proc.stdin and self._proc.stdout
        self._proc.stdin.write(json.dumps({"op": op, "args": args}).encode() + b"\n")
        await self._proc.stdin.drain()
        line = await asyncio.wait_for(self._proc.stdout.readline(), CALL_TIMEOUT)
        assert line, f"the MLflow client process exited ({self._proc.returncode})"
        return json.loads(line)

    async def ok(self, op: str, **args: Any) -> Any:
        answer = await self.answer(op, **args)
        assert "ok" in answer, answer
        return answer["ok"]

    async def error(self, op: str, **args: Any) -> dict[str, str]:
        answer = await self.answer(op, **args)
        assert "error" in answer, answer
        return answer["error"]

    async def close(self) -> None:
        assert self._proc.stdin
        self._proc.stdin.close()
        try:
            await asyncio.wait_for(self._proc.wait(), 20)
        except TimeoutError:
            self._proc.kill()
            await self._proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int, marker: str) -> list[int]:
    """Direct children of `pid` whose command line holds `marker`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 (ppid) follows the command name, which is in parentheses and may hold spaces.
        if int(stat.rsplit(")", 1)[1].split()[1]) != pid:
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
    return found


@dataclass
class MlflowServer:
    """`python -m mlflow server` from the cached venv, on a free loopback port, with a SQLite
    backend store and artifacts in `workdir`. Started in a session of its own so that stop()
    reaches the uvicorn processes MLflow's CLI starts."""

    python: Path
    workdir: Path
    app_name: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"mlflow-server-{self.starts}.log"

    def start(self) -> MlflowServer:
        """Starts (or restarts, on the same port and store) and waits until /health answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.starts += 1
        command = [
            str(self.python),
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--backend-store-uri",
            f"sqlite:///{self.workdir}/mlflow.db",
            "--default-artifact-root",
            str(self.workdir / "artifacts"),
            "--workers",
            str(self.workers),
            # The clients here make no retries; on a loaded machine the gap between two calls
            # can pass uvicorn's 5 s keep-alive, and a call on the connection it is closing
            # would fail.
            "--uvicorn-opts",
            "--timeout-keep-alive 600",
        ]
        if self.app_name:
            command += ["--app-name", self.app_name]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **SERVER_ENV, **self.env}
        # The test venv's own variables must not leak into MLflow's interpreter.
        env.pop("VIRTUAL_ENV", None)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({self.proc.returncode}): {self.log()}")
            if self.healthy():
                return self
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"mlflow server did not answer in time: {self.log()}")
            time.sleep(0.2)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:  # noqa: S310
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: uvicorn's workers with --workers > 1, else the
        one uvicorn process MLflow's CLI started."""
        assert self.proc
        uvicorn = _children(self.proc.pid, "uvicorn")
        if self.workers == 1:
            return uvicorn
        # uvicorn starts its workers with multiprocessing's spawn.
        return [pid for parent in uvicorn for pid in _children(parent, "spawn_main")]

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (MLflow's CLI forwards it to uvicorn, which drains), then SIGKILL to the
        whole process group if anything is left."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
        self._kill_group()

    def kill(self) -> None:
        """SIGKILL to the CLI and every process it started: nothing gets to clean up."""
        self._kill_group()

    def _kill_group(self) -> None:
        assert self.proc
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


def start_mlflow(
    python: Path,
    workdir: Path,
    *,
    app_name: str | None = None,
    env: dict[str, str] | None = None,
    workers: int = 1,
) -> MlflowServer:
    key = {"MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": Fernet.generate_key().decode()}
    return MlflowServer(python, workdir, app_name, {**key, **(env or {})}, workers).start()


@pytest.fixture(scope="session")
def mlflow_python_path() -> Path:
    """The cached MLflow venv's python (built on first use: a minute or more)."""
    return mlflow_python()


@pytest.fixture(scope="session")
def mlflow_plain(
    mlflow_python_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    """A plain MLflow server with its own webhooks, allowed to deliver to loopback receivers.
    Shared by the session: tests name their models and webhooks uniquely."""
    server = start_mlflow(mlflow_python_path, tmp_path_factory.mktemp("mlflow-plain"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def bridge_site(mlflow_python_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's bridge, installed for the session (see install_bridge)."""
    return install_bridge(mlflow_python_path, tmp_path_factory.mktemp("bridge") / "site")


@dataclass
class BridgeService:
    """The service the bridged MLflow server publishes to: its own SQLite database in
    `workdir` and a fixed HTTP port, so that a test can stop it and start it again at the
    same address with the same webhooks."""

    workdir: Path
    port: int = field(default_factory=free_port)
    proc: ServerProcess | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BridgeService:
        address = f"127.0.0.1:{self.port}"
        self.proc = own_server(self.workdir, "--delivery-timeout", "5", "--http-address", address)
        return self

    @property
    def running(self) -> bool:
        return bool(self.proc and self.proc.proc and self.proc.proc.poll() is None)

    def stop(self) -> None:
        if self.running:
            assert self.proc
            self.proc.stop()


@pytest.fixture(scope="session")
def bridge_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeService]:
    service = BridgeService(tmp_path_factory.mktemp("bridge-service")).start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def mlflow_bridged(
    mlflow_python_path: Path,
    bridge_site: Path,
    bridge_service: BridgeService,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[MlflowServer]:
    """A MLflow server running the bridge (`--app-name webhooks-bridge`) with two uvicorn
    workers, publishing to bridge_service; its spool is `workdir / "spool"`."""
    workdir = tmp_path_factory.mktemp("mlflow-bridged")
    env = {
        "PYTHONPATH": str(bridge_site),
        "MLFLOW_WEBHOOKS_URL": bridge_service.http_url,
        "MLFLOW_WEBHOOKS_SPOOL_DIR": str(workdir / "spool"),
    }
    server = start_mlflow(
        mlflow_python_path, workdir, app_name="webhooks-bridge", env=env, workers=2
    )
    yield server
    server.stop()


if __name__ == "__main__":
    # `make test` runs this first, so that the first test needing MLflow does not spend its
    # timeout on building the venv.
    print(f"MLflow {MLFLOW_VERSION} venv: {mlflow_python()}", flush=True)

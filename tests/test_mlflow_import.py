"""`webhooksctl import-mlflow` as an operator runs it: the console script, a real plain MLflow
server (the session's shared one) holding native webhooks made through its REST API, and a
real service.

The MLflow server is shared with other modules, which may leave webhooks of their own in it:
assertions look only at this module's webhooks (named with a unique prefix), and whatever the
import disabled of the others is enabled again afterwards."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from mlflow_webhooks.clients.python import WebhooksClient
from tests.mlflow_env import MlflowServer
from tests.support import ROOT, ServerProcess, run_server

CTL = Path(sys.executable).with_name("webhooksctl")
# Literal public addresses: MLflow and the service take them without DNS, and nothing is ever
# delivered to them (the test makes no registry change).
PUBLIC_A = "https://93.184.215.14/hooks/a"
PUBLIC_B = "http://93.184.215.15/hooks/b"
PRIVATE = "http://127.0.0.1:9/hooks/c"


def ctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """webhooksctl with none of the caller's WEBHOOKS_* or MLFLOW_* variables."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("WEBHOOKS_", "MLFLOW_TRACKING_"))
    }
    return subprocess.run(
        [str(CTL), *args],
        env={**base, **(env or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def call(method: str, url: str, body: dict | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 (the test's own loopback server)
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.load(response)
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{method} {url}: {e.code} {e.read()!r}") from None


class MlflowApi:
    """The plain MLflow server's webhooks REST API, as the test's own hands."""

    def __init__(self, server: MlflowServer) -> None:
        self.url = f"{server.url}/api/2.0/mlflow/webhooks"

    def create(self, name: str, url: str, events: list[tuple[str, str]], **extra: Any) -> str:
        body = {
            "name": name,
            "url": url,
            "events": [{"entity": e, "action": a} for e, a in events],
            **extra,
        }
        return call("POST", self.url, body)["webhook"]["webhook_id"]

    def all(self) -> dict[str, dict]:
        hooks: dict[str, dict] = {}
        token = ""
        while True:
            query = {"max_results": 1000, **({"page_token": token} if token else {})}
            page = call("GET", f"{self.url}?{urllib.parse.urlencode(query)}")
            for hook in page.get("webhooks", []):
                hooks[hook["webhook_id"]] = hook
            token = page.get("next_page_token")
            if not token:
                return hooks

    def set_status(self, webhook_id: str, status: str) -> None:
        call("PATCH", f"{self.url}/{webhook_id}", {"status": status})

    def delete(self, webhook_id: str) -> None:
        call("DELETE", f"{self.url}/{webhook_id}")


@pytest.fixture(scope="module")
def strict_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A service that takes plain http but, as by default, no private addresses."""
    workdir = tmp_path_factory.mktemp("import-service")
    proc = run_server(
        workdir,
        "--allowed-schemes",
        "http,https",
        "--database-url",
        f"sqlite:///{workdir}/webhooks.db",
    )
    yield proc
    proc.stop()


@pytest.fixture
def mlflow_api(mlflow_plain: MlflowServer) -> Iterator[MlflowApi]:
    """The plain server's webhooks; afterwards the others' are as they were before."""
    api = MlflowApi(mlflow_plain)
    before = {i: h.get("status", "ACTIVE") for i, h in api.all().items()}
    yield api
    for webhook_id, hook in api.all().items():
        if webhook_id not in before:
            api.delete(webhook_id)
        elif hook.get("status", "ACTIVE") != before[webhook_id]:
            api.set_status(webhook_id, before[webhook_id])


def service_hooks(service: ServerProcess, prefix: str) -> list[Any]:
    with WebhooksClient(service.grpc_address) as client:
        return [w for w in client.iter_webhooks() if w.name.startswith(prefix)]


def by_name(outcomes: list[dict]) -> dict[str, dict]:
    return {o["name"]: o for o in outcomes}


def test_import_copies_refuses_per_webhook_and_disables_only_what_was_copied(
    mlflow_plain: MlflowServer, mlflow_api: MlflowApi, strict_service: ServerProcess
) -> None:
    prefix = f"imp-{uuid.uuid4().hex[:8]}"
    a = mlflow_api.create(
        f"{prefix}-a",
        PUBLIC_A,
        [("MODEL_VERSION", "CREATED"), ("MODEL_VERSION_ALIAS", "CREATED")],
        secret="secret-a",
        description="tells CI",
    )
    b = mlflow_api.create(
        f"{prefix}-b", PUBLIC_B, [("PROMPT_VERSION", "CREATED")], status="DISABLED"
    )
    c = mlflow_api.create(f"{prefix}-c", PRIVATE, [("REGISTERED_MODEL", "CREATED")])
    args = (
        "--address",
        strict_service.grpc_address,
        "import-mlflow",
        "--mlflow-uri",
        mlflow_plain.url,
        "--disable-source",
        # Small pages, so that the import has to follow next_page_token.
        "--page-size",
        "2",
    )

    # A dry run changes nothing on either side.
    dry = ctl(*args, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    planned = by_name(json.loads(dry.stdout)["webhooks"])
    assert planned[f"{prefix}-a"]["result"] == "would_create"
    assert planned[f"{prefix}-a"]["in_mlflow"] == "would_disable"
    assert planned[f"{prefix}-b"]["in_mlflow"] == "was_disabled"
    assert service_hooks(strict_service, prefix) == []
    assert mlflow_api.all()[a]["status"] == "ACTIVE"

    first = ctl(*args)
    assert first.returncode == 1, (first.stdout, first.stderr)
    # The refused webhook is named, with the service's reason, and the summary follows.
    refused = [line for line in first.stderr.splitlines() if c in line]
    assert len(refused) == 1, first.stderr
    assert "INVALID_ARGUMENT" in refused[0] and "non-public address" in refused[0]
    assert "--allow-private-urls" in refused[0]
    assert "import-mlflow:" in first.stderr.splitlines()[-1]
    assert "failed" in first.stderr.splitlines()[-1]

    # What the service holds: a and b, with MLflow's fields and status; not c.
    held = {w.name: w for w in service_hooks(strict_service, prefix)}
    assert sorted(held) == [f"{prefix}-a", f"{prefix}-b"]
    with WebhooksClient(strict_service.grpc_address) as client:
        got_a = client.get(held[f"{prefix}-a"].webhook_id)
    assert got_a.url == PUBLIC_A
    assert got_a.description == "tells CI"
    assert [(e.entity, e.action) for e in got_a.events] == [(2, 1), (4, 1)]
    assert got_a.status == 1  # ACTIVE
    assert held[f"{prefix}-b"].status == 2  # DISABLED, as it was in MLflow
    assert held[f"{prefix}-b"].description == ""

    # Each created copy is listed with the command that sets its secret again.
    for hook in held.values():
        assert f"webhooksctl update {hook.webhook_id} --secret" in first.stdout

    # Only the copied originals are disabled in MLflow; the refused one keeps delivering.
    in_mlflow = mlflow_api.all()
    assert in_mlflow[a]["status"] == "DISABLED"
    assert in_mlflow[b]["status"] == "DISABLED"
    assert in_mlflow[c].get("status", "ACTIVE") == "ACTIVE"

    # Again: nothing is created twice; c is refused again, for the same reason.
    second = ctl(*args, "--json")
    assert second.returncode == 1
    report = json.loads(second.stdout)
    again = by_name(report["webhooks"])
    assert again[f"{prefix}-a"]["result"] == "exists"
    assert again[f"{prefix}-a"]["webhook_id"] == held[f"{prefix}-a"].webhook_id
    assert again[f"{prefix}-a"]["in_mlflow"] == "was_disabled"
    assert again[f"{prefix}-a"]["needs_secret"] is False
    assert again[f"{prefix}-c"]["result"] == "failed"
    assert "non-public address" in again[f"{prefix}-c"]["error"]
    assert again[f"{prefix}-c"]["in_mlflow"] == "kept"
    assert report["summary"]["created"] == 0
    assert report["summary"]["webhooks"] == len(report["webhooks"])
    assert len(service_hooks(strict_service, prefix)) == 2


def test_import_of_a_fixed_webhook_after_a_failure(
    mlflow_plain: MlflowServer, mlflow_api: MlflowApi, tmp_path: Path
) -> None:
    """The usual recovery: the service is started with private URLs allowed, and the same
    command, run again, copies what it refused before and disables its original."""
    prefix = f"imp-{uuid.uuid4().hex[:8]}"
    c = mlflow_api.create(f"{prefix}-c", PRIVATE, [("MODEL_VERSION_TAG", "SET")])
    service = run_server(
        tmp_path,
        "--allow-private-urls",
        "--allowed-schemes",
        "http,https",
        "--database-url",
        f"sqlite:///{tmp_path}/webhooks.db",
    )
    try:
        done = ctl(
            "--address",
            service.grpc_address,
            "--json",
            "import-mlflow",
            "--disable-source",
            env={"MLFLOW_TRACKING_URI": mlflow_plain.url},  # the default for --mlflow-uri
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        mine = by_name(json.loads(done.stdout)["webhooks"])[f"{prefix}-c"]
        assert mine["result"] == "created"
        assert mine["in_mlflow"] == "disabled"
        assert mine["needs_secret"] is True
        [held] = service_hooks(service, prefix)
        assert held.webhook_id == mine["webhook_id"]
        assert held.url == PRIVATE
        assert mlflow_api.all()[c]["status"] == "DISABLED"
    finally:
        service.stop()


def test_mlflow_or_service_unreachable(
    mlflow_plain: MlflowServer, strict_service: ServerProcess
) -> None:
    nothing = "http://127.0.0.1:9"
    done = ctl("--address", strict_service.grpc_address, "import-mlflow", "--mlflow-uri", nothing)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip() == (
        f"webhooksctl: cannot reach MLflow at {nothing}: [Errno 111] Connection refused"
    )
    done = ctl("--address", "127.0.0.1:9", "import-mlflow", "--mlflow-uri", mlflow_plain.url)
    assert done.returncode == 1
    assert done.stderr.startswith("webhooksctl: UNAVAILABLE: cannot reach the server")


def test_refuses_the_service_itself_as_source(
    mlflow_plain: MlflowServer, strict_service: ServerProcess
) -> None:
    """The service's JSON shim answers MLflow's webhooks API with the service's own
    webhooks: importing (and disabling) them would turn the service against itself."""
    with WebhooksClient(strict_service.grpc_address) as client:
        hook = client.create(f"self-{uuid.uuid4().hex[:8]}", PUBLIC_A, ["model_version.created"])
    try:
        done = ctl(
            "--address",
            strict_service.grpc_address,
            "import-mlflow",
            "--disable-source",
            "--mlflow-uri",
            strict_service.http_url,
        )
        assert done.returncode == 1
        assert "this service's own webhooks" in done.stderr
        with WebhooksClient(strict_service.grpc_address) as client:
            assert client.get(hook.webhook_id).status == 1  # still ACTIVE
    finally:
        with WebhooksClient(strict_service.grpc_address) as client:
            client.delete(hook.webhook_id)


def test_bad_arguments_exit_2() -> None:
    for args in (
        ["import-mlflow"],  # no --mlflow-uri and no MLFLOW_TRACKING_URI
        ["import-mlflow", "--mlflow-uri", "sqlite:///mlflow.db"],
        ["import-mlflow", "--mlflow-uri", "http://ana:pw@mlflow.example.com"],
        ["import-mlflow", "--mlflow-uri", "http://m.example.com", "--page-size", "0"],
    ):
        done = ctl(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stdout == ""
        assert "import-mlflow: error:" in done.stderr


class AuthCheckingMlflow:
    """Stands in for an MLflow server behind an auth proxy (the headers are what is under
    test, not MLflow): records the Authorization and workspace headers and answers an empty
    webhook list."""

    def __init__(self) -> None:
        self.headers: list[tuple[str | None, str | None]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> AuthCheckingMlflow:
        async def webhooks(request: web.Request) -> web.Response:
            headers = request.headers
            self.headers.append((headers.get("Authorization"), headers.get("X-MLFLOW-WORKSPACE")))
            return web.json_response({})

        app = web.Application()
        app.router.add_get("/api/2.0/mlflow/webhooks", webhooks)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        assert self._runner
        await self._runner.cleanup()


@pytest.fixture
async def auth_mlflow() -> AsyncIterator[AuthCheckingMlflow]:
    fake = await AuthCheckingMlflow().start()
    yield fake
    await fake.stop()


async def test_sends_mlflow_tracking_credentials_and_workspace(
    auth_mlflow: AuthCheckingMlflow, strict_service: ServerProcess
) -> None:
    async def run(env: dict[str, str]) -> subprocess.CompletedProcess:
        args = ("--address", strict_service.grpc_address, "import-mlflow")
        return await asyncio.to_thread(ctl, *args, "--mlflow-uri", auth_mlflow.url, env=env)

    for env in (
        {},
        {"MLFLOW_TRACKING_TOKEN": "t0ken"},
        {"MLFLOW_TRACKING_USERNAME": "ana", "MLFLOW_TRACKING_PASSWORD": "pw"},
        {"MLFLOW_WORKSPACE": "team-a"},
    ):
        done = await run(env)
        assert done.returncode == 0, done.stderr
        assert "0 webhooks in MLflow" in done.stdout
    basic = "Basic " + base64.b64encode(b"ana:pw").decode()
    assert auth_mlflow.headers == [
        (None, None),
        ("Bearer t0ken", None),
        (basic, None),
        (None, "team-a"),
    ]


def test_refuses_an_mlflow_server_with_the_bridge(
    mlflow_bridged: MlflowServer, strict_service: ServerProcess
) -> None:
    """Its webhooks API is the service's own: there is nothing of MLflow's to copy there."""
    done = ctl(
        "--address",
        strict_service.grpc_address,
        "import-mlflow",
        "--disable-source",
        "--mlflow-uri",
        mlflow_bridged.url,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert "runs the webhooks bridge" in done.stderr
    assert "without --app-name webhooks-bridge" in done.stderr

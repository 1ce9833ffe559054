"""The MLflow bridge end to end: a real `mlflow server --app-name webhooks-bridge` (two uvicorn
workers) publishing to a real service process that delivers to a real receiver, side by side
with a plain MLflow 3.17.2 server delivering the same operations through its own webhooks.

MLflow's client runs in the MLflow venv (tests/mlflow_env.py), one process per server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mlflow_webhooks_bridge import spool

from tests.mlflow_env import (
    BridgeService,
    MlflowClientProcess,
    MlflowServer,
)
from tests.support import ROOT, Received, Receiver

NATIVE_SECRET = "native-secret"
BRIDGE_SECRET = "bridge-secret"
# Every pair MLflow's registry fires (budget_policy.exceeded comes from the AI gateway).
REGISTRY_EVENTS = [
    ("registered_model", "created"),
    ("model_version", "created"),
    ("model_version_tag", "set"),
    ("model_version_tag", "deleted"),
    ("model_version_alias", "created"),
    ("model_version_alias", "deleted"),
    ("prompt", "created"),
    ("prompt_version", "created"),
    ("prompt_tag", "set"),
    ("prompt_tag", "deleted"),
    ("prompt_version_tag", "set"),
    ("prompt_version_tag", "deleted"),
    ("prompt_alias", "created"),
    ("prompt_alias", "deleted"),
]
WAIT = 90.0  # bounded waits for arrivals: a loaded machine, two MLflow servers
# The first test here also starts both MLflow servers (each 15-40 s on a loaded machine), and
# the restart tests start MLflow again.
pytestmark = pytest.mark.timeout(600)


def subscription() -> list[dict[str, str]]:
    """REST's form of every registry event (MlflowClient takes "entity.action" strings)."""
    return [{"entity": e.upper(), "action": a.upper()} for e, a in REGISTRY_EVENTS]


def every_registry_change(model: str, prompt: str) -> list[tuple[str, dict[str, Any]]]:
    """MlflowClient calls that fire each registry event once."""
    return [
        ("create_registered_model", {"name": model, "tags": {"team": "search"}}),
        (
            "create_model_version",
            {
                "name": model,
                "source": "s3://models/ranker/1",
                "tags": {"stage": "candidate"},
                "description": "first ranker",
            },
        ),
        ("set_model_version_tag", {"name": model, "version": "1", "key": "ok", "value": "yes"}),
        ("delete_model_version_tag", {"name": model, "version": "1", "key": "ok"}),
        ("set_registered_model_alias", {"name": model, "alias": "champion", "version": "1"}),
        ("delete_registered_model_alias", {"name": model, "alias": "champion"}),
        (
            "register_prompt",
            {
                "name": prompt,
                "template": "Summarize {{text}} in one line.",
                "commit_message": "first",
                "tags": {"lang": "en"},
            },
        ),
        ("set_prompt_tag", {"name": prompt, "key": "owner", "value": "nlp"}),
        ("delete_prompt_tag", {"name": prompt, "key": "owner"}),
        ("set_prompt_version_tag", {"name": prompt, "version": 1, "key": "qa", "value": "done"}),
        ("delete_prompt_version_tag", {"name": prompt, "version": 1, "key": "qa"}),
        ("set_prompt_alias", {"name": prompt, "alias": "production", "version": 1}),
        ("delete_prompt_alias", {"name": prompt, "alias": "production"}),
    ]


def verify_signature(received: Received, secret: str) -> None:
    headers = received.headers
    signed = f"{headers['X-MLflow-Delivery-Id']}.{headers['X-MLflow-Timestamp']}.".encode()
    mac = hmac.new(secret.encode(), signed + received.body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(mac).decode()
    assert hmac.compare_digest(headers["X-MLflow-Signature"], expected)


def events_of(receiver: Receiver, name: str) -> list[tuple[Received, dict[str, Any]]]:
    """What the receiver got about model or prompt `name`, in arrival order."""
    found = []
    for received in receiver.received:
        body = json.loads(received.body)
        if body["data"].get("name") == name:
            found.append((received, body))
    return found


async def wait_events(receiver: Receiver, name: str, count: int) -> list[dict[str, Any]]:
    async with receiver.arrived:
        await asyncio.wait_for(
            receiver.arrived.wait_for(lambda: len(events_of(receiver, name)) >= count), WAIT
        )
    return [body for _, body in events_of(receiver, name)]


async def rest(
    method: str, url: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, json=body) as response,
    ):
        return response.status, await response.json(content_type=None)


async def bridge_status(mlflow: MlflowServer) -> dict[str, Any]:
    status, body = await rest("GET", f"{mlflow.url}/webhooks-bridge/status")
    assert status == 200
    return body


async def until_status(mlflow: MlflowServer, check: Any) -> dict[str, Any]:
    for _ in range(int(WAIT / 0.1)):
        body = await bridge_status(mlflow)
        if check(body):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"the bridge status never got there: {body}")


@pytest.fixture(scope="module")
async def native_receiver() -> AsyncIterator[Receiver]:
    receiver = await Receiver().start()
    yield receiver
    await receiver.stop()


@pytest.fixture(scope="module")
async def bridge_receiver() -> AsyncIterator[Receiver]:
    receiver = await Receiver().start()
    yield receiver
    await receiver.stop()


@pytest.fixture(scope="module")
async def plain_client(
    mlflow_plain: MlflowServer, mlflow_python_path: Path
) -> AsyncIterator[MlflowClientProcess]:
    client = await MlflowClientProcess.start(mlflow_plain.url, python=mlflow_python_path)
    yield client
    await client.close()


@pytest.fixture(scope="module")
async def bridged_client(
    mlflow_bridged: MlflowServer, mlflow_python_path: Path
) -> AsyncIterator[MlflowClientProcess]:
    client = await MlflowClientProcess.start(mlflow_bridged.url, python=mlflow_python_path)
    yield client
    await client.close()


@pytest.fixture(scope="module")
async def bridge_webhook(
    bridged_client: MlflowClientProcess, bridge_receiver: Receiver
) -> AsyncIterator[str]:
    """A webhook on every registry event, made through the bridged MLflow server (so it lives
    in the service), delivering to bridge_receiver."""
    hook = await bridged_client.ok(
        "create_webhook",
        name="bridge-all",
        url=f"{bridge_receiver.url}/ok",
        events=[f"{entity}.{action}" for entity, action in REGISTRY_EVENTS],
        secret=BRIDGE_SECRET,
    )
    yield hook["webhook_id"]
    await bridged_client.ok("delete_webhook", webhook_id=hook["webhook_id"])


@pytest.fixture
async def service_up(bridge_service: BridgeService) -> AsyncIterator[BridgeService]:
    """Tests stop the shared service; whatever happens, it runs again afterwards."""
    yield bridge_service
    if not bridge_service.running:
        await asyncio.to_thread(bridge_service.start)


@pytest.fixture
async def mlflow_up(mlflow_bridged: MlflowServer) -> AsyncIterator[MlflowServer]:
    yield mlflow_bridged
    if not mlflow_bridged.running:
        await asyncio.to_thread(mlflow_bridged.start)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_every_registry_event_arrives_once_signed_as_mlflow_sends_it(
    mlflow_plain: MlflowServer,
    plain_client: MlflowClientProcess,
    bridged_client: MlflowClientProcess,
    bridge_webhook: str,
    native_receiver: Receiver,
    bridge_receiver: Receiver,
    bridge_service: BridgeService,
) -> None:
    model, prompt = unique("ranker"), unique("summary")
    native = {
        "name": unique("native"),
        "url": f"{native_receiver.url}/ok",
        "events": subscription(),
        "secret": NATIVE_SECRET,
    }
    status, created = await rest("POST", f"{mlflow_plain.url}/api/2.0/mlflow/webhooks", native)
    assert status == 200, created
    try:
        for op, args in every_registry_change(model, prompt):
            await plain_client.ok(op, **args)
            await bridged_client.ok(op, **args)
        # register_prompt also tags the prompt with MLflow's own _mlflow_experiment_ids: a
        # second prompt_tag.set, which MLflow fires too.
        expected = {"model": 6, "prompt": 9}
        native_bodies = await wait_events(native_receiver, model, expected["model"])
        native_bodies += await wait_events(native_receiver, prompt, expected["prompt"])
        bridged_bodies = await wait_events(bridge_receiver, model, expected["model"])
        bridged_bodies += await wait_events(bridge_receiver, prompt, expected["prompt"])
    finally:
        webhook_id = created["webhook"]["webhook_id"]
        await rest("DELETE", f"{mlflow_plain.url}/api/2.0/mlflow/webhooks/{webhook_id}")

    def by_event(bodies: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
        keyed = {(b["entity"], b["action"], b["data"].get("key", "")): b["data"] for b in bodies}
        assert len(keyed) == len(bodies), "an event arrived twice"
        return keyed

    native_data, bridged_data = by_event(native_bodies), by_event(bridged_bodies)
    assert {(entity, action) for entity, action, _ in native_data} == set(REGISTRY_EVENTS)
    assert bridged_data == native_data
    # MLflow resolved these before it built the payload; the bridge took them as they were.
    assert bridged_data["model_version", "created", ""]["source"] == "s3://models/ranker/1"
    assert bridged_data["prompt_version", "created", ""]["template"] == (
        "Summarize {{text}} in one line."
    )

    ours = events_of(bridge_receiver, model) + events_of(bridge_receiver, prompt)
    for received, _ in ours:
        verify_signature(received, BRIDGE_SECRET)
    for received, _ in events_of(native_receiver, model):
        verify_signature(received, NATIVE_SECRET)
    delivery_ids = [received.headers["X-MLflow-Delivery-Id"] for received, _ in ours]
    assert len(set(delivery_ids)) == len(delivery_ids) == 15
    # The service's log holds one delivery per event, each answered on its first attempt.
    for delivery_id in delivery_ids:
        status, answer = await rest(
            "GET", f"{bridge_service.http_url}/api/2.0/mlflow/webhook-deliveries/{delivery_id}"
        )
        assert status == 200
        assert answer["delivery"]["status"] == "SUCCEEDED"
        assert len(answer["delivery"]["attempts"]) == 1


async def test_service_down_registry_works_and_events_follow_in_order(
    mlflow_up: MlflowServer,
    service_up: BridgeService,
    bridged_client: MlflowClientProcess,
    bridge_webhook: str,
    bridge_receiver: Receiver,
) -> None:
    model = unique("offline")
    await bridged_client.ok("create_registered_model", name=model)
    await wait_events(bridge_receiver, model, 1)
    await asyncio.to_thread(service_up.stop)
    await bridged_client.ok("create_model_version", name=model, source="s3://models/o/1")
    for n in range(5):
        await bridged_client.ok(
            "set_model_version_tag", name=model, version="1", key=f"k{n}", value=str(n)
        )
    # Every change was answered, and every event waits in the spool.
    status = await until_status(mlflow_up, lambda s: s["last_error"] is not None)
    assert status["spooled"] == 6
    assert status["oldest_spooled_age_seconds"] > 0
    assert "cannot reach the service" in status["last_error"]
    # MLflow's webhooks API goes to the service too: while it is down, MLflow says so.
    status, error = await rest("GET", f"{mlflow_up.url}/api/2.0/mlflow/webhooks")
    assert status == 503
    assert error["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert "unreachable" in error["message"]
    # MLflow's client treats every 503 as worth retrying and, once out of retries, reports it
    # as an INTERNAL_ERROR naming the 503.
    error = await bridged_client.error("list_webhooks")
    assert "503" in error["message"]

    await asyncio.to_thread(service_up.start)
    bodies = await wait_events(bridge_receiver, model, 7)
    await until_status(mlflow_up, lambda s: s["spooled"] == 0)
    # The service stamps each event when it is published: in that order, they are the order
    # the changes were made in, each once.
    published = sorted(bodies, key=lambda b: b["timestamp"])
    assert [(b["entity"], b["data"].get("key")) for b in published] == [
        ("registered_model", None),
        ("model_version", None),
        *[("model_version_tag", f"k{n}") for n in range(5)],
    ]
    assert len(bodies) == 7


async def test_events_spooled_by_a_stopped_mlflow_server_arrive_after_its_restart(
    mlflow_up: MlflowServer,
    service_up: BridgeService,
    bridged_client: MlflowClientProcess,
    bridge_webhook: str,
    bridge_receiver: Receiver,
) -> None:
    model = unique("restart")
    await asyncio.to_thread(service_up.stop)
    await bridged_client.ok("create_registered_model", name=model)
    await bridged_client.ok("create_model_version", name=model, source="s3://models/r/1")
    await asyncio.to_thread(mlflow_up.stop)
    spool_dir = Path(mlflow_up.env["MLFLOW_WEBHOOKS_SPOOL_DIR"])
    assert spool.status(spool_dir)["spooled"] == 2  # registered model and version

    await asyncio.to_thread(service_up.start)
    await asyncio.to_thread(mlflow_up.start)
    bodies = await wait_events(bridge_receiver, model, 2)
    await until_status(mlflow_up, lambda s: s["spooled"] == 0)
    assert sorted(b["entity"] for b in bodies) == ["model_version", "registered_model"]


async def test_event_survives_kill_9_of_the_worker_that_answered(
    mlflow_up: MlflowServer,
    service_up: BridgeService,
    bridged_client: MlflowClientProcess,
    bridge_webhook: str,
    bridge_receiver: Receiver,
) -> None:
    model = unique("killed")
    await asyncio.to_thread(service_up.stop)
    workers = mlflow_up.worker_pids()
    assert len(workers) == 2
    await bridged_client.ok("create_registered_model", name=model)
    # Right after the answer, before anything could be published: every worker, so the one
    # that answered surely dies. uvicorn starts new ones.
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    await asyncio.to_thread(service_up.start)
    bodies = await wait_events(bridge_receiver, model, 1)
    await until_status(mlflow_up, lambda s: s["spooled"] == 0)
    assert set(mlflow_up.worker_pids()).isdisjoint(workers)
    assert [b["entity"] for b in bodies] == ["registered_model"]


async def test_webhooks_api_through_mlflow_manages_the_services_webhooks(
    mlflow_bridged: MlflowServer,
    bridged_client: MlflowClientProcess,
    bridge_service: BridgeService,
    bridge_receiver: Receiver,
) -> None:
    created = await bridged_client.ok(
        "create_webhook",
        name="through-mlflow",
        url=f"{bridge_receiver.url}/ok",
        events=["model_version.created"],
        description="made with MlflowClient",
        secret="s3cret",
    )
    webhook_id = created["webhook_id"]
    # It lives in the service, not in MLflow's own store.
    status, stored = await rest(
        "GET", f"{bridge_service.http_url}/api/2.0/mlflow/webhooks/{webhook_id}"
    )
    assert status == 200
    assert stored["webhook"]["description"] == "made with MlflowClient"
    assert "secret" not in stored["webhook"]

    got = await bridged_client.ok("get_webhook", webhook_id=webhook_id)
    assert got["name"] == "through-mlflow"
    listed = await bridged_client.ok("list_webhooks", max_results=1000)
    assert webhook_id in [w["webhook_id"] for w in listed["items"]]
    updated = await bridged_client.ok(
        "update_webhook", webhook_id=webhook_id, description="changed", status="DISABLED"
    )
    assert (updated["description"], updated["status"]) == ("changed", "DISABLED")

    before = len(bridge_receiver.received)
    tested = await bridged_client.ok("test_webhook", webhook_id=webhook_id)
    assert tested["success"] is True
    received = (await bridge_receiver.wait_for(before + 1))[before]
    assert json.loads(received.body)["data"]["name"] == "example_model"
    verify_signature(received, "s3cret")

    # MLflow's UI calls the same API under /ajax-api.
    status, page = await rest("GET", f"{mlflow_bridged.url}/ajax-api/2.0/mlflow/webhooks")
    assert status == 200
    assert webhook_id in [w["webhook_id"] for w in page["webhooks"]]

    await bridged_client.ok("delete_webhook", webhook_id=webhook_id)
    error = await bridged_client.error("get_webhook", webhook_id=webhook_id)
    assert error["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert error["message"].endswith(f"Webhook with ID {webhook_id} not found.")
    error = await bridged_client.error(
        "create_webhook", name="bad", url="ftp://example.com", events=["model_version.created"]
    )
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_only_webhook_paths_are_forwarded(mlflow_bridged: MlflowServer) -> None:
    """The bridge adds its token to what it forwards: nothing but the webhooks routes goes."""
    for path in ("webhooks/..%2F..%2Fmetrics", "webhooks/x/..%2F..%2F..%2Fmetrics"):
        status, body = await rest("GET", f"{mlflow_bridged.url}/api/2.0/mlflow/{path}")
        assert status == 404, body
        assert body["error_code"] in ("ENDPOINT_NOT_FOUND", "RESOURCE_DOES_NOT_EXIST")


async def test_budget_exceeded_is_captured_from_mlflows_gateway_code(
    bridge_site: Path, mlflow_python_path: Path, bridge_service: BridgeService
) -> None:
    """MLflow's AI gateway builds the budget_policy.exceeded payload; the hook gets it, and
    MLflow's own delivery runs only in tee mode. The payload is one the service accepts."""
    answer = await asyncio.to_thread(
        subprocess.run,
        [str(mlflow_python_path), str(ROOT / "tests" / "bridge_hook_check.py")],
        env={**os.environ, "PYTHONPATH": str(bridge_site)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(answer.stdout.strip().splitlines()[-1])
    for mode, native in [("replace", []), ("tee", [["budget_policy", "exceeded"]])]:
        [[entity, action, data]] = result[mode]["sink"]
        assert (entity, action) == ("budget_policy", "exceeded")
        assert result[mode]["native"] == native, mode
    assert data["current_spend"] == 123.5
    assert data["duration_value"] == 1
    assert data["target_value"] is None
    publish = {
        "event": {"entity": "BUDGET_POLICY", "action": "EXCEEDED"},
        "data": data,
        "idempotency_key": unique("budget"),
    }
    status, body = await rest(
        "POST", f"{bridge_service.http_url}/api/2.0/mlflow/webhook-events", publish
    )
    assert status == 200, body


async def test_mlflow_server_refuses_to_start_without_the_service_url(
    bridge_site: Path,
    mlflow_python_path: Path,
    tmp_path: Path,
) -> None:
    answer = await asyncio.to_thread(
        subprocess.run,
        [
            str(mlflow_python_path),
            "-m",
            "mlflow",
            "server",
            "--app-name",
            "webhooks-bridge",
            "--backend-store-uri",
            f"sqlite:///{tmp_path}/mlflow.db",
            "--port",
            "1",
        ],
        env={**os.environ, "PYTHONPATH": str(bridge_site), "MLFLOW_WEBHOOKS_URL": ""},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # MLflow's CLI imports the app before it starts uvicorn: it stops there, with one line.
    assert answer.returncode == 1
    assert answer.stderr.strip().splitlines()[-1] == (
        "mlflow-webhooks-bridge: MLFLOW_WEBHOOKS_URL is not set: set it to the webhooks "
        "service's HTTP address, e.g. http://127.0.0.1:8080"
    )
    assert "Uvicorn running" not in answer.stderr


async def test_missing_mlflow_internals_stop_the_bridge_naming_the_version(
    bridge_site: Path, mlflow_python_path: Path, tmp_path: Path
) -> None:
    # As on a MLflow whose server has no such module: importing it fails.
    probe = (
        "import sys; sys.modules['mlflow.server.handlers'] = None; "
        "import mlflow_webhooks_bridge.app"
    )
    answer = await asyncio.to_thread(
        subprocess.run,
        [str(mlflow_python_path), "-c", probe],
        env={**os.environ, "PYTHONPATH": str(bridge_site), "MLFLOW_WEBHOOKS_URL": "http://x"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert answer.returncode == 1
    assert answer.stderr.strip() == (
        "mlflow-webhooks-bridge: MLflow 3.17.2 does not have mlflow.server.handlers, which the "
        "bridge hooks; it is tested on MLflow 3.17.2 (needs >= 3.3)"
    )

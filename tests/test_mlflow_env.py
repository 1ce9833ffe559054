"""The MLflow test set-up itself: the cached venv's server runs, and its native webhooks reach a
receiver on loopback (what the bridge tests compare against)."""

from __future__ import annotations

import json
import uuid

import aiohttp

from tests.mlflow_env import MLFLOW_VERSION, MlflowServer
from tests.support import Receiver


async def test_plain_server_delivers_native_webhooks_to_loopback(
    mlflow_plain: MlflowServer, receiver: Receiver
) -> None:
    name = f"env-{uuid.uuid4().hex[:8]}"
    api = f"{mlflow_plain.url}/api/2.0/mlflow"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{mlflow_plain.url}/version") as r:
            assert await r.text() == MLFLOW_VERSION
        hook = {
            "name": name,
            "url": f"{receiver.url}/ok",
            "events": [{"entity": "REGISTERED_MODEL", "action": "CREATED"}],
            "secret": "env-secret",
        }
        async with http.post(f"{api}/webhooks", json=hook) as r:
            assert r.status == 200, await r.text()
            webhook_id = (await r.json())["webhook"]["webhook_id"]
        before = len(receiver.received)
        async with http.post(f"{api}/registered-models/create", json={"name": name}) as r:
            assert r.status == 200, await r.text()
        received = await receiver.wait_for(before + 1)
        async with http.delete(f"{api}/webhooks/{webhook_id}") as r:
            assert r.status == 200
    body = json.loads(received[before].body)
    assert (body["entity"], body["action"]) == ("registered_model", "created")
    assert body["data"] == {"name": name, "tags": {}, "description": ""}
    assert received[before].headers["X-MLflow-Signature"].startswith("v1,")

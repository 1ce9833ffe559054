"""MLflow's own client (mlflow-skinny) against the JSON shim, as `MlflowClient(tracking_uri=...)`.

The client runs in tests/mlflow_worker.py, a process of its own (MLflow's protos and ours
cannot share one), driven over pipes; the receiver answers in this test's event loop while a
call is in flight."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.mlflow_env import MlflowClientProcess
from tests.support import ServerProcess, own_server

MV_CREATED = "model_version.created"


def dedicated_server(workdir: Path) -> ServerProcess:
    return own_server(workdir)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory):
    proc = dedicated_server(tmp_path_factory.mktemp("mlflow-server"))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
async def client(mlflow_server: ServerProcess) -> AsyncIterator[MlflowClientProcess]:
    proc = await MlflowClientProcess.start(mlflow_server.http_url)
    yield proc
    await proc.close()


async def test_create_with_event_strings_and_objects(client):
    as_strings = await client.ok(
        "create_webhook",
        name="strings",
        url="https://example.com/a",
        events=[MV_CREATED, "model_version_alias.deleted"],
        description="made by MLflow's client",
        secret="shh",
    )
    assert as_strings["event_strings"] == [MV_CREATED, "model_version_alias.deleted"]
    assert as_strings["description"] == "made by MLflow's client"
    assert as_strings["status"] == "ACTIVE"
    assert as_strings["secret_attribute"] is None
    assert as_strings["creation_timestamp"] == as_strings["last_updated_timestamp"]

    as_objects = await client.ok(
        "create_webhook",
        name="objects",
        url="https://example.com/b",
        events=[
            {"entity": "registered_model", "action": "created"},
            {"entity": "prompt_tag", "action": "set"},
        ],
        status="DISABLED",
    )
    assert as_objects["event_strings"] == ["registered_model.created", "prompt_tag.set"]
    assert as_objects["status"] == "DISABLED"
    assert "description" not in as_objects

    got = await client.ok("get_webhook", webhook_id=as_objects["webhook_id"])
    assert got == as_objects


async def test_update_full_and_partial(client):
    made = await client.ok(
        "create_webhook",
        name="before",
        url="https://example.com/before",
        events=[MV_CREATED],
        description="before",
    )
    hook_id = made["webhook_id"]
    full = await client.ok(
        "update_webhook",
        webhook_id=hook_id,
        name="after",
        description="after",
        url="https://example.com/after",
        events=["prompt.created", {"entity": "model_version_tag", "action": "deleted"}],
        secret="new-secret",
        status="DISABLED",
    )
    assert (full["name"], full["description"], full["url"], full["status"]) == (
        "after",
        "after",
        "https://example.com/after",
        "DISABLED",
    )
    assert full["event_strings"] == ["prompt.created", "model_version_tag.deleted"]
    assert full["creation_timestamp"] == made["creation_timestamp"]
    assert full["last_updated_timestamp"] > made["last_updated_timestamp"]

    partial = await client.ok("update_webhook", webhook_id=hook_id, status="ACTIVE")
    assert partial["status"] == "ACTIVE"
    for field in ("name", "description", "url", "event_strings"):
        assert partial[field] == full[field], field
    assert partial["last_updated_timestamp"] > full["last_updated_timestamp"]
    assert await client.ok("get_webhook", webhook_id=hook_id) == partial


async def test_delete_then_get_is_resource_does_not_exist(client):
    made = await client.ok(
        "create_webhook", name="doomed", url="https://example.com/x", events=[MV_CREATED]
    )
    assert await client.ok("delete_webhook", webhook_id=made["webhook_id"]) is None
    error = await client.error("get_webhook", webhook_id=made["webhook_id"])
    assert error["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert f"Webhook with ID {made['webhook_id']} not found." in error["message"]
    error = await client.error("delete_webhook", webhook_id=made["webhook_id"])
    assert error["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "Invalid webhook URL scheme: 'ftp'. Allowed schemes are: "),
        ("   ", "Webhook URL cannot be empty or just whitespace: '   '"),
        ("https://", "Webhook URL must include a hostname: 'https://'"),
    ],
)
async def test_invalid_url_is_invalid_parameter_value(client, url, message):
    error = await client.error("create_webhook", name="bad", url=url, events=[MV_CREATED])
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in error["message"]


@pytest.mark.parametrize(
    ("path", "success", "status"), [("/ok", True, 200), ("/status/404", False, 404)]
)
async def test_test_webhook_against_receiver(client, receiver, path, success, status):
    made = await client.ok(
        "create_webhook", name="tested", url=receiver.url + path, events=[MV_CREATED]
    )
    before = len(receiver.received)
    result = await client.ok("test_webhook", webhook_id=made["webhook_id"])
    assert result.get("success", False) is success, result
    assert result["response_status"] == status
    arrived = await receiver.wait_for(before + 1)
    assert path in [r.path for r in arrived[before:]]


async def test_list_pages_exactly(workdir):
    """A server of its own, so the counts are exact: 7 webhooks in pages of 3."""
    server = dedicated_server(workdir)
    client = await MlflowClientProcess.start(server.http_url)
    try:
        made = [
            await client.ok(
                "create_webhook", name=f"page-{i}", url="https://example.com/p", events=[MV_CREATED]
            )
            for i in range(7)
        ]
        pages: list[list[str]] = []
        token = None
        while True:
            page = await client.ok("list_webhooks", max_results=3, page_token=token)
            pages.append([w["name"] for w in page["items"]])
            token = page["token"]
            if not token:
                break
            assert len(pages) < 10
        assert [len(p) for p in pages] == [3, 3, 1]
        # Newest first.
        assert [name for page in pages for name in page] == [w["name"] for w in reversed(made)]
        everything = await client.ok("list_webhooks")
        assert len(everything["items"]) == 7 and not everything["token"]
    finally:
        await client.close()
        server.stop()

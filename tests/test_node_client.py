"""The Node.js client's own `node --test` suite, run against a real server started here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PERMISSIVE
from tests.support import ROOT, make_certificates, run_server

NODE_DIR = ROOT / "clients" / "node"
TOKEN = "node-test-token"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed; the Node.js client's tests need node 20+ and npm"
        # CI must run every test: a missing toolchain there is a failure, not a skip.
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def dependencies_stale() -> bool:
    """npm writes node_modules/.package-lock.json on every install; older than the lock file
    (or missing) means node_modules does not match what is committed."""
    installed = NODE_DIR / "node_modules" / ".package-lock.json"
    if not installed.exists():
        return True
    newest = max((NODE_DIR / f).stat().st_mtime for f in ("package.json", "package-lock.json"))
    return installed.stat().st_mtime < newest


def install_dependencies() -> None:
    if dependencies_stale():
        installed = subprocess.run(
            [tool("npm"), "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert installed.returncode == 0, f"npm ci failed:\n{installed.stdout}{installed.stderr}"


@pytest.mark.timeout(600)
def test_node_client_suite(tmp_path: Path) -> None:
    node = tool("node")
    install_dependencies()

    # With a token and TLS, so the suite covers the client's metadata and credentials too.
    ca, cert, key = make_certificates(tmp_path)
    server = run_server(
        tmp_path,
        *PERMISSIVE,
        "--delivery-timeout",
        "2",
        "--auth-token",
        TOKEN,
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--database-url",
        f"sqlite:///{tmp_path}/webhooks.db",
    )
    try:
        env = {
            **os.environ,
            "WEBHOOKS_ADDRESS": server.grpc_address,
            "WEBHOOKS_AUTH_TOKEN": TOKEN,
            "WEBHOOKS_CACERT": str(ca),
            # Nothing listens on port 9: deliveries fail fast, which these tests do not mind.
            "WEBHOOKS_TEST_URL": "http://127.0.0.1:9/hook",
        }
        result = subprocess.run(
            [node, "--test"],
            cwd=NODE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.stop()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    passed = re.search(r"^# pass (\d+)$", result.stdout, re.MULTILINE)
    assert passed and int(passed.group(1)) >= 4, output
    assert re.search(r"^# fail 0$", result.stdout, re.MULTILINE), output


@pytest.mark.timeout(600)
def test_clients_md_node_example_runs_from_the_clone_root(tmp_path: Path) -> None:
    """docs/clients.md's Node.js example, as written, run from the clone's root (where its
    require('./clients/node') points) against a server of its own."""
    node = tool("node")
    install_dependencies()
    doc = (ROOT / "docs" / "clients.md").read_text()
    [example] = re.findall(r"^```js\n(.*?)^```", doc, re.MULTILINE | re.DOTALL)
    server = run_server(
        tmp_path, *PERMISSIVE, "--database-url", f"sqlite:///{tmp_path}/webhooks.db"
    )
    try:
        result = subprocess.run(
            [node, "-e", example.replace("127.0.0.1:50051", server.grpc_address)],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if k != "WEBHOOKS_AUTH_TOKEN"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ACTIVE" in result.stdout

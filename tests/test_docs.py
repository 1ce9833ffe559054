"""Every code block of the Markdown docs (README.md, docs/*.md), run as written, as one
reader would: in the doc's order, in one shell and one Python interpreter per doc, against a
real server started here on free ports, from a scratch clone. The rule (what runs how, what
may be skipped and why, what is replaced) is tests/doc_blocks.py's docstring."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

import tests.test_node_client as node_client
from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from mlflow_webhooks.generated import webhook_delivery_pb2_grpc as dpb_grpc
from mlflow_webhooks.generated import webhooks_pb2 as pb
from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc
from tests import doc_blocks
from tests.databases import fresh
from tests.doc_blocks import Block
from tests.support import PERMISSIVE, ROOT, Received, Receiver, ServerProcess

DONE = "@@doc-block-done@@"
BLOCK_TIMEOUT = 90.0
GRPC_DEFAULT, HTTP_DEFAULT = "127.0.0.1:50051", "127.0.0.1:8080"
MLFLOW_DEFAULT = "http://127.0.0.1:5000"
MLFLOW_WEBHOOKS_DEFAULT = "http://127.0.0.1:8080"
PRODUCTION_DATA = "/var/lib/webhooks"
PRODUCTION_CLONE = "/opt/webhooks"
PRODUCTION_POSTGRES = "postgresql://webhooks@db.internal/webhooks"
SECRET = "doc-secret"
PYTHON_DRIVER = f"""
import json, sys
namespace = {{"__name__": "__main__"}}
for line in sys.stdin:
    exec(compile(json.loads(line), "<doc block>", "exec"), namespace)
    print("\\n{DONE}", flush=True)
"""


def test_every_block_is_run_or_marked_skipped() -> None:
    found = [p for doc in doc_blocks.docs() for p in doc_blocks.problems(doc, read(doc))]
    assert not found, "\n".join(found)


def test_a_unit_systemd_would_refuse_fails(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    text = "```ini\n# /etc/systemd/system/x.service\n[Service]\nExecStart=/nowhere/x\n```\n"
    [unit] = doc_blocks.parse("x.md", text)
    with pytest.raises(AssertionError, match=r"x\.md:1"):
        DocRun("x.md", tmp_path, {}, {}).verify_unit(unit, unit.text)


def read(doc: str) -> str:
    return (ROOT / doc).read_text()


# -- running a doc ----------------------------------------------------------------------


class Session:
    """A process fed one block at a time on stdin, which prints DONE after each; standard
    output and error come back together, per block."""

    def __init__(self, what: str, command: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.what = what
        self.proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def run(self, payload: str, where: str) -> str:
        assert self.proc.stdin
        self.proc.stdin.write(payload)
        self.proc.stdin.flush()
        printed: list[str] = []
        deadline = time.monotonic() + BLOCK_TIMEOUT
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.proc.kill()
                message = f"{where}: no end in {BLOCK_TIMEOUT} s:\n{''.join(printed)}"
                raise AssertionError(message) from None
            if not line:
                code = self.proc.wait(timeout=10)
                raise AssertionError(f"{where}: the {self.what} exited {code}:\n{''.join(printed)}")
            if line.rstrip("\n") == DONE:
                # DONE is printed on a line of its own: drop the newline put before it.
                return "".join(printed)[:-1]
            printed.append(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


class Shell(Session):
    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        command = ["bash", "--noprofile", "--norc", "-euo", "pipefail", "-s"]
        super().__init__("shell", command, cwd, env)

    def block(self, text: str, where: str, *, failing_ok: bool = False) -> str:
        # The block reads no stdin but its own heredocs: the rest of stdin is the next blocks.
        status = " 2>&1 || :" if failing_ok else ""
        return self.run(f"{{\n{text}\n}} </dev/null{status}\nprintf '\\n%s\\n' {DONE}\n", where)


class Python(Session):
    def __init__(self, python: str, cwd: Path, env: dict[str, str]) -> None:
        # -P: only installed packages import, not the clone's folders.
        super().__init__("Python interpreter", [python, "-P", "-c", PYTHON_DRIVER], cwd, env)

    def block(self, text: str, where: str) -> str:
        return self.run(json.dumps(text) + "\n", where)


@dataclass
class DocRun:
    """One doc's blocks, run in order; `outputs` maps each run block to what it printed."""

    doc: str
    clone: Path
    env: dict[str, str]
    replacements: dict[str, str]
    python: str = sys.executable
    outputs: dict[Block, str] = field(default_factory=dict)
    servers: list[tuple[Block, ServerProcess]] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # blocks whose tool is missing
    _shell: Shell | None = None
    _python: Python | None = None

    def shell(self) -> Shell:
        if self._shell is None:
            self._shell = Shell(self.clone, self.env)
        return self._shell

    def run(self) -> DocRun:
        previous: Block | None = None
        for block in doc_blocks.blocks(self.doc):
            if block.skip:
                continue
            text = doc_blocks.substitute(block.text, self.replacements)
            if block.starts_server:
                self.start_server(block)
            elif block.language in doc_blocks.SHELLS:
                self.outputs[block] = self.shell().block(text, block.where)
            elif block.language == "console":
                for command, shown in doc_blocks.transcript(text):
                    printed = self.shell().block(command, block.where, failing_ok=True)
                    assert printed == shown, f"{block.where}: `{command}` printed\n{printed}"
            elif block.language == "python":
                if self._python is None:
                    self._python = Python(self.python, self.clone, self.env)
                self.outputs[block] = self._python.block(text, block.where)
            elif block.language == "js":
                node_client.tool("node")  # skips without node, but under CI=true
                node_client.install_dependencies()
                (self.clone / "example.js").write_text(text)
                self.outputs[block] = self.shell().block("node example.js", block.where)
            elif block.unit_path:
                self.verify_unit(block, text)
            else:
                assert block.language == "json", block
                check_answer(block, previous, self.outputs.get(previous) if previous else None)
            previous = block
        for ran, printed in self.outputs.items():
            if ran.language in doc_blocks.SHELLS:
                shown = self.answer_shown(ran)
                if shown is None or "error_code" not in shown:
                    errors = [a for a in json_documents(printed) if "error_code" in a]
                    assert not errors, f"{ran.where} was answered {errors}"
        return self

    def verify_unit(self, block: Block, text: str) -> None:
        assert block.unit_path
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            self.unchecked.append(f"{block.where} (systemd-analyze is not installed)")
            return
        unit = self.clone / Path(block.unit_path).name
        unit.write_text(text)
        done = subprocess.run(
            [analyze, "verify", str(unit)],
            cwd=self.clone,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (done.returncode, done.stdout + done.stderr) == (0, ""), block.where

    def answer_shown(self, block: Block) -> Any:
        following = [b for b in doc_blocks.blocks(self.doc) if b.line > block.line][:1]
        if following and following[0].language == "json":
            return json.loads(following[0].text)
        return None

    def start_server(self, block: Block) -> None:
        """In the background, on free ports; the blocks after it talk to it."""
        if "make " in block.text:
            require_current_venv(self.clone)
        text = doc_blocks.substitute(
            block.text,
            {**self.replacements, GRPC_DEFAULT: "127.0.0.1:0", HTTP_DEFAULT: "127.0.0.1:0"},
        )
        # A block of one command: bash execs it, so the server (or make) gets the signals.
        server = ServerProcess([], dict(self.env), command=["bash", "-c", text], cwd=self.clone)
        self.servers.append((block, server.start(self.clone)))
        http = server.http_url.removeprefix("http://")
        self.replacements.update({GRPC_DEFAULT: server.grpc_address, HTTP_DEFAULT: http})
        self.env["WEBHOOKS_ADDRESS"] = server.grpc_address
        if self._shell is not None:
            self._shell.block(f"export WEBHOOKS_ADDRESS={server.grpc_address}", block.where)

    def output(self, pattern: str) -> list[str]:
        """What the blocks holding `pattern` printed."""
        return [out for block, out in self.outputs.items() if re.search(pattern, block.text)]

    def close(self) -> None:
        """Ends the sessions, then drains the servers the blocks started: each exits 0
        (`make run` re-raises the SIGTERM it passed on, once the server exited)."""
        for session in (self._shell, self._python):
            if session is not None:
                session.close()
        for block, server in self.servers:
            code = server.stop()
            drained = -signal.SIGTERM if block.text.startswith("make ") else 0
            assert code == drained, f"{block.where}: the server exited {code}: {server.log()}"


def check_answer(block: Block, previous: Block | None, printed: str | None) -> None:
    """A json block: valid, and after a shell block the form of what that block printed."""
    shown = json.loads(block.text)
    if previous is None or previous.language not in doc_blocks.SHELLS:
        return
    assert printed is not None, f"{block.where}: the block before it did not run"
    answers = json_documents(printed)
    if "error_code" in shown:
        assert [a.get("error_code") for a in answers] == [shown["error_code"]], block.where
    else:
        assert [set(a) for a in answers] == [set(shown)], (block.where, answers)


def json_documents(text: str) -> list[Any]:
    """The JSON objects printed one after another, or none when the text is not only that."""
    decoder = json.JSONDecoder()
    documents, at = [], 0
    try:
        while text[at:].strip():
            at += len(text[at:]) - len(text[at:].lstrip())
            document, at = decoder.raw_decode(text, at)
            documents.append(document)
    except json.JSONDecodeError:
        return []
    return [d for d in documents if isinstance(d, dict)]


def require_current_venv(clone: Path) -> None:
    """`make run` in the clone must find the venv installed: else it would install the
    scratch clone into it."""
    done = subprocess.run(
        ["make", "-q", "--no-print-directory", ".venv/.installed-run"],
        cwd=clone,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(".venv is older than setup.cfg: run `make .venv/.installed` first")


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reader's clone: links to the checkout's files and its .venv, in a directory of
    its own, so what the docs write (webhooks.db, backups/, openapi.json) lands there."""
    directory = tmp_path_factory.mktemp("docs") / "clone"
    directory.mkdir()
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    for name in {path.split("/", 1)[0] for path in tracked}:
        (directory / name).symlink_to(ROOT / name)
    (directory / ".venv").symlink_to(sys.prefix)  # the venv these tests run in
    (directory / PRODUCTION_DATA.lstrip("/")).mkdir(parents=True)
    return directory


@pytest.fixture(scope="module")
def docs_server(clone: Path) -> Iterator[ServerProcess]:
    """The server `make run ARGS="--allow-private-urls --allowed-schemes http,https"` starts
    (the README's offline way: the docs' example.com hosts need no DNS answer), on
    webhooks.db in the clone, as `make run` keeps it."""
    server = ServerProcess(
        [*PERMISSIVE, "--delivery-timeout", "2", "--database-url", "sqlite:///webhooks.db"],
        cwd=clone,
    ).start(clone)
    yield server
    assert server.stop() == 0


@dataclass
class Mine:
    """What the docs take as the reader's own: two webhooks and a delivery of the first."""

    webhook_id: str
    other_id: str
    delivery_id: str
    received: Received  # the delivery, as the receiver got it

    @property
    def env(self) -> dict[str, str]:
        return {
            "WEBHOOK_ID": self.webhook_id,
            "OTHER_ID": self.other_id,
            "DELIVERY_ID": self.delivery_id,
        }


@pytest.fixture
async def mine(docs_server: ServerProcess, receiver: Receiver) -> Mine:
    async with grpc.aio.insecure_channel(docs_server.grpc_address) as channel:
        hooks, deliveries = (
            pb_grpc.WebhookServiceStub(channel),
            dpb_grpc.WebhookDeliveryServiceStub(channel),
        )
        event = pb.WebhookEvent(entity=pb.MODEL_VERSION, action=pb.CREATED)
        ids = []
        for name in ("mine", "other"):
            created = await hooks.createWebhook(
                pb.CreateWebhook(name=name, url=f"{receiver.url}/ok", events=[event], secret=SECRET)
            )
            ids.append(created.webhook.webhook_id)
        request = dpb.PublishEvent(event=event)
        request.data.update(
            {"name": "churn", "version": "1", "source": "models:/churn/1", "run_id": None}
            | {"tags": {}, "description": None}
        )
        sent = await deliveries.publishEvent(request)
        listed = await deliveries.listDeliveries(
            dpb.ListDeliveries(webhook_id=ids[0], event_id=sent.event_id)
        )
        [delivery_id] = [d.delivery_id for d in listed.deliveries]
        async with receiver.arrived:
            await asyncio.wait_for(
                receiver.arrived.wait_for(lambda: delivery_id in receiver.delivery_ids()), 30
            )
    [received] = [r for r in receiver.received if r.headers["webhook-id"] == delivery_id]
    return Mine(ids[0], ids[1], delivery_id, received)


def run_doc(
    doc: str,
    clone: Path,
    server: ServerProcess,
    mine: Mine,
    replacements: dict[str, str],
    python: str = sys.executable,
) -> DocRun:
    env = {
        **os.environ,
        # As after the README's `export PATH="$PWD/.venv/bin:$PATH"`.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "WEBHOOKS_ADDRESS": server.grpc_address,
        **mine.env,
    }
    defaults = {
        GRPC_DEFAULT: server.grpc_address,
        HTTP_DEFAULT: server.http_url.removeprefix("http://"),
        "webhooks.internal:50051": server.grpc_address,
        PRODUCTION_DATA: str(clone / PRODUCTION_DATA.lstrip("/")),
        PRODUCTION_CLONE: str(clone),
    }
    run = DocRun(doc, clone, env, defaults | replacements, python)
    try:
        return run.run()
    finally:
        run.close()


# -- the docs ---------------------------------------------------------------------------


@pytest.mark.timeout(600)
@pytest.mark.parametrize("doc", doc_blocks.docs())
async def test_doc_runs_as_written(
    doc: str,
    clone: Path,
    docs_server: ServerProcess,
    mine: Mine,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    replacements: dict[str, str] = {}
    python = sys.executable
    if doc == "docs/mlflow.md":
        # The session's MLflow set-up stands in for the doc's (skip reason mlflow-server).
        mlflow, service = (request.getfixturevalue(f) for f in ("mlflow_bridged", "bridge_service"))
        python = str(request.getfixturevalue("mlflow_python_path"))
        replacements = {
            MLFLOW_DEFAULT: mlflow.url,
            HTTP_DEFAULT: service.http_url.removeprefix("http://"),
        }
    with contextlib.ExitStack() as stack:
        if doc == "docs/operations.md":
            database = stack.enter_context(fresh("postgresql", tmp_path))
            replacements = {PRODUCTION_POSTGRES: database.url}
        run = await asyncio.to_thread(run_doc, doc, clone, docs_server, mine, replacements, python)
        check = CHECKS.get(doc)
        if check:
            await check(run, mine, request)
    if run.unchecked:
        message = "every other block ran, but not " + ", ".join(run.unchecked)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


async def check_readme(run: DocRun, mine: Mine, request: pytest.FixtureRequest) -> None:
    [updated] = [json.loads(out) for out in run.output(r"WebhookService/updateWebhook")]
    assert (updated["webhook"]["name"], updated["webhook"]["status"]) == (
        "model-version-hook-v2",
        "DISABLED",
    )
    tested = [json.loads(out) for out in run.output(r"WebhookService/testWebhook")]
    assert len(tested) == 2 and all("result" in t for t in tested)
    [created] = [json.loads(out) for out in run.output(r"curl .*/mlflow/webhooks")]
    assert created["webhook"]["name"] == "deploys"


REST_ENDPOINTS = {
    "createWebhook": r"-X POST \S+/mlflow/webhooks \\",
    "listWebhooks": r"curl -s '\S+/mlflow/webhooks\?",
    "getWebhook": r'curl -s "\S+/mlflow/webhooks/\$WEBHOOK_ID"',
    "updateWebhook": r'-X PATCH "\S+/mlflow/webhooks/\$WEBHOOK_ID"',
    "deleteWebhook": r'-X DELETE "\S+/mlflow/webhooks/\$WEBHOOK_ID"',
    "testWebhook": r'-X POST "\S+/mlflow/webhooks/\$WEBHOOK_ID/test"',
}


async def check_rest(run: DocRun, mine: Mine, request: pytest.FixtureRequest) -> None:
    script = "\n".join(b.text for b in run.outputs)
    for endpoint, pattern in REST_ENDPOINTS.items():
        assert re.search(pattern, script), f"docs/rest.md has no example of {endpoint}"
    [created] = [json.loads(out) for out in run.output(r'"name": "model-version-alerts"')]
    assert created["webhook"]["name"] == "model-version-alerts"
    assert json.loads((run.clone / "openapi.json").read_text())["paths"]


def doc_functions(doc: str) -> dict[str, Any]:
    """The doc's Python blocks that define functions, run here, for calling."""
    namespace: dict[str, Any] = {}
    for block in doc_blocks.blocks(doc):
        if block.language == "python" and re.search(r"^def ", block.text, re.MULTILINE):
            exec(block.text, namespace)  # noqa: S102
    return namespace


async def check_delivery(run: DocRun, mine: Mine, request: pytest.FixtureRequest) -> None:
    """Both ways of verifying the signature accept a delivery the service sent."""
    functions = doc_functions("docs/delivery.md")
    body, headers = mine.received.body, mine.received.headers
    assert functions["verify"](SECRET, body, headers) is True
    assert functions["verify_standard"](SECRET, body, headers)["data"]["name"] == "churn"
    assert functions["verify"]("not-the-secret", body, headers) is False
    # During a rotation, either secret: verify_any takes the one that signed it.
    assert functions["verify_any"](["new-secret", SECRET], body, headers) is True
    assert functions["verify_any"](["new-secret"], body, headers) is False
    # The rotation examples ran against $WEBHOOK_ID, each with an overlap: a given secret
    # is never answered (the first curl), a generated one is (the second curl, grpcurl, and
    # webhooksctl's table).
    [rotations] = run.output(r"rotate-secret")
    assert rotations.count('"previous_secret_expires_timestamp"') == 3
    assert rotations.count('"secret": ') == 2
    assert "(generated: shown this once)" in rotations


def test_delivery_md_verify_refuses_forged_and_unsigned_requests() -> None:
    verify = doc_functions("docs/delivery.md")["verify"]
    body, secret, delivery_id, timestamp = b'{"a": 1}', "s3cret", "d-1", str(int(time.time()))
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    headers = {
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": "v1," + base64.b64encode(digest).decode(),
    }
    assert verify(secret, body, headers) is True
    assert verify("other", body, headers) is False
    for missing in headers:
        partial = {k: v for k, v in headers.items() if k != missing}
        assert verify(secret, body, partial) is False, missing
    assert verify(secret, body, {**headers, "X-MLflow-Timestamp": "soon"}) is False
    old = str(int(time.time()) - 3600)
    assert verify(secret, body, {**headers, "X-MLflow-Timestamp": old}) is False


async def check_clients(run: DocRun, mine: Mine, request: pytest.FixtureRequest) -> None:
    printed = "".join(out for block, out in run.outputs.items() if block.language == "python")
    assert "deploy-on-new-version ACTIVE" in printed  # statuses by name, not number
    assert "NOT_FOUND Webhook with ID no-such-id not found." in printed
    # webhooksctl's every-command block ends by deleting the webhook it worked on.
    async with grpc.aio.insecure_channel(run.env["WEBHOOKS_ADDRESS"]) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await pb_grpc.WebhookServiceStub(channel).getWebhook(
                pb.GetWebhook(webhook_id=mine.webhook_id)
            )
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def check_mlflow(run: DocRun, mine: Mine, request: pytest.FixtureRequest) -> None:
    """The skipped set-up is what the fixtures run; the doc's webhook lives in the service,
    which delivers the registry event to it."""
    mlflow, service = (request.getfixturevalue(f) for f in ("mlflow_bridged", "bridge_service"))
    setup = "".join(
        b.text for b in doc_blocks.blocks("docs/mlflow.md") if b.skip == "mlflow-server"
    )
    assert f"--app-name {mlflow.app_name}" in setup
    assert f"MLFLOW_WEBHOOKS_URL={MLFLOW_WEBHOOKS_DEFAULT}" in setup
    assert f"--http-address {HTTP_DEFAULT}" in setup
    api = f"{service.http_url}/api/2.0/mlflow"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{api}/webhooks") as answer:
            [hook] = [w for w in (await answer.json())["webhooks"] if w["name"] == "deploys"]
        try:
            query = {"webhook_id": hook["webhook_id"]}
            deadline = time.monotonic() + 60
            while True:  # the bridge publishes from its spool, in the background
                async with http.get(f"{api}/webhook-deliveries", params=query) as answer:
                    listed = await answer.json()
                assert answer.status == 200, listed
                if listed.get("deliveries") or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            [delivery] = listed["deliveries"]
            assert delivery["event"] == {"entity": "REGISTERED_MODEL", "action": "CREATED"}
            async with http.get(f"{api}/webhook-deliveries/{delivery['delivery_id']}") as answer:
                payload = json.loads((await answer.json())["delivery"]["payload"])
            assert payload["data"]["name"] == "ranker"
        finally:
            async with http.delete(f"{api}/webhooks/{hook['webhook_id']}") as answer:
                assert answer.status == 200


async def check_operations(run: DocRun, mine: Mine, request: pytest.FixtureRequest) -> None:
    """The backup is there with its key; the copy's server started on PostgreSQL, which it
    does only when the key opens the copied secrets."""
    [database] = (run.clone / "backups").glob("webhooks-*.db")
    assert {p.name for p in (run.clone / "backups").iterdir()} == {
        database.name,
        f"{database.name}.key",
    }
    assert database.stat().st_mode & 0o777 == 0o600
    [copied] = run.output(r"copy-database")
    assert re.search(r"\bwebhooks\b.*\b[1-9]", copied), copied
    assert len(run.servers) == 1


CHECKS: dict[str, Callable[[DocRun, Mine, pytest.FixtureRequest], Any]] = {
    "docs/operations.md": check_operations,
    "docs/mlflow.md": check_mlflow,
    "docs/clients.md": check_clients,
    "README.md": check_readme,
    "docs/rest.md": check_rest,
    "docs/delivery.md": check_delivery,
}

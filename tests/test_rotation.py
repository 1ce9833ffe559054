"""Secret rotation end to end (issue 14 part 3): real servers, a real receiver, every delivery
verified as receivers verify it, with the standardwebhooks library and with MLflow's own
verification code (tests/mlflow_verify.py, in a process of its own), and the database's rows
read directly to see what is stored."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import pytest
from cryptography.fernet import Fernet
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from mlflow_webhooks.generated import webhook_delivery_pb2_grpc as dpb_grpc
from mlflow_webhooks.generated import webhooks_pb2 as pb
from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc
from mlflow_webhooks.server.store import now_ms
from tests.conftest import PERMISSIVE
from tests.databases import KINDS, POSTGRES, Database, fresh
from tests.support import (
    EVENT_JSON,
    ROOT,
    Received,
    Receiver,
    ServerProcess,
    own_server,
    run_server,
)

MV_CREATED = pb.WebhookEvent(entity=pb.MODEL_VERSION, action=pb.CREATED)
PROMPT_CREATED = pb.WebhookEvent(entity=pb.PROMPT, action=pb.CREATED)
MV_DATA = EVENT_JSON["data"]
OLD = "old-secret-6f0c2a"
NEW = "new-secret-9d41be"
HOUR = 3600


# -- receivers' verdicts ----------------------------------------------------------------------


def standard_verifies(secret: str, received: Received) -> bool:
    """A Standard Webhooks receiver holding `secret`: the library verifies webhook-signature,
    any of its space-separated entries."""
    verifier = StandardWebhook("whsec_" + base64.b64encode(secret.encode()).decode())
    try:
        verifier.verify(received.body, {k.lower(): v for k, v in received.headers.items()})
    except WebhookVerificationError:
        return False
    return True


async def mlflow_verdicts(cases: list[tuple[str, Received]]) -> list[bool]:
    """Whether a receiver following MLflow's own recipe, holding the secret, accepts each."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "tests" / "mlflow_verify.py"),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    sent = [{"secret": s, "headers": r.headers, "body": r.body.decode()} for s, r in cases]
    out, _ = await asyncio.wait_for(proc.communicate(json.dumps(sent).encode()), 120)
    assert proc.returncode == 0
    return json.loads(out)


@dataclass
class Verdicts:
    """For each secret, whether each request verified, by either recipe."""

    standard: dict[str, list[bool]]
    mlflow: dict[str, list[bool]]


async def verdicts(received: list[Received], *secrets: str) -> Verdicts:
    standard = {s: [standard_verifies(s, r) for r in received] for s in secrets}
    flat = await mlflow_verdicts([(s, r) for s in secrets for r in received])
    n = len(received)
    mlflow = {s: flat[i * n : (i + 1) * n] for i, s in enumerate(secrets)}
    return Verdicts(standard, mlflow)


# -- the database's rows ----------------------------------------------------------------------


@dataclass
class Row:
    secret_token: str | None
    previous_secret_token: str | None
    previous_secret_until: int | None


def stored_row(database: Database, webhook_id: str) -> Row:
    query = (
        "SELECT secret_token, previous_secret_token, previous_secret_until FROM webhooks "
        "WHERE id = {}"
    )
    if database.kind == "sqlite":
        with sqlite3.connect(database.url.removeprefix("sqlite:///"), timeout=30) as conn:
            [found] = conn.execute(query.format("?"), (webhook_id,)).fetchall()
    else:
        import psycopg

        schema = database.url.rsplit("%3D", 1)[1]
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f"SET search_path TO {schema}")
            [found] = conn.execute(query.format("%s"), (webhook_id,)).fetchall()
    return Row(*found)


def fernet_of(database: Database) -> Fernet:
    key = database.secret_key
    if key is None:  # SQLite: the key file beside the database
        key = Path(database.url.removeprefix("sqlite:///") + ".key").read_text().strip()
    return Fernet(key)


# -- one server for the window's own tests ------------------------------------------------------


@dataclass
class Api:
    hooks: pb_grpc.WebhookServiceStub
    deliveries: dpb_grpc.WebhookDeliveryServiceStub

    async def webhook(self, url: str, secret: str, event: pb.WebhookEvent = MV_CREATED) -> str:
        request = pb.CreateWebhook(name="rotated", url=url, events=[event], secret=secret)
        return (await self.hooks.createWebhook(request)).webhook.webhook_id

    async def rotate(self, webhook_id: str, secret: str, overlap: int) -> int:
        """Rotates to `secret`; answers the window's end (Unix ms)."""
        request = dpb.RotateWebhookSecret(
            webhook_id=webhook_id, secret=secret, overlap_seconds=overlap
        )
        response = await self.deliveries.rotateWebhookSecret(request)
        assert not response.HasField("secret")  # given, so never answered
        return response.previous_secret_expires_timestamp

    async def publish(self) -> list[str]:
        request = dpb.PublishEvent(event=MV_CREATED)
        request.data.update(MV_DATA)
        return list((await self.deliveries.publishEvent(request)).delivery_ids)


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("rotation")
    proc = own_server(workdir, "--delivery-timeout", "5")
    proc.database = Database("sqlite", f"sqlite:///{workdir}/webhooks.db")
    yield proc
    proc.stop()


@pytest.fixture
async def api(sqlite_server: ServerProcess) -> AsyncIterator[Api]:
    async with grpc.aio.insecure_channel(sqlite_server.grpc_address) as channel:
        yield Api(pb_grpc.WebhookServiceStub(channel), dpb_grpc.WebhookDeliveryServiceStub(channel))


@pytest.fixture
async def rx() -> AsyncIterator[Receiver]:
    receiver = await Receiver().start()
    yield receiver
    await receiver.stop()


async def test_old_and_new_receivers_both_accept_every_delivery_during_the_window(
    api: Api, rx: Receiver, sqlite_server: ServerProcess
) -> None:
    """Published deliveries, a test send and a redelivery, all inside an hour's window: a
    Standard Webhooks receiver holding either secret accepts every one. A receiver using
    MLflow's recipe accepts every one with the old secret, and, holding both, with either;
    with the new secret alone it accepts none: MLflow's header carries one signature, and
    during the window it is the old secret's (docs/delivery.md, "Rotating the secret")."""
    database = sqlite_server.database
    hook = await api.webhook(f"{rx.url}/ok/window", OLD)
    until = await api.rotate(hook, NEW, HOUR)
    delivery_ids = [d for _ in range(5) for d in await api.publish()]
    test = await api.hooks.testWebhook(pb.TestWebhook(webhook_id=hook))
    assert test.result.success
    await api.deliveries.redeliver(dpb.Redeliver(delivery_id=delivery_ids[0]))
    received = await rx.wait_for(7)
    assert now_ms() < until  # every one of them was sent inside the window
    assert set(delivery_ids) <= set(rx.delivery_ids())
    for r in received:
        assert len(r.headers["webhook-signature"].split()) == 2  # new, old
    found = await verdicts(received, OLD, NEW)
    assert found.standard == {OLD: [True] * 7, NEW: [True] * 7}
    assert found.mlflow == {OLD: [True] * 7, NEW: [False] * 7}
    # Stored: the new secret as the current one, the old one sealed beside it, both with
    # the server's key, neither in plain text.
    row = stored_row(database, hook)
    box = fernet_of(database)
    assert row.secret_token and row.previous_secret_token
    assert box.decrypt(row.secret_token.encode()).decode() == NEW
    assert box.decrypt(row.previous_secret_token.encode()).decode() == OLD
    assert row.previous_secret_until == until
    path = Path(database.url.removeprefix("sqlite:///"))
    stored = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert OLD.encode() not in stored and NEW.encode() not in stored
    await api.hooks.deleteWebhook(pb.DeleteWebhook(webhook_id=hook))


async def test_rotating_again_replaces_the_old_secret_and_update_ends_the_window(
    api: Api, rx: Receiver, sqlite_server: ServerProcess
) -> None:
    hook = await api.webhook(f"{rx.url}/ok/again", OLD)
    await api.rotate(hook, NEW, HOUR)
    newer = "newer-secret-51a7"
    await api.rotate(hook, newer, HOUR)  # within the first window
    await api.publish()
    [during] = await rx.wait_for(1)
    found = await verdicts([during], OLD, NEW, newer)
    # The secret before the first rotation no longer signs: one overlap at a time.
    assert found.standard == {OLD: [False], NEW: [True], newer: [True]}
    assert found.mlflow == {OLD: [False], NEW: [True], newer: [False]}
    # updateWebhook's secret change is a rotation without overlap: the window ends at once.
    last = "last-secret-0c3e"
    await api.hooks.updateWebhook(pb.UpdateWebhook(webhook_id=hook, secret=last))
    assert stored_row(sqlite_server.database, hook).previous_secret_token is None
    await api.publish()
    [_, after] = await rx.wait_for(2)
    assert len(after.headers["webhook-signature"].split()) == 1
    found = await verdicts([after], NEW, newer, last)
    assert found.standard == {NEW: [False], newer: [False], last: [True]}
    assert found.mlflow == {NEW: [False], newer: [False], last: [True]}
    await api.hooks.deleteWebhook(pb.DeleteWebhook(webhook_id=hook))


# -- after the window, across processes -------------------------------------------------------


@pytest.fixture(params=KINDS)
def servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """SQLite: one server with --workers 2. PostgreSQL: two replicas of one database."""
    with fresh(request.param, tmp_path) as database:
        args = (*PERMISSIVE, "--delivery-timeout", "5", "--database-url", database.url)
        if database.kind == "sqlite":
            started = [run_server(tmp_path, *args, "--workers", "2")]
        else:
            started = [run_server(tmp_path, *args, env=database.env) for _ in range(2)]
        for server in started:
            server.database = database
        try:
            yield started
        finally:
            for server in started:
                server.stop()


async def test_after_the_window_only_the_new_secret_verifies_and_the_old_is_gone(
    servers: list[ServerProcess], rx: Receiver
) -> None:
    """A generated secret (over REST, answered once) with a one-second window. Once it has
    passed, deliveries verify with the new secret only, by either recipe; and the old secret
    is gone from the database: from the row of the webhook a delivery went to, and, by the
    background sweep, from the row of one that got no delivery."""
    first, last = servers[0], servers[-1]
    database = first.database
    async with grpc.aio.insecure_channel(first.grpc_address) as channel:
        api = Api(pb_grpc.WebhookServiceStub(channel), dpb_grpc.WebhookDeliveryServiceStub(channel))
        hook = await api.webhook(f"{rx.url}/ok/after", OLD)
        quiet = await api.webhook(f"{rx.url}/ok/quiet", OLD, PROMPT_CREATED)  # never published
        quiet_until = await api.rotate(quiet, NEW, 1)
    async with aiohttp.ClientSession() as http:
        url = f"{last.http_url}/api/2.0/mlflow/webhooks/{hook}/rotate-secret"
        async with http.post(url, json={"overlap_seconds": 1}) as response:
            assert response.status == 200
            answer = await response.json()
        generated = answer["secret"]
        until = int(answer["previous_secret_expires_timestamp"])
        async with http.get(f"{last.http_url}/api/2.0/mlflow/webhooks/{hook}") as response:
            assert generated not in await response.text()  # answered that once only
    # Waiting for the clock, not for an event: the window ends at a time.
    await asyncio.sleep(max(0, max(until, quiet_until) - now_ms() + 1) / 1000)
    async with grpc.aio.insecure_channel(last.grpc_address) as channel:
        api = Api(pb_grpc.WebhookServiceStub(channel), dpb_grpc.WebhookDeliveryServiceStub(channel))
        # Ended, whether or not a sweep has removed it yet: getWebhookHealth no longer tells
        # of a window.
        health = await api.deliveries.getWebhookHealth(
            dpb.GetWebhookHealth(webhook_ids=[hook, quiet])
        )
        assert [h.HasField("previous_secret_expires_timestamp") for h in health.webhooks] == [
            False,
            False,
        ]
        [delivery_id] = await api.publish()
    [after] = await rx.wait_for(1)
    assert rx.delivery_ids() == [delivery_id]
    assert len(after.headers["webhook-signature"].split()) == 1
    found = await verdicts([after], OLD, generated)
    assert found.standard == {OLD: [False], generated: [True]}
    assert found.mlflow == {OLD: [False], generated: [True]}
    # The claim that sent it had already forgotten the old secret (or the sweep had).
    row = stored_row(database, hook)
    assert (row.previous_secret_token, row.previous_secret_until) == (None, None)
    assert row.secret_token is not None
    assert fernet_of(database).decrypt(row.secret_token.encode()).decode() == generated
    # The webhook nothing was sent to: the sweep (every 5 s in each process) forgets it.
    for _ in range(600):  # bounded: 30 s
        if stored_row(database, quiet).previous_secret_token is None:
            break
        await asyncio.sleep(0.05)
    quiet_row = stored_row(database, quiet)
    assert (quiet_row.previous_secret_token, quiet_row.previous_secret_until) == (None, None)

"""`webhooks-server backup PATH`: a live server's SQLite database and key, copied with SQLite's
online backup while it serves, start a server of their own with everything in them."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import grpc

from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from mlflow_webhooks.generated import webhook_delivery_pb2_grpc as dpb_grpc
from mlflow_webhooks.generated import webhooks_pb2 as pb
from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc
from tests.databases import fresh
from tests.support import ROOT, own_server, run_server

SERVER = [sys.executable, "-m", "mlflow_webhooks.server"]


def backup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SERVER, "backup", *args],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "WEBHOOKS_DATABASE_URL"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_backup_of_a_live_server_restores(tmp_path: Path) -> None:
    live, restored = tmp_path / "live", tmp_path / "restored"
    live.mkdir()
    restored.mkdir()
    server = own_server(live)
    try:
        async with grpc.aio.insecure_channel(server.grpc_address) as channel:
            stub = pb_grpc.WebhookServiceStub(channel)
            created = await stub.createWebhook(
                pb.CreateWebhook(
                    name="kept",
                    url="http://127.0.0.1:9/",
                    events=[pb.WebhookEvent(entity=pb.PROMPT, action=pb.CREATED)],
                    secret="s3cret",
                )
            )
        done = backup(
            "--database-url", f"sqlite:///{live}/webhooks.db", str(restored / "webhooks.db")
        )
        assert done.returncode == 0, done.stderr
    finally:
        assert server.stop() == 0
    for name in ("webhooks.db", "webhooks.db.key"):
        assert stat.S_IMODE((restored / name).stat().st_mode) == 0o600, name
    # A server on the copy opens its secrets (it checks at start) and has the webhook.
    again = own_server(restored)
    try:
        async with grpc.aio.insecure_channel(again.grpc_address) as channel:
            stub = pb_grpc.WebhookServiceStub(channel)
            got = await stub.getWebhook(pb.GetWebhook(webhook_id=created.webhook.webhook_id))
            assert got.webhook.name == "kept"
    finally:
        assert again.stop() == 0


def test_backup_refuses_to_overwrite_a_missing_directory_and_postgres(tmp_path: Path) -> None:
    (tmp_path / "webhooks.db").write_bytes(b"")
    taken = tmp_path / "taken.db"
    taken.write_text("precious")
    done = backup("--database-url", f"sqlite:///{tmp_path}/webhooks.db", str(taken))
    assert done.returncode == 1 and "exists" in done.stderr
    assert taken.read_text() == "precious"
    done = backup("--database-url", f"sqlite:///{tmp_path}/webhooks.db", "no-such-dir/x.db")
    assert done.returncode == 1, done.stderr
    assert done.stderr == "webhooks-server backup: no-such-dir does not exist; create it first\n"
    done = backup("--database-url", "postgresql://u@h/db", str(tmp_path / "x.db"))
    assert done.returncode == 1 and "pg_dump" in done.stderr
    assert done.stderr.count("\n") == 1


async def test_copy_database_moves_sqlite_to_postgresql(tmp_path: Path) -> None:
    """Every row of a stopped SQLite server lands in a new PostgreSQL schema, and a server
    there, given the SQLite key file's key, serves it: secrets open, deliveries are listed
    with their attempts."""
    server = own_server(tmp_path)
    try:
        async with grpc.aio.insecure_channel(server.grpc_address) as channel:
            stub = pb_grpc.WebhookServiceStub(channel)
            created = await stub.createWebhook(
                pb.CreateWebhook(
                    name="moved",
                    url="http://127.0.0.1:9/",
                    events=[pb.WebhookEvent(entity=pb.PROMPT, action=pb.CREATED)],
                    secret="s3cret",
                )
            )
            hook_id = created.webhook.webhook_id
            await stub.testWebhook(pb.TestWebhook(webhook_id=hook_id))  # one logged attempt
    finally:
        assert server.stop() == 0
    key = (tmp_path / "webhooks.db.key").read_text().strip()
    with fresh("postgresql", tmp_path) as database:
        done = subprocess.run(
            [
                *SERVER,
                "copy-database",
                "--database-url",
                f"sqlite:///{tmp_path}/webhooks.db",
                database.url,
            ],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "webhooks: 1 rows" in done.stdout and "delivery_attempts: 1 rows" in done.stdout
        moved = run_server(
            tmp_path,
            "--database-url",
            database.url,
            env={"WEBHOOKS_SECRET_KEY": key},
        )
        try:
            async with grpc.aio.insecure_channel(moved.grpc_address) as channel:
                stub = pb_grpc.WebhookServiceStub(channel)
                got = await stub.getWebhook(pb.GetWebhook(webhook_id=hook_id))
                assert got.webhook.name == "moved"
                deliveries = dpb_grpc.WebhookDeliveryServiceStub(channel)
                listed = await deliveries.listDeliveries(dpb.ListDeliveries(webhook_id=hook_id))
                [delivery] = listed.deliveries
                assert delivery.test
                full = await deliveries.getDelivery(
                    dpb.GetDelivery(delivery_id=delivery.delivery_id)
                )
                assert len(full.delivery.attempts) == 1
        finally:
            assert moved.stop() == 0
        # A second copy into the same, now full, database is refused.
        again = subprocess.run(
            [
                *SERVER,
                "copy-database",
                "--database-url",
                f"sqlite:///{tmp_path}/webhooks.db",
                database.url,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert again.returncode == 1 and "not empty" in again.stderr

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from mlflow_webhooks.generated import webhooks_pb2_grpc
from mlflow_webhooks.server.store import Store
from tests.databases import KINDS, Database, empty_tables, fresh

# The MLflow fixtures (a cached MLflow venv, one plain and one bridged MLflow server per
# session), for every module that needs them.
from tests.mlflow_env import (  # noqa: F401
    bridge_service,
    bridge_site,
    mlflow_bridged,
    mlflow_plain,
    mlflow_python_path,
)
from tests.support import PERMISSIVE, Receiver, ServerProcess, own_server, run_server


@pytest.fixture(scope="session", params=KINDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server per database kind, shared by the tests that use it; every such test starts
    on empty tables (see _fresh_tables)."""
    workdir = tmp_path_factory.mktemp(f"server-{request.param}")
    with fresh(request.param, workdir) as database:
        proc = run_server(
            workdir,
            *PERMISSIVE,
            "--delivery-timeout",
            "2",
            "--database-url",
            database.url,
            env=database.env,
        )
        proc.database = database
        yield proc
        proc.stop()


@pytest.fixture(autouse=True)
def _fresh_tables(request: pytest.FixtureRequest) -> None:
    """The shared server holds no caches, so emptying its tables gives each test a fresh
    store without the cost of a new process."""
    if "server" in request.fixturenames:
        empty_tables(request.getfixturevalue("server").database)


@pytest.fixture(scope="session")
async def channel(server: ServerProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.grpc_address) as ch:
        yield ch


@pytest.fixture(scope="session")
async def stub(channel: grpc.aio.Channel) -> webhooks_pb2_grpc.WebhookServiceStub:
    return webhooks_pb2_grpc.WebhookServiceStub(channel)


@pytest.fixture(scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    rec = await Receiver().start()
    yield rec
    await rec.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of its own, for tests that count everything stored."""
    proc = own_server(tmp_path, "--delivery-timeout", "2")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def delivery_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Published events go to every subscribed webhook, so a module that publishes gets a
    server of its own."""
    proc = own_server(tmp_path_factory.mktemp("deliveries"), "--delivery-timeout", "2")
    yield proc
    proc.stop()


@pytest.fixture(params=KINDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh database of each kind, for the store suites that run on both."""
    with fresh(request.param, tmp_path) as db:
        yield db


@pytest.fixture
def store(database: Database) -> Iterator[Store]:
    opened = Store(database.url, database.secret_key)
    opened.open()
    yield opened
    opened.close()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path

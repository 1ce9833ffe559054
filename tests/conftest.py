from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from generated import webhooks_pb2_grpc
from tests.support import Receiver, ServerProcess, run_server

# Tests point webhooks at receivers on loopback over plain HTTP.
PERMISSIVE = ("--allow-private-urls", "--allowed-schemes", "http,https")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the tests that do not care what else is stored."""
    workdir = tmp_path_factory.mktemp("server")
    proc = run_server(
        workdir,
        *PERMISSIVE,
        "--delivery-timeout",
        "2",
        "--database-url",
        f"sqlite:///{workdir}/webhooks.db",
    )
    yield proc
    proc.stop()


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
def workdir(tmp_path: Path) -> Path:
    return tmp_path

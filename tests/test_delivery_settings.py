"""Per-webhook delivery settings and adaptive concurrency end to end: a real server process,
real aiohttp receivers, and the delivery log and /metrics as the server reports them.

The server's own schedule is 30 s, 30 s and its timeout 10 s, so a webhook's override shows
by an order of magnitude, never by a close timing."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from mlflow_webhooks.generated import webhook_delivery_pb2_grpc as dpb_grpc
from mlflow_webhooks.generated import webhooks_pb2 as pb
from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc
from mlflow_webhooks.server.delivery import aimd
from tests.support import Receiver, ServerProcess, own_server

MV_CREATED = pb.WebhookEvent(entity=pb.MODEL_VERSION, action=pb.CREATED)
SERVER_SCHEDULE = 30.0
# The capped receiver refuses (429) any request beyond this many in flight: more than a new
# webhook's window, less than the default maximum, so slow start finds it.
CAPACITY = 6


SERVER_ARGS = ("--retry-schedule", f"{SERVER_SCHEDULE:g},{SERVER_SCHEDULE:g}")
SERVER_ARGS += ("--delivery-timeout", "10")


@pytest.fixture(scope="module")
def settings_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = own_server(tmp_path_factory.mktemp("settings"), *SERVER_ARGS)
    yield proc
    proc.stop()


@pytest.fixture
def workers_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """Two processes on one database: a setting made through either is every one's."""
    proc = own_server(tmp_path, *SERVER_ARGS, "--workers", "2")
    yield proc
    proc.stop()


@dataclass
class Api:
    server: ServerProcess
    hooks: pb_grpc.WebhookServiceStub
    deliveries: dpb_grpc.WebhookDeliveryServiceStub
    created: list[str] = field(default_factory=list)

    async def webhook(self, url: str, **settings: Any) -> str:
        request = pb.CreateWebhook(name="hook", url=url, events=[MV_CREATED])
        webhook_id = (await self.hooks.createWebhook(request)).webhook.webhook_id
        self.created.append(webhook_id)
        if settings:
            await self.set(webhook_id, **settings)
        return webhook_id

    async def set(
        self, webhook_id: str, retry_schedule: list[float] | None = None, **fields: Any
    ) -> None:
        if retry_schedule is not None:
            fields["retry_schedule"] = dpb.RetrySchedule(delays_seconds=retry_schedule)
        settings = dpb.WebhookSettings(**fields)
        request = dpb.SetWebhookSettings(webhook_id=webhook_id, settings=settings)
        await self.deliveries.setWebhookSettings(request)

    async def publish(self, count: int) -> list[str]:
        async def one(i: int) -> list[str]:
            request = dpb.PublishEvent(event=MV_CREATED)
            request.data.update(
                {
                    "name": "m",
                    "version": str(i),
                    "source": "s",
                    "run_id": None,
                    "tags": {},
                    "description": None,
                }
            )
            return list((await self.deliveries.publishEvent(request)).delivery_ids)

        published = await asyncio.gather(*(one(i) for i in range(count)))
        return [delivery_id for ids in published for delivery_id in ids]

    async def delivery(self, delivery_id: str) -> dpb.Delivery:
        request = dpb.GetDelivery(delivery_id=delivery_id)
        return (await self.deliveries.getDelivery(request)).delivery

    async def attempts(self, delivery_id: str, count: int, timeout: float = 30.0) -> dpb.Delivery:
        """The delivery once `count` attempts are logged (polled: the log is in the server)."""
        async with asyncio.timeout(timeout):
            while len((found := await self.delivery(delivery_id)).attempts) < count:
                await asyncio.sleep(0.05)
        return found

    async def windows(self) -> dict[str, tuple[float, float]]:
        """webhook id -> (limit, in flight), from /metrics."""
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.server.http_url}/metrics") as response,
        ):
            text = await response.text()
        found: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "webhooks_delivery_concurrency_limit":
                    found[sample.labels["webhook_id"]][0] = sample.value
                elif sample.name == "webhooks_deliveries_in_flight":
                    found[sample.labels["webhook_id"]][1] = sample.value
        return {hook: (limit, sending) for hook, (limit, sending) in found.items()}


@contextlib.asynccontextmanager
async def api_of(server: ServerProcess) -> AsyncIterator[Api]:
    async with grpc.aio.insecure_channel(server.grpc_address) as channel:
        api = Api(
            server,
            pb_grpc.WebhookServiceStub(channel),
            dpb_grpc.WebhookDeliveryServiceStub(channel),
        )
        yield api
        # So the next test's events reach only its own webhooks.
        for webhook_id in api.created:
            with contextlib.suppress(grpc.aio.AioRpcError):  # deleted by the test
                await api.hooks.deleteWebhook(pb.DeleteWebhook(webhook_id=webhook_id))


@pytest.fixture
async def api(settings_server: ServerProcess) -> AsyncIterator[Api]:
    async with api_of(settings_server) as made:
        yield made


@dataclass
class Arrival:
    delivery_id: str
    in_flight: int  # requests in flight at this receiver when this one came, itself included
    status: int


@dataclass
class CountingReceiver:
    """A real receiver that counts its requests in flight. /capped refuses (429) a request
    that finds more than CAPACITY in flight, and holds the others until `gate` opens, then
    answers 200 after a short piece of work; /held holds every request until `gate` opens."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    arrivals: list[Arrival] = field(default_factory=list)
    in_flight: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        async with self.changed:
            self.in_flight += 1
            self.changed.notify_all()
        arrival = Arrival(request.headers["webhook-id"], self.in_flight, 200)
        if request.path == "/capped" and arrival.in_flight > CAPACITY:
            arrival.status = 429
        else:
            await self.gate.wait()
            await asyncio.sleep(0.01)  # the receiver's work: what makes concurrency matter
        async with self.changed:
            self.in_flight -= 1
            self.arrivals.append(arrival)
            self.changed.notify_all()
        return web.Response(status=arrival.status)

    async def start(self) -> CountingReceiver:
        app = web.Application()
        app.router.add_post("/{kind}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def until(self, done: object, timeout: float = 60.0) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(done), timeout)  # type: ignore[arg-type]

    async def stop(self) -> None:
        self.gate.set()
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def counting() -> AsyncIterator[CountingReceiver]:
    receiver = await CountingReceiver().start()
    yield receiver
    await receiver.stop()


def succeeded(receiver: CountingReceiver) -> collections.Counter[str]:
    return collections.Counter(a.delivery_id for a in receiver.arrivals if a.status == 200)


async def test_adaptive_concurrency_settles_within_the_receivers_capacity(
    api: Api, counting: CountingReceiver
) -> None:
    """A receiver that answers 429 to any request beyond 6 in flight. A new webhook is sent
    4 at once (slow start), which the receiver holds; once it answers, the window grows
    past 6 until the first refusals, and from then on the service keeps at most 6 in flight
    but for the rare probe of a seventh. Every event is delivered exactly once, and /metrics
    shows the webhook's window until the webhook is deleted."""
    events = 200
    # Retries 0.2 s apart, so a refused delivery soon goes again (the server's are 30 s).
    hook = await api.webhook(f"{counting.url}/capped", retry_schedule=[0.2] * 20)
    delivery_ids = await api.publish(events)
    assert len(delivery_ids) == events
    await counting.until(lambda: counting.in_flight == aimd.SLOW_START)
    assert (await api.windows())[hook] == (aimd.SLOW_START, aimd.SLOW_START)
    counting.gate.set()
    await counting.until(lambda: len(succeeded(counting)) == events)
    assert succeeded(counting) == collections.Counter(delivery_ids)  # each exactly once
    # Slow start went past the capacity, and so learned it.
    assert any(a.status == 429 for a in counting.arrivals)

    # Warm-up: slow start and its overshoot, the first answers after the gate opened.
    warm_up = 30
    measured = [a.in_flight for a in counting.arrivals[warm_up:]]
    assert len(measured) >= events - warm_up
    over = [n for n in measured if n > CAPACITY]

    assert max(measured) <= CAPACITY + 1, over  # a probe tries one more, never two
    assert len(over) <= len(measured) // 10, over  # probes are rare, and ever rarer

    for delivery_id in delivery_ids:
        assert (await api.delivery(delivery_id)).status == dpb.SUCCEEDED
    limit, sending = (await api.windows())[hook]
    assert 1 <= limit <= CAPACITY + 1 and sending == 0
    await api.hooks.deleteWebhook(pb.DeleteWebhook(webhook_id=hook))
    assert hook not in await api.windows()


async def test_max_concurrency_caps_the_window(api: Api, counting: CountingReceiver) -> None:
    """max_concurrency 2: six due deliveries, a receiver holding all it gets, and only two
    ever in flight; the window in /metrics says 2."""
    hook = await api.webhook(f"{counting.url}/held", max_concurrency=2)
    delivery_ids = await api.publish(6)
    await counting.until(lambda: counting.in_flight == 2)
    # The publishes woke the dispatcher, which claimed what the window allows.
    assert (await api.windows())[hook] == (2, 2)
    counting.gate.set()
    await counting.until(lambda: len(succeeded(counting)) == 6)
    assert succeeded(counting) == collections.Counter(delivery_ids)
    assert max(a.in_flight for a in counting.arrivals) == 2


async def test_the_flag_caps_the_servers_maximum(
    tmp_path: Path, counting: CountingReceiver
) -> None:
    """--max-webhook-concurrency 2, below both the server's default maximum and slow start's
    first window: a webhook without settings, ten due deliveries, a receiver holding all it
    gets, and only two ever in flight. The refusal of a higher maximum names the same 2."""
    server = own_server(tmp_path, *SERVER_ARGS, "--max-webhook-concurrency", "2")
    try:
        async with api_of(server) as api:
            hook = await api.webhook(f"{counting.url}/held")
            delivery_ids = await api.publish(10)
            # At least 2 (not exactly): a broken cap shows in the window, not as a timeout.
            await counting.until(lambda: counting.in_flight >= 2)
            # The publishes woke the dispatcher, which claimed what the window allows.
            assert (await api.windows())[hook] == (2, 2)
            counting.gate.set()
            await counting.until(lambda: len(succeeded(counting)) == 10)
            assert succeeded(counting) == collections.Counter(delivery_ids)
            assert max(a.in_flight for a in counting.arrivals) == 2
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await api.set(hook, max_concurrency=3)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert refused.value.details() == (
                "settings.max_concurrency is 3; it must be 1 to 2 (--max-webhook-concurrency), "
                "or 0 for the server's, 2."
            )
    finally:
        server.stop()


async def test_own_retry_schedule_from_the_log(api: Api, receiver: Receiver) -> None:
    """Retries 0.5 s and 1 s after the attempts before them, as the delivery log's attempt
    times show, then FAILED: the server's schedule (30 s, 30 s) is not used."""
    await api.webhook(f"{receiver.url}/status/500", retry_schedule=[0.5, 1])
    [delivery_id] = await api.publish(1)
    found = await api.attempts(delivery_id, 3)
    for _ in range(100):
        if found.status != dpb.PENDING:
            break
        await asyncio.sleep(0.05)
        found = await api.delivery(delivery_id)
    assert found.status == dpb.FAILED and found.attempt_count == 3
    gaps = [
        (after.timestamp - before.timestamp - before.duration_ms) / 1000
        for before, after in zip(found.attempts, found.attempts[1:], strict=False)
    ]
    # The schedule's delays, +-10% jitter; far below the server's own (30 s).
    assert 0.45 <= gaps[0] < 0.9 * SERVER_SCHEDULE
    assert 0.9 <= gaps[1] < 0.9 * SERVER_SCHEDULE


async def next_deliveries_use_the_settings(api: Api, receiver: Receiver) -> None:
    """A slow receiver: with the webhook's 0.3 s timeout its attempt fails as timed out
    (the server's timeout is 10 s); settings changed afterwards apply to the next attempt,
    whichever process sends it."""
    hook = await api.webhook(f"{receiver.url}/slow", timeout_seconds=0.3)
    for timeout in (0.3, 0.6, 0.4, 0.5):
        await api.set(hook, timeout_seconds=timeout)
        [delivery_id] = await api.publish(1)
        attempt = (await api.attempts(delivery_id, 1)).attempts[0]
        assert attempt.error == f"timed out after {timeout:g}s"
        assert not attempt.HasField("response_status")


async def test_settings_apply_to_the_next_delivery(api: Api, receiver: Receiver) -> None:
    await next_deliveries_use_the_settings(api, receiver)


async def test_settings_apply_to_the_next_delivery_of_any_worker(
    workers_server: ServerProcess, receiver: Receiver
) -> None:
    async with api_of(workers_server) as api:
        await next_deliveries_use_the_settings(api, receiver)


async def test_rest_refuses_settings_of_the_wrong_type(api: Api) -> None:
    hook = await api.webhook("http://127.0.0.1:9/x")
    url = f"{api.server.http_url}/api/2.0/mlflow/webhooks/{hook}/settings"
    async with aiohttp.ClientSession() as http:
        bad = {"settings": {"max_concurrency": "many"}}
        async with http.post(url, json=bad) as response:
            assert response.status == 400
            body = await response.json()
        assert body["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "max_concurrency" in body["message"]
        async with http.get(url) as response:
            assert response.status == 200
            assert await response.json() == {"settings": {}}
        good = {"settings": {"retry_schedule": {"delays_seconds": [1, 2]}, "max_concurrency": 3}}
        async with http.post(url, json=good) as response:
            assert await response.json() == good

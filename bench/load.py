"""Load generators. Each function runs in a process of the bench's process pool (never in
the process being measured) and returns plain, picklable results."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

# The event the delivery scenarios publish, and the data it needs (extra fields are
# delivered too: the latency scenario puts its send time in `bench_sent`).
EVENT = ("MODEL_VERSION_TAG", "SET")
DATA: dict[str, Any] = {"name": "churn", "version": "3", "key": "stage", "value": "prod"}
HOOK_PATH = "/hook"
CREATE_URL = "http://127.0.0.1:9/hook"  # never called: the created webhooks get no events


@dataclass(frozen=True)
class Rate:
    """Calls completed within a measuring window of `seconds`."""

    calls: int
    seconds: float
    errors: int
    first_error: str = ""
    total: int = 0  # calls completed, warm-up included

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Burst:
    """A fixed number of calls: when they started (wall clock) and how long they took."""

    started: float
    seconds: float
    errors: int
    first_error: str = ""
    cpu_seconds: float = 0.0  # CPU time this load process spent on the calls
    latencies_ms: tuple[float, ...] = ()  # of each call, when the load function keeps them


async def _closed_loop(
    call: Callable[[int], Awaitable[None]], concurrency: int, warmup: float, duration: float
) -> Rate:
    """`concurrency` callers, each calling again as soon as its call returns; counts the
    calls that complete inside [warmup, warmup + duration]."""
    begin = time.perf_counter()
    window_start, window_end = begin + warmup, begin + warmup + duration
    counted = errors = total = 0
    first_error = ""
    sequence = 0

    async def caller() -> None:
        nonlocal counted, errors, first_error, sequence, total
        while time.perf_counter() < window_end:
            sequence += 1
            try:
                await call(sequence)
            except Exception as e:
                errors += 1
                first_error = first_error or f"{type(e).__name__}: {e}"[:300]
                continue
            total += 1
            if window_start <= time.perf_counter() <= window_end:
                counted += 1

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return Rate(counted, duration, errors, first_error, total)


def grpc_unary(
    address: str, method: str, ids: list[str], concurrency: int, warmup: float, duration: float
) -> Rate:
    """Calls one WebhookService method over one grpc.aio channel at `concurrency` in flight."""
    import grpc

    from mlflow_webhooks.generated import webhooks_pb2 as pb
    from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc

    event = pb.WebhookEvent(entity=pb.MODEL_VERSION, action=pb.CREATED)

    def request(i: int) -> Any:
        if method == "getWebhook":
            return pb.GetWebhook(webhook_id=ids[i % len(ids)])
        if method == "createWebhook":
            return pb.CreateWebhook(
                name=f"bench-{i}", url=CREATE_URL, events=[event], description="bench"
            )
        if method == "listWebhooks":
            return pb.ListWebhooks(max_results=100)
        if method == "updateWebhook":
            return pb.UpdateWebhook(webhook_id=ids[i % len(ids)], description=f"update {i}")
        raise ValueError(f"no load for {method}")

    async def run() -> Rate:
        async with grpc.aio.insecure_channel(address) as channel:
            await channel.channel_ready()
            rpc = getattr(pb_grpc.WebhookServiceStub(channel), method)

            async def call(i: int) -> None:
                await rpc(request(i), timeout=30)

            return await _closed_loop(call, concurrency, warmup, duration)

    return asyncio.run(run())


def http_unary(
    base_url: str, method: str, ids: list[str], concurrency: int, warmup: float, duration: float
) -> Rate:
    """GET one webhook (`get`) or POST one (`create`) through the REST paths of the shim."""
    import aiohttp

    body = json.dumps(
        {
            "name": "bench-rest",
            "url": CREATE_URL,
            "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}],
            "description": "bench",
        }
    ).encode()
    headers = {"Content-Type": "application/json"}

    async def run() -> Rate:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(base_url, connector=connector) as session:

            async def call(i: int) -> None:
                if method == "get":
                    request = session.get(f"/api/2.0/mlflow/webhooks/{ids[i % len(ids)]}")
                else:
                    request = session.post("/api/2.0/mlflow/webhooks", data=body, headers=headers)
                async with request as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"HTTP {response.status}")

            return await _closed_loop(call, concurrency, warmup, duration)

    return asyncio.run(run())


# -- delivery load -------------------------------------------------------------------------


def _publish_request(extra: dict[str, Any] | None = None) -> Any:
    from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
    from mlflow_webhooks.generated import webhooks_pb2 as pb

    request = dpb.PublishEvent(
        event=pb.WebhookEvent(
            entity=pb.WebhookEntity.Value(EVENT[0]), action=pb.WebhookAction.Value(EVENT[1])
        )
    )
    request.data.update({**DATA, **(extra or {})})
    return request


def _bare_body(extra: dict[str, Any] | None = None) -> bytes:
    """What the server sends for one delivery of EVENT, built the same way."""
    return json.dumps(
        {
            "entity": EVENT[0].lower(),
            "action": EVENT[1].lower(),
            "timestamp": "2026-11-28T01:03:36.187760+00:00",
            "data": {**DATA, **(extra or {})},
        }
    ).encode()


async def _bounded(count: int, concurrency: int, call: Callable[[], Awaitable[None]]) -> Burst:
    started_wall, started, cpu = time.time(), time.perf_counter(), time.process_time()
    remaining = count
    errors = 0
    first_error = ""
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal remaining, errors, first_error
        while remaining > 0:
            remaining -= 1
            began = time.perf_counter()
            try:
                await call()
            except Exception as e:
                errors += 1
                first_error = first_error or f"{type(e).__name__}: {e}"[:300]
                continue
            latencies.append((time.perf_counter() - began) * 1000)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return Burst(
        started_wall,
        time.perf_counter() - started,
        errors,
        first_error,
        time.process_time() - cpu,
        tuple(latencies),
    )


def publish_burst(address: str, count: int, concurrency: int) -> Burst:
    """Publishes `count` events of EVENT as fast as `concurrency` callers can."""
    import grpc

    from mlflow_webhooks.generated import webhook_delivery_pb2_grpc as dpb_grpc

    request = _publish_request()

    async def run() -> Burst:
        async with grpc.aio.insecure_channel(address) as channel:
            await channel.channel_ready()
            stub = dpb_grpc.WebhookDeliveryServiceStub(channel)

            async def call() -> None:
                await stub.publishEvent(request, timeout=60)

            return await _bounded(count, concurrency, call)

    return asyncio.run(run())


def publish_rest_burst(base_url: str, count: int, concurrency: int) -> Burst:
    """Publishes `count` events of EVENT through the JSON shim, `concurrency` callers each
    publishing again as soon as its call is answered, over keep-alive connections."""
    import aiohttp

    body = json.dumps({"event": {"entity": EVENT[0], "action": EVENT[1]}, "data": DATA}).encode()
    headers = {"Content-Type": "application/json"}

    async def run() -> Burst:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(base_url, connector=connector) as session:

            async def call() -> None:
                request = session.post("/api/2.0/mlflow/webhook-events", data=body, headers=headers)
                async with request as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"HTTP {response.status}")

            return await _bounded(count, concurrency, call)

    return asyncio.run(run())


def post_burst(url: str, count: int, concurrency: int) -> Burst:
    """The bare loop: `count` POSTs of a delivery's body to `url`, `concurrency` at a time,
    over pooled keep-alive connections as the server's sender uses."""
    import aiohttp

    body = _bare_body()
    headers = {"Content-Type": "application/json", "webhook-id": "bench"}

    async def run() -> Burst:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:

            async def call() -> None:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()

            return await _bounded(count, concurrency, call)

    return asyncio.run(run())


async def _paced(rate: float, seconds: float, call: Callable[[], Awaitable[None]]) -> Burst:
    """Open loop: starts a call every 1/rate seconds whether or not earlier ones returned."""
    count = max(1, round(rate * seconds))
    started_wall, started = time.time(), time.perf_counter()
    errors = 0
    first_error = ""

    async def one() -> None:
        nonlocal errors, first_error
        try:
            await call()
        except Exception as e:
            errors += 1
            first_error = first_error or f"{type(e).__name__}: {e}"[:300]

    tasks = []
    for i in range(count):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return Burst(started_wall, time.perf_counter() - started, errors, first_error)


def publish_paced(address: str, rate: float, seconds: float) -> Burst:
    """Publishes EVENT at `rate` per second, each with its send time in data.bench_sent."""
    import grpc

    from mlflow_webhooks.generated import webhook_delivery_pb2_grpc as dpb_grpc

    async def run() -> Burst:
        async with grpc.aio.insecure_channel(address) as channel:
            await channel.channel_ready()
            stub = dpb_grpc.WebhookDeliveryServiceStub(channel)

            async def call() -> None:
                request = _publish_request({"bench_sent": time.time()})
                await stub.publishEvent(request, timeout=60)

            return await _paced(rate, seconds, call)

    return asyncio.run(run())


def post_paced(url: str, rate: float, seconds: float) -> Burst:
    """The bare loop at a fixed rate, each body with its send time in data.bench_sent."""
    import aiohttp

    headers = {"Content-Type": "application/json", "webhook-id": "bench"}

    async def run() -> Burst:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:

            async def call() -> None:
                body = _bare_body({"bench_sent": time.time()})
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()

            return await _paced(rate, seconds, call)

    return asyncio.run(run())


def warm() -> int:
    """Imports what the load functions use, so the first measured call pays no import."""
    import aiohttp  # noqa: F401
    import grpc  # noqa: F401

    from mlflow_webhooks.generated import webhook_delivery_pb2_grpc, webhooks_pb2_grpc  # noqa: F401

    return 0

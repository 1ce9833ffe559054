"""The processes the bench measures against, each in a process of its own:

- `noop-grpc`: the generated mlflow.WebhookService answering constant responses of the
  same shape as the real server's (one webhook; a page of 100 for listWebhooks);
- `bare-http`: a bare aiohttp handler answering the same constant JSON bodies on the shim's
  paths;
- `receiver`: a webhook receiver that counts POSTs, records their arrival times and, when
  the body's `data.bench_sent` is there, the latency since it was sent. POSTs to
  `/mlflow/{via}` (MLflow's payloads, which have no such field) are also recorded one by one:
  arrival time, event, and the model name, version and alias they name. `GET /stats` reads
  the counters (`?latencies=1`, `?arrivals=1` add the lists), `POST /reset` clears them;
- `forwarder`: answers publishes on the shim's path and POSTs each body on to a receiver,
  nothing else: the headline's floor for any aiohttp service.

Run as `python -m bench.procs KIND`; each prints `grpc listening on HOST:PORT` or
`http listening on HOST:PORT` once it serves, like the server."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
FORWARD_IN_FLIGHT = 64  # the bare POST loop's, and the delivery worker's


def constant_webhook() -> Any:
    from mlflow_webhooks.generated import webhooks_pb2 as pb

    return pb.Webhook(
        webhook_id="0f7c5e9a-4d47-4a0e-9d8e-0123456789ab",
        name="bench-hook",
        url="https://example.com/hook",
        events=[pb.WebhookEvent(entity=pb.MODEL_VERSION, action=pb.CREATED)],
        status=pb.ACTIVE,
        description="a webhook of the size the bench creates",
        creation_timestamp=1795827816000,
        last_updated_timestamp=1795827816000,
    )


async def serve_noop_grpc() -> None:
    import grpc

    from mlflow_webhooks.generated import webhooks_pb2 as pb
    from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc

    hook = constant_webhook()
    one = pb.GetWebhook.Response(webhook=hook)
    created = pb.CreateWebhook.Response(webhook=hook)
    updated = pb.UpdateWebhook.Response(webhook=hook)
    page = pb.ListWebhooks.Response(webhooks=[hook] * 100, next_page_token="bmV4dA")

    class Noop(pb_grpc.WebhookServiceServicer):
        async def getWebhook(self, request: Any, context: Any) -> Any:
            return one

        async def createWebhook(self, request: Any, context: Any) -> Any:
            return created

        async def updateWebhook(self, request: Any, context: Any) -> Any:
            return updated

        async def listWebhooks(self, request: Any, context: Any) -> Any:
            return page

    server = grpc.aio.server()
    pb_grpc.add_WebhookServiceServicer_to_server(Noop(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"grpc listening on 127.0.0.1:{port}", flush=True)
    await _until_signal()
    await server.stop(0)


async def serve_bare_http() -> None:
    from aiohttp import web
    from google.protobuf import json_format

    body = json.dumps(
        {"webhook": json_format.MessageToDict(constant_webhook(), preserving_proto_field_name=True)}
    ).encode()

    async def answer(request: web.Request) -> web.Response:
        if request.method == "POST":
            await request.read()
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/2.0/mlflow/webhooks/{webhook_id}", answer)
    app.router.add_post("/api/2.0/mlflow/webhooks", answer)
    await _serve_http(app)


async def serve_receiver() -> None:
    from aiohttp import web

    count = 0
    first = last = 0.0
    latencies: list[float] = []
    arrivals: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        nonlocal count, first, last
        body = await request.read()
        now = time.time()
        count += 1
        first = first or now
        last = now
        if b"bench_sent" in body:
            sent = json.loads(body)["data"]["bench_sent"]
            latencies.append((now - sent) * 1000)
        return web.Response(text="ok")

    async def mlflow_hook(request: web.Request) -> web.Response:
        response = await hook(request)
        body = json.loads(await request.read())
        data = body.get("data", {})
        arrivals.append(
            {
                "via": request.match_info["via"],
                "time": last,
                "event": f"{body.get('entity')}.{body.get('action')}",
                "key": f"{data.get('name')}/{data.get('version')}/{data.get('alias', '')}",
            }
        )
        return response

    async def stats(request: web.Request) -> web.Response:
        result: dict[str, Any] = {"count": count, "first": first, "last": last}
        if request.query.get("latencies"):
            result["latencies_ms"] = latencies
        if request.query.get("arrivals"):
            result["arrivals"] = arrivals
        return web.json_response(result)

    async def reset(_: web.Request) -> web.Response:
        nonlocal count, first, last
        count, first, last = 0, 0.0, 0.0
        latencies.clear()
        arrivals.clear()
        return web.json_response({"count": 0})

    app = web.Application()
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    app.router.add_post("/mlflow/{via}", mlflow_hook)
    app.router.add_post("/{tail:.*}", hook)
    await _serve_http(app)


async def serve_forwarder() -> None:
    """The least any aiohttp service can do with a publish: answer it and POST its body on
    to the receiver (`POST /forward-to?url=` sets where), at most FORWARD_IN_FLIGHT at a
    time, with nothing parsed, stored, signed, retried or logged."""
    import aiohttp
    from aiohttp import web

    target: list[str] = []
    slots = asyncio.Semaphore(FORWARD_IN_FLIGHT)
    sending: set[asyncio.Task[None]] = set()
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=FORWARD_IN_FLIGHT))
    headers = {"Content-Type": "application/json"}
    answer = json.dumps({"event_id": "forwarded", "delivery_ids": ["forwarded"]}).encode()

    async def forward(body: bytes) -> None:
        async with slots, session.post(target[0], data=body, headers=headers) as response:
            await response.read()

    async def publish(request: web.Request) -> web.Response:
        task = asyncio.create_task(forward(await request.read()))
        sending.add(task)
        task.add_done_callback(sending.discard)
        return web.Response(body=answer, content_type="application/json")

    async def forward_to(request: web.Request) -> web.Response:
        target[:] = [request.query["url"]]
        return web.json_response({"url": target[0]})

    app = web.Application()
    app.router.add_post("/api/2.0/mlflow/webhook-events", publish)
    app.router.add_post("/forward-to", forward_to)
    app.on_cleanup.append(lambda _: session.close())
    await _serve_http(app)


async def _serve_http(app: Any) -> None:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"http listening on 127.0.0.1:{port}", flush=True)
    await _until_signal()
    await runner.cleanup()


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


KINDS = {
    "noop-grpc": serve_noop_grpc,
    "bare-http": serve_bare_http,
    "receiver": serve_receiver,
    "forwarder": serve_forwarder,
}

# Every child started, so that the bench stops whatever a failed scenario left running.
STARTED: list[Child] = []


def stop_all() -> None:
    for child in STARTED:
        child.stop()
    STARTED.clear()


@dataclass
class Child:
    """A process that prints `grpc listening on …` / `http listening on …` lines: one of the
    KINDS above, or anything else given as its full command."""

    command: list[str]
    name: str = "child"
    proc: subprocess.Popen[str] | None = None
    addresses: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None

    @classmethod
    def of(cls, kind: str, workdir: Path) -> Child:
        child = cls([sys.executable, "-m", "bench.procs", kind], kind)
        return child.start(workdir, expect=("grpc",) if kind == "noop-grpc" else ("http",))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, workdir: Path, expect: tuple[str, ...]) -> Child:
        self.log_path = workdir / f"{self.name}-{id(self)}.log"
        STARTED.append(self)
        self.proc = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=self.log_path.open("w"),
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)
            lines.put("")

        threading.Thread(target=pump, daemon=True).start()
        while not all(kind in self.addresses for kind in expect):
            try:
                line = lines.get(timeout=START_TIMEOUT)
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"{self.command} did not start: {self.log()}") from None
            if not line:
                raise RuntimeError(f"{self.command} exited: {self.log()}")
            words = line.split()
            if len(words) == 4 and words[1:3] == ["listening", "on"]:
                self.addresses[words[0]] = words[3]
        return self

    @property
    def grpc_address(self) -> str:
        return self.addresses["grpc"]

    @property
    def http_url(self) -> str:
        return "http://" + self.addresses["http"]

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path else ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in KINDS:
        sys.exit(f"usage: python -m bench.procs {{{','.join(KINDS)}}}")
    asyncio.run(KINDS[sys.argv[1]]())


if __name__ == "__main__":
    main()

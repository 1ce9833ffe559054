"""Builds every part from the Config and runs them on one event loop until a signal drains
them."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from mlflow_webhooks.generated import (
    webhook_delivery_pb2,
    webhook_delivery_pb2_grpc,
    webhooks_pb2,
    webhooks_pb2_grpc,
)
from mlflow_webhooks.server import auth, console, egress, observe
from mlflow_webhooks.server.config import Config
from mlflow_webhooks.server.core import CONNECTIONS, WebhookCore
from mlflow_webhooks.server.delivery.dispatcher import Dispatcher
from mlflow_webhooks.server.delivery.sender import Sender
from mlflow_webhooks.server.errors import Unavailable
from mlflow_webhooks.server.health import BOUND, DatabaseHealth
from mlflow_webhooks.server.retention import Retention
from mlflow_webhooks.server.rotation import SecretSweep
from mlflow_webhooks.server.rpc import (
    CallInterceptor,
    DeliveryServicer,
    WebhookServicer,
    method_names,
)
from mlflow_webhooks.server.shim import app as shim
from mlflow_webhooks.server.shim import connections
from mlflow_webhooks.server.shim.guards import HostRule
from mlflow_webhooks.server.store import Store

log = logging.getLogger("webhooks")

GRACE_SECONDS = 10.0
SERVICES = [
    webhooks_pb2.DESCRIPTOR.services_by_name["WebhookService"],
    webhook_delivery_pb2.DESCRIPTOR.services_by_name["WebhookDeliveryService"],
]
WEBHOOKS = SERVICES[0].full_name
DELIVERIES = SERVICES[1].full_name
SERVICE_NAMES = [WEBHOOKS, DELIVERIES]
# Every method the server answers; calls to any other are counted as "unknown".
KNOWN_METHODS = method_names([*SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"]])


def listen(address: str, reuse_port: bool) -> socket.socket:
    """A bound, listening TCP socket for HOST:PORT (port 0 picks a free one)."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, int(port)))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def bound(flag: str, address: str, reuse_port: bool) -> socket.socket:
    """listen(), or one line saying which flag's address cannot be had and why."""
    try:
        return listen(address, reuse_port)
    except OSError as e:
        reason = (e.strerror or str(e)).lower()
        raise OSError(f"cannot listen on {flag} {address}: {reason}") from None


def shown(sock_or_host: str, port: int) -> str:
    return f"[{sock_or_host}]:{port}" if ":" in sock_or_host else f"{sock_or_host}:{port}"


def tls_contexts(config: Config) -> tuple[grpc.ServerCredentials, ssl.SSLContext] | None:
    """Server credentials for gRPC and an SSL context for the shim, from one PEM pair."""
    if not (config.tls_cert and config.tls_key):
        return None
    cert, key = Path(config.tls_cert).read_bytes(), Path(config.tls_key).read_bytes()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return grpc.ssl_server_credentials([(key, cert)]), context


def stop_signals(on_hangup: Callable[[], None]) -> asyncio.Event:
    """Installs the handlers: SIGTERM and SIGINT set the returned event, each SIGHUP calls
    `on_hangup`. Installed before anything is printed or served, so a caller that signals as
    soon as it reads the listening lines gets a drain, never the default death by signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    return stop


async def until_stopped(stop: asyncio.Event) -> None:
    """Returns once `stop` (from stop_signals) is set. Later SIGTERM/SIGINT are ignored: a
    second signal while draining changes nothing, and must not kill the process once asyncio
    has put the default handlers back on its way out."""
    await stop.wait()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)


async def serve(config: Config, reuse_port: bool = False) -> None:
    open_files = connections.raise_open_files_limit()
    tokens = auth.Tokens(config.auth_token, config.auth_token_file)
    stop = stop_signals(on_hangup=tokens.reload)
    tls = tls_contexts(config)
    # The ports first: one taken is the likeliest failure, and nothing is open yet to leak.
    http_sock = bound("--http-address", config.http_address, reuse_port)
    if not reuse_port and not config.grpc_address.endswith(":0"):
        # gRPC's own bind failure comes with a C-core log line and no flag name. Not with
        # --workers: this probe would briefly take connections from the other workers.
        bound("--grpc-address", config.grpc_address, reuse_port=False).close()
    # A webhook without its own maximum in flight gets the server's, capped by the flag.
    default_concurrency = config.limits.default_concurrency
    store = Store(
        config.database_url, config.secret_key, CONNECTIONS, config.db_timeout, default_concurrency
    )
    sender = Sender(
        config.delivery_timeout,
        egress.Policy.of(config.allow_private_urls, config.egress_allow),
        config.egress_proxy,
        egress.Bypass.of(config.egress_proxy_bypass),
    )
    core = WebhookCore(config, store, sender)
    await core.db(store.open)
    dispatcher = Dispatcher(
        store,
        sender,
        core.batch_write,
        config.retry_schedule,
        config.delivery_timeout,
        default_concurrency=default_concurrency,
    )
    core.on_published = dispatcher.wake
    core.on_deleted = dispatcher.forget

    draining = False
    health_servicer = health.aio.HealthServicer()
    interceptors: list[grpc.aio.ServerInterceptor] = [CallInterceptor(KNOWN_METHODS)]
    if tokens.enabled:
        interceptors.append(auth.AuthInterceptor(tokens))
    # gRPC shares ports by default; only --workers should, or two servers could silently
    # split one port's traffic.
    grpc_server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.so_reuseport", int(reuse_port)),
            # One request size limit for both transports (the shim's is client_max_size).
            ("grpc.max_receive_message_length", config.max_request_bytes),
        ],
    )
    servicers = {WEBHOOKS: WebhookServicer(core), DELIVERIES: DeliveryServicer(core)}
    webhooks_pb2_grpc.add_WebhookServiceServicer_to_server(servicers[WEBHOOKS], grpc_server)
    webhook_delivery_pb2_grpc.add_WebhookDeliveryServiceServicer_to_server(
        servicers[DELIVERIES], grpc_server
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, grpc_server)
    reflection.enable_server_reflection(
        [*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME], grpc_server
    )
    grpc_host = config.grpc_address.rpartition(":")[0].strip("[]")
    if tls is None:
        grpc_port = grpc_server.add_insecure_port(config.grpc_address)
    else:
        grpc_port = grpc_server.add_secure_port(config.grpc_address, tls[0])
    if grpc_port == 0:
        raise OSError(f"cannot listen for gRPC on {config.grpc_address}")

    async def set_health(serving: bool) -> None:
        response = health_pb2.HealthCheckResponse
        status = response.SERVING if serving else response.NOT_SERVING
        for name in ["", *SERVICE_NAMES]:
            await health_servicer.set(name, status)  # ignored once draining

    database = DatabaseHealth(core.ping, set_health, min(BOUND, config.db_timeout))

    async def metrics() -> bytes:
        try:
            backlog = await core.backlog()
        except Unavailable:
            backlog = None  # the database's last answer time tells why
        # Rendered in a thread: with --workers it reads every worker's files, and however
        # long it takes, /health and every other call keep being answered meanwhile.
        windows = dispatcher.pacer.windows()  # read here, on the loop that changes them
        return await asyncio.to_thread(observe.render, backlog, database.last_answer, windows)

    app = shim.build(
        servicers,
        lambda: draining,
        config.max_request_bytes,
        metrics,
        auth.middleware(tokens) if tokens.enabled else None,
        lambda: database.serving,
        hosts=HostRule.of(config.http_address.rpartition(":")[0], config.allowed_hosts),
    )
    console.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    assert runner.server is not None
    guard = connections.ConnectionGuard(
        runner.server,
        config.max_connections or connections.default_max_connections(open_files),
    )
    guard.start(http_sock, tls[1] if tls else None)
    await sender.start()

    await grpc_server.start()
    dispatcher.start()
    retention = Retention(store, core.db, config.retention_days)
    if config.retention_days:
        retention.start()
    sweep = SecretSweep(store, core.db)
    sweep.start()
    for name in ["", *SERVICE_NAMES]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    watching = asyncio.create_task(database.run())
    http_host, http_port = http_sock.getsockname()[:2]
    print(f"grpc listening on {shown(grpc_host, grpc_port)}", flush=True)
    print(f"http listening on {shown(http_host, http_port)}", flush=True)
    # What start-up made (modules, generated messages, the app) lives as long as the process:
    # moved out of the collector's sight, a full collection no longer walks it and stops the
    # loop for under a millisecond instead of ~30 ms (docs/benchmarks.md).
    gc.freeze()

    await until_stopped(stop)

    log.info("draining")
    draining = True
    await health_servicer.enter_graceful_shutdown()
    watching.cancel()
    await grpc_server.stop(GRACE_SECONDS)
    await dispatcher.stop(GRACE_SECONDS)
    await retention.stop()
    await sweep.stop()
    guard.stop()
    await runner.cleanup()
    await sender.close()
    core.close()
    store.close()
    observe.flush_access_log()
    log.info("stopped")


def run(config: Config, reuse_port: bool = False) -> int:
    observe.setup_logging(config.log_format, config.access_log)
    try:
        asyncio.run(serve(config, reuse_port))
    except (OSError, RuntimeError, ssl.SSLError) as e:
        print(f"webhooks-server: {e}", file=sys.stderr)
        return 1
    return 0

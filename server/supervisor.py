"""`--workers N`: N server processes sharing the gRPC and HTTP ports (SO_REUSEPORT) and the
database, each with its own delivery worker. The parent picks the ports once, prints the
listening lines once, restarts a worker that dies, and drains them all on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import socket
import sys
import tempfile

from mlflow_webhooks.server import app, observe
from mlflow_webhooks.server.config import Config
from mlflow_webhooks.server.store import Store

log = logging.getLogger("webhooks.supervisor")

CONFIG_ENV = "WEBHOOKS_WORKER_CONFIG"
RESTART_DELAY = 1.0  # a worker that keeps dying is restarted at most once a second
DRAIN_SECONDS = 30.0


def reserve(flag: str, address: str) -> tuple[socket.socket, str]:
    """Binds (without listening) so port 0 becomes one fixed port that the workers then bind
    too; SO_REUSEPORT lets them share it, and the kernel spreads connections among them."""
    host, _, port = address.rpartition(":")
    bare = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in bare else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((bare, int(port)))
    except OSError as e:
        sock.close()
        reason = (e.strerror or str(e)).lower()
        raise OSError(f"cannot listen on {flag} {address}: {reason}") from None
    return sock, f"{host}:{sock.getsockname()[1]}"


class Supervisor:
    def __init__(self, config: Config, metrics_dir: str) -> None:
        self._config = config
        self._metrics_dir = metrics_dir
        self._stopping = False
        self._procs: dict[int, asyncio.subprocess.Process] = {}

    def _signal_all(self, sig: int) -> None:
        for proc in self._procs.values():
            if proc.returncode is None:
                proc.send_signal(sig)

    async def _spawn(self, slot: int, config: Config) -> tuple[str, str]:
        """Starts worker `slot` and returns its two listening lines once it serves."""
        env = {
            **os.environ,
            CONFIG_ENV: json.dumps(dataclasses.asdict(config)),
            observe.MULTIPROCESS_DIR: self._metrics_dir,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mlflow_webhooks.server.supervisor",
            env=env,
            stdout=asyncio.subprocess.PIPE,
        )
        self._procs[slot] = proc
        assert proc.stdout is not None
        lines = []
        while len(lines) < 2:
            line = (await proc.stdout.readline()).decode()
            if not line:
                raise RuntimeError(f"worker {slot} exited before serving")
            lines.append(line.rstrip("\n"))
        return lines[0], lines[1]

    async def _watch(self, slot: int, config: Config) -> None:
        while not self._stopping:
            code = await self._procs[slot].wait()
            if self._stopping:
                return
            log.error("worker %d exited with %s; restarting it", slot, code)
            await asyncio.sleep(RESTART_DELAY)
            try:
                await self._spawn(slot, config)
            except RuntimeError as e:
                log.error("%s", e)

    async def run(self) -> int:
        # Token files are re-read by the workers, which hold the tokens.
        stop = app.stop_signals(on_hangup=lambda: self._signal_all(signal.SIGHUP))
        grpc_sock, grpc_address = reserve("--grpc-address", self._config.grpc_address)
        http_sock, http_address = reserve("--http-address", self._config.http_address)
        config = dataclasses.replace(
            self._config, grpc_address=grpc_address, http_address=http_address
        )
        # Schema, migrations and the SQLite key file are made once here, not raced by workers.
        store = Store(config.database_url, config.secret_key, timeout=config.db_timeout)
        store.open()
        store.close()
        try:
            started = await asyncio.gather(
                *(self._spawn(slot, config) for slot in range(config.workers))
            )
        except RuntimeError as e:
            await self._stop()
            raise RuntimeError(f"{e}; see its log above") from None
        for line in started[0]:
            print(line, flush=True)
        watchers = [asyncio.create_task(self._watch(s, config)) for s in self._procs]
        await app.until_stopped(stop)
        await self._stop()
        for watcher in watchers:
            watcher.cancel()
        grpc_sock.close()
        http_sock.close()
        return 0

    async def _stop(self) -> None:
        self._stopping = True
        procs = [p for p in self._procs.values() if p.returncode is None]
        self._signal_all(signal.SIGTERM)
        if procs:
            await asyncio.wait(
                [asyncio.create_task(p.wait()) for p in procs], timeout=DRAIN_SECONDS
            )
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()


def run(config: Config) -> int:
    observe.setup_logging(config.log_format, config.access_log)
    # Every worker writes its metrics here, so a scrape of any of them covers all.
    with tempfile.TemporaryDirectory(prefix="webhooks-metrics-") as metrics_dir:
        try:
            return asyncio.run(Supervisor(config, metrics_dir).run())
        except (OSError, RuntimeError) as e:
            print(f"webhooks-server: {e}", file=sys.stderr)
            return 1


def worker_main() -> int:
    """A worker: the config comes from the parent, the ports are shared."""
    fields = json.loads(os.environ.pop(CONFIG_ENV))
    config = Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
    return app.run(config, reuse_port=True)


if __name__ == "__main__":
    sys.exit(worker_main())

"""Section 6: time from exec to a SERVING health check, against a bare `import grpc`."""

from __future__ import annotations

import subprocess
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.common import Context, server_command
from bench.machine import free_port
from bench.report import Row

STARTUP = "6. Start-up"
START_TIMEOUT = 30.0


def time_to_serving(command: list[str], address: str) -> float:
    """Seconds from starting `command` until grpc.health.v1 Check("") on `address` answers
    SERVING; the process is stopped afterwards."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with grpc.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.perf_counter() - started < START_TIMEOUT:
                try:
                    answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=0.5)
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        return time.perf_counter() - started
                except grpc.RpcError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError(f"the server exited with {proc.returncode} at start")
                time.sleep(0.005)
        raise RuntimeError("the server did not report SERVING in time")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def time_import_grpc() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import grpc"], check=True)
    return time.perf_counter() - started


def startup(ctx: Context) -> None:
    s = ctx.settings
    workdir = ctx.subdir("startup")
    database = workdir / "webhooks.db"

    def command() -> tuple[list[str], str]:
        # The address must be known before the server prints it: pick the ports here.
        address = f"127.0.0.1:{free_port()}"
        cmd = server_command(database)
        cmd[cmd.index("--grpc-address") + 1] = address
        cmd[cmd.index("--http-address") + 1] = f"127.0.0.1:{free_port()}"
        return cmd, address

    time_to_serving(*command())  # makes the database and its key file: not measured
    ours: list[float] = []
    ceiling: list[float] = []
    for _ in range(max(s.starts, s.runs)):
        ours.append(time_to_serving(*command()))
        ceiling.append(time_import_grpc())
    ctx.add(Row(STARTUP, "start to health SERVING", "s", ours, ceiling, "python -c 'import grpc'"))
    ctx.note(
        STARTUP,
        f"{len(ours)} starts of `python -m server` on an existing SQLite file (the first "
        "start, which creates it, is not counted), each timed from exec until a "
        'grpc.health.v1 Check("") polled every 5 ms answers SERVING. Ceiling: '
        "`python -c 'import grpc'` run as often, the floor of any Python gRPC server's start.",
    )

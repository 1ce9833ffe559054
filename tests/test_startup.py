"""Starting and stopping the server process: signals at any moment, refusals at start that
say what to fix, the files it makes, and its command-line surface."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import PERMISSIVE, ROOT, own_server

F_GETPIPE_SZ = 1032  # fcntl.F_GETPIPE_SZ, named in Python 3.10+ on Linux only


def server_command(tmp_path: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mlflow_webhooks.server",
        "--grpc-address",
        "127.0.0.1:0",
        "--http-address",
        "127.0.0.1:0",
        "--database-url",
        f"sqlite:///{tmp_path}/webhooks.db",
        *PERMISSIVE,
        *args,
    ]


def start_refused(tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    """Runs a server that is expected to refuse to start; its exit code and output."""
    return subprocess.run(
        server_command(tmp_path, *args),
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextlib.contextmanager
def full_pipe() -> Iterator[tuple[int, int]]:
    """A pipe already full, so the first write to it blocks until the reader reads."""
    read_end, write_end = os.pipe()
    try:
        os.set_blocking(write_end, False)
        chunk = b"x" * fcntl.fcntl(write_end, F_GETPIPE_SZ)
        with contextlib.suppress(BlockingIOError):
            while True:
                os.write(write_end, chunk[:4096])
        with contextlib.suppress(BlockingIOError):
            while True:
                os.write(write_end, b"x")
        os.set_blocking(write_end, True)
        yield read_end, write_end
    finally:
        os.close(read_end)
        with contextlib.suppress(OSError):
            os.close(write_end)


def blocked_writing_stdout(pid: int) -> bool:
    """Whether the process's main thread sits in write(1, …) (x86-64 and arm64 number
    write 1 and 64)."""
    try:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return False
    return len(fields) > 1 and fields[0] in ("1", "64") and fields[1] == "0x1"


def test_sigterm_while_printing_the_listening_lines_drains(tmp_path: Path) -> None:
    """A caller that reads the listening lines may signal at once: the server has its
    SIGTERM handler before it prints them, so it drains and exits 0 rather than dying by
    the signal. Its stdout is a full pipe, so it is caught in the middle of printing."""
    if not Path(f"/proc/{os.getpid()}/syscall").exists():
        pytest.skip("needs /proc/PID/syscall to see the server blocked in its print")
    with full_pipe() as (read_end, write_end):
        proc = subprocess.Popen(
            server_command(tmp_path),
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=write_end,
            stderr=subprocess.PIPE,
        )
        os.close(write_end)
        try:
            deadline = time.monotonic() + 60
            while not blocked_writing_stdout(proc.pid):
                assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the server never printed"
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            with os.fdopen(read_end, "rb", closefd=False) as out:
                printed = out.read()  # to EOF: the server prints its lines and exits
            assert b"grpc listening on" in printed and b"http listening on" in printed
            assert proc.wait(timeout=60) == 0, proc.stderr.read()  # type: ignore[union-attr]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()  # type: ignore[union-attr]


def test_empty_token_file_stops_the_start(tmp_path: Path) -> None:
    """An empty --auth-token-file would refuse every caller: refused at start, saying so."""
    tokens = tmp_path / "tokens"
    tokens.write_text("\n   \n")
    done = start_refused(tmp_path, "--auth-token-file", str(tokens))
    assert done.returncode == 1, done.stderr
    assert f"--auth-token-file {tokens} holds no token" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("flag", ["--grpc-address", "--http-address"])
def test_port_in_use_is_one_line_naming_the_flag(tmp_path: Path, flag: str) -> None:
    taken = socket.socket()
    try:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        done = start_refused(tmp_path, flag, address)
    finally:
        taken.close()
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"webhooks-server: cannot listen on {flag} {address}: address already in use"
    ], done.stderr


def test_database_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    """The database holds the delivery log and (encrypted) secrets: it, its WAL and shared
    memory files are made 0600, like the key file."""
    server = own_server(tmp_path)
    try:
        body = json.dumps(
            {
                "name": "h",
                "url": "http://127.0.0.1:9/",
                "events": [{"entity": "PROMPT", "action": "CREATED"}],
                "secret": "s",
            }
        ).encode()
        request = urllib.request.Request(  # noqa: S310
            f"{server.http_url}/api/2.0/mlflow/webhooks",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            assert response.status == 200
        for name in ("webhooks.db", "webhooks.db-wal", "webhooks.db-shm", "webhooks.db.key"):
            mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
            assert mode == 0o600, (name, oct(mode))
    finally:
        assert server.stop() == 0


def test_a_failed_start_leaves_no_new_key_file(tmp_path: Path) -> None:
    """With the key file gone, a database holding secrets cannot start; the key made for the
    attempt is not written, so the real key can be put back as it was."""
    server = own_server(tmp_path)
    try:
        stub_call = subprocess.run(
            [
                str(Path(sys.executable).with_name("webhooksctl")),
                "--address",
                server.grpc_address,
                "create",
                "--name",
                "h",
                "--url",
                "http://127.0.0.1:9/",
                "--event",
                "prompt.created",
                "--secret",
                "s3cret",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert stub_call.returncode == 0, stub_call.stderr
    finally:
        assert server.stop() == 0
    key_file = tmp_path / "webhooks.db.key"
    key_file.unlink()
    done = start_refused(tmp_path)
    assert done.returncode == 1
    assert "cannot decrypt" in done.stderr and "Traceback" not in done.stderr
    assert not key_file.exists()


def test_json_logs_on_stderr_and_plain_listening_lines_on_stdout(tmp_path: Path) -> None:
    """--log-format json makes every log line JSON, on standard error; the listening lines
    stay plain text on standard output, where scripts and supervisors read them."""
    server = own_server(tmp_path, "--log-format", "json")
    try:
        with urllib.request.urlopen(f"{server.http_url}/health", timeout=30) as response:  # noqa: S310
            assert response.status == 200
    finally:
        assert server.stop() == 0
    lines = server.log().splitlines()
    assert lines, "nothing was logged"
    for line in lines:
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= set(entry), line
    assert server.grpc_address and server.http_url  # read from the plain stdout lines


def test_make_run_installs_only_what_serving_needs_and_passes_args() -> None:
    """`make run` installs the package without the test extras, with pip's progress shown,
    and hands ARGS to the server (dry run: -n prints the commands, -B as on a fresh clone)."""
    done = subprocess.run(
        # --no-print-directory: under `make test` this make is a sub-make, which would print
        # "Entering/Leaving directory" lines around the commands.
        [
            "make",
            "--no-print-directory",
            "-n",
            "-B",
            "run",
            "ARGS=--allow-private-urls --allowed-schemes http,https",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = done.stdout.splitlines()
    installs = [line for line in lines if "pip install" in line and "upgrade pip" not in line]
    assert installs == [".venv/bin/python -m pip install --progress-bar on -e ."], lines
    assert lines[-1] == (
        ".venv/bin/webhooks-server --allow-private-urls --allowed-schemes http,https"
    )

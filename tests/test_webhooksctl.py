"""webhooksctl as an operator runs it: the installed console script against real servers."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlflow_webhooks.clients.python import WebhooksClient
from mlflow_webhooks.clients.python.webhooksctl import _overlap, moment
from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from tests.conftest import PERMISSIVE
from tests.support import ROOT, Receiver, ServerProcess, make_certificates, run_server

CTL = Path(sys.executable).with_name("webhooksctl")
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"


def ctl(address: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Runs webhooksctl with WEBHOOKS_ADDRESS set, as an operator's shell would."""
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WEBHOOKS_ADDRESS", "WEBHOOKS_AUTH_TOKEN", "WEBHOOKS_CACERT")
    }
    return subprocess.run(
        [str(CTL), *args],
        env={**base, "WEBHOOKS_ADDRESS": address, **(env or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def ok_json(result: subprocess.CompletedProcess) -> Any:
    return json.loads(ok(result))


def failed(result: subprocess.CompletedProcess, code: int) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.strip()
    return result.stderr


def pairs(text: str) -> dict[str, str]:
    """The key/value table that single-object commands print."""
    out = {}
    for line in text.strip().splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(" ")
        out[key] = value.strip()
    return out


def shim_get(server: ServerProcess, path: str) -> Any:
    url = f"{server.http_url}/api/2.0{path}"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (http on loopback)
        return json.load(response)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_console_script_is_installed() -> None:
    assert CTL.exists(), "run `make .venv/.installed` to install the webhooksctl console script"
    assert "create" in ok(subprocess.run([str(CTL), "--help"], capture_output=True, text=True))


def test_create_get_update_delete(server: ServerProcess) -> None:
    address = server.grpc_address
    name = unique("ctl")
    created = pairs(
        ok(
            ctl(
                address,
                "create",
                "--name",
                name,
                "--url",
                "http://127.0.0.1:9/hook",
                "--event",
                "model_version.created,registered_model.created",
                "--description",
                "from the ctl test",
                "--secret",
                "s3cret",
            )
        )
    )
    webhook_id = created["webhook_id"]
    assert created["name"] == name
    assert created["status"] == "ACTIVE"
    assert created["events"] == "model_version.created,registered_model.created"
    assert created["description"] == "from the ctl test"
    assert "secret" not in created

    got = ok_json(ctl(address, "--json", "get", webhook_id))
    assert got == shim_get(server, f"/mlflow/webhooks/{webhook_id}")
    assert got["webhook"]["events"] == [
        {"entity": "MODEL_VERSION", "action": "CREATED"},
        {"entity": "REGISTERED_MODEL", "action": "CREATED"},
    ]
    assert isinstance(got["webhook"]["creation_timestamp"], int)

    updated = ok_json(
        ctl(
            address,
            "--json",
            "update",
            webhook_id,
            "--status",
            "disabled",
            "--event",
            "model_version_tag.set",
            "--event",
            "model_version_tag.deleted",
        )
    )["webhook"]
    assert updated["status"] == "DISABLED"
    assert updated["name"] == name
    assert [e["action"] for e in updated["events"]] == ["SET", "DELETED"]
    assert updated["last_updated_timestamp"] > got["webhook"]["last_updated_timestamp"]
    assert pairs(ok(ctl(address, "get", webhook_id)))["status"] == "DISABLED"

    assert webhook_id in ok(ctl(address, "delete", webhook_id))
    stderr = failed(ctl(address, "get", webhook_id), 1)
    assert f"NOT_FOUND: Webhook with ID {webhook_id} not found." in stderr
    failed(ctl(address, "--json", "delete", webhook_id), 1)


def test_filter_show_set_and_clear(server: ServerProcess) -> None:
    address = server.grpc_address
    with WebhooksClient(address) as client:
        webhook = client.create(unique("filtered"), "http://127.0.0.1:9/x", ["prompt.created"])
    hook = webhook.webhook_id
    assert "no filter" in ok(ctl(address, "filter", hook))
    shown = pairs(
        ok(ctl(address, "filter", hook, "--name", "fraud-*", "--name", "churn", "--alias", "a"))
    )
    assert shown == {"names": "fraud-*,churn", "aliases": "a"}
    got = ok_json(ctl(address, "--json", "filter", hook))
    assert got == {"filter": {"names": ["fraud-*", "churn"], "aliases": ["a"]}}
    assert got == shim_get(server, f"/mlflow/webhooks/{hook}/filter")
    stderr = failed(ctl(address, "filter", hook, "--tag-key", ""), 1)
    assert "INVALID_ARGUMENT: filter.tag_keys[0] is empty" in stderr
    assert ok_json(ctl(address, "--json", "filter", hook, "--clear")) == {"filter": {}}
    assert "no filter" in ok(ctl(address, "filter", hook))


def test_settings_show_change_and_reset(server: ServerProcess) -> None:
    address = server.grpc_address
    with WebhooksClient(address) as client:
        webhook = client.create(unique("paced"), "http://127.0.0.1:9/x", ["prompt.created"])
    hook = webhook.webhook_id
    assert pairs(ok(ctl(address, "settings", hook))) == {
        "retry_schedule": "the server's (--retry-schedule)",
        "timeout": "the server's (--delivery-timeout)",
        "max_concurrency": "the server's (32, or --max-webhook-concurrency if lower)",
        "ordered": "no",
    }
    args = ["--retry-schedule", "10,60,600", "--delivery-timeout", "2.5"]
    shown = pairs(ok(ctl(address, "settings", hook, *args)))
    assert (shown["retry_schedule"], shown["timeout"]) == ("10,60,600", "2.5s")
    # Only what is given changes.
    shown = pairs(ok(ctl(address, "settings", hook, "--max-concurrency", "3")))
    assert (shown["timeout"], shown["max_concurrency"]) == ("2.5s", "3")
    got = ok_json(ctl(address, "--json", "settings", hook))
    expected = {"retry_schedule": {"delays_seconds": [10, 60, 600]}, "timeout_seconds": 2.5}
    assert got == {"settings": {**expected, "max_concurrency": 3}}
    assert got == shim_get(server, f"/mlflow/webhooks/{hook}/settings")
    stderr = failed(ctl(address, "settings", hook, "--max-concurrency", "100"), 1)
    assert "INVALID_ARGUMENT: settings.max_concurrency is 100; it must be 1 to 32" in stderr
    reset = ["--retry-schedule", "default", "--delivery-timeout", "default"]
    reset += ["--max-concurrency", "default"]
    assert ok_json(ctl(address, "--json", "settings", hook, *reset)) == {"settings": {}}


def test_rotate_secret_prints_a_generated_secret_once(server: ServerProcess) -> None:
    address = server.grpc_address
    with WebhooksClient(address) as client:
        webhook = client.create(
            unique("rotated"), "http://127.0.0.1:9/x", ["prompt.created"], secret="before"
        )
    hook = webhook.webhook_id
    shown = pairs(ok(ctl(address, "rotate-secret", hook, "--overlap", "90m")))
    assert set(shown) == {"webhook_id", "secret", "old_secret_signs_until"}
    generated, note = shown["secret"].split(maxsplit=1)
    assert len(generated) == 43 and note == "(generated: shown this once)"
    assert shown["old_secret_signs_until"].endswith("Z")
    got = ok_json(ctl(address, "--json", "rotate-secret", hook, "--secret", "given"))
    assert set(got) == {"webhook", "previous_secret_expires_timestamp"}  # no secret
    assert got["webhook"]["webhook_id"] == hook
    shown = pairs(ok(ctl(address, "rotate-secret", hook, "--secret", "third", "--overlap", "0")))
    assert shown["old_secret_signs_until"] == "(no overlap: only the new secret signs)"
    stderr = failed(ctl(address, "rotate-secret", hook, "--secret", "third"), 1)
    assert "INVALID_ARGUMENT: The new secret is the webhook's current secret" in stderr


def test_settings_ordered_on_and_off(server: ServerProcess) -> None:
    address = server.grpc_address
    with WebhooksClient(address) as client:
        webhook = client.create(unique("ordered"), "http://127.0.0.1:9/x", ["prompt.created"])
        hook = webhook.webhook_id
        assert client.set_settings(hook, ordered=True) == dpb.WebhookSettings(ordered=True)
        assert client.get_settings(hook).ordered
    shown = pairs(ok(ctl(address, "settings", hook, "--max-concurrency", "2")))
    assert shown["ordered"] == "yes: one at a time, in publish order"  # kept
    got = ok_json(ctl(address, "--json", "settings", hook, "--unordered"))
    assert got == {"settings": {"max_concurrency": 2}}
    assert ok_json(ctl(address, "--json", "settings", hook, "--ordered")) == {
        "settings": {"max_concurrency": 2, "ordered": True}
    }
    assert shim_get(server, f"/mlflow/webhooks/{hook}/settings")["settings"]["ordered"] is True


def test_delete_json_prints_the_empty_response(server: ServerProcess) -> None:
    with WebhooksClient(server.grpc_address) as client:
        webhook = client.create(unique("gone"), "http://127.0.0.1:9/x", ["prompt.created"])
    assert ok_json(ctl(server.grpc_address, "--json", "delete", webhook.webhook_id)) == {}


def test_list_joins_every_page(fresh_server: ServerProcess) -> None:
    address = fresh_server.grpc_address
    assert ok_json(ctl(address, "--json", "list")) == {"webhooks": []}
    ids = [
        pairs(
            ok(
                ctl(
                    address,
                    "create",
                    "--name",
                    f"listed-{i}",
                    "--url",
                    f"http://127.0.0.1:9/{i}",
                    "--event",
                    "prompt_alias.created",
                )
            )
        )["webhook_id"]
        for i in range(7)
    ]
    newest_first = list(reversed(ids))

    joined = ok_json(ctl(address, "--json", "list", "--page-size", "3"))
    assert [w["webhook_id"] for w in joined["webhooks"]] == newest_first
    assert joined == shim_get(fresh_server, "/mlflow/webhooks?max_results=100")

    lines = ok(ctl(address, "list", "--page-size", "2")).splitlines()
    assert lines[0].split() == ["WEBHOOK_ID", "NAME", "STATUS", "EVENTS", "URL"]
    assert [line.split()[0] for line in lines[1:]] == newest_first
    assert lines[1].split()[1:] == [
        "listed-6",
        "ACTIVE",
        "prompt_alias.created",
        "http://127.0.0.1:9/6",
    ]


async def test_test_command(server: ServerProcess, receiver: Receiver) -> None:
    address = server.grpc_address
    # The receiver answers on this event loop, so the subprocess waits in a thread.
    created = await asyncio.to_thread(
        ctl,
        address,
        "--json",
        "create",
        "--name",
        unique("tested"),
        "--url",
        f"{receiver.url}/ok",
        "--event",
        "model_version_alias.created",
    )
    webhook_id = ok_json(created)["webhook"]["webhook_id"]

    result = await asyncio.to_thread(ctl, address, "test", webhook_id)
    assert pairs(ok(result)) == {"success": "yes", "response_status": "200", "response_body": "ok"}
    result = await asyncio.to_thread(
        ctl, address, "--json", "test", webhook_id, "--event", "model_version_alias.created"
    )
    assert ok_json(result) == {
        "result": {"success": True, "response_status": 200, "response_body": "ok"}
    }
    result = await asyncio.to_thread(ctl, address, "test", webhook_id, "--event", "prompt.created")
    assert pairs(ok(result))["success"] == "yes"


async def test_publish_deliveries_delivery_redeliver(
    delivery_server: ServerProcess, receiver: Receiver
) -> None:
    address = delivery_server.grpc_address

    def run(*args: str) -> Any:
        return asyncio.to_thread(ctl, address, *args)

    created = await run(
        "--json",
        "create",
        "--name",
        unique("subscriber"),
        "--url",
        f"{receiver.url}/ok",
        "--event",
        "prompt_tag.set",
    )
    webhook_id = ok_json(created)["webhook"]["webhook_id"]

    data = {"name": "p", "key": "k", "value": "v", "count": 3}
    published = ok_json(
        await run("--json", "publish", "prompt_tag.set", "--data", json.dumps(data))
    )
    assert set(published) == {"event_id", "delivery_ids"}
    [delivery_id] = published["delivery_ids"]

    def arrived(count: int) -> bool:
        hits = [r for r in receiver.received if r.headers.get(DELIVERY_ID_HEADER) == delivery_id]
        return len(hits) >= count

    async with receiver.arrived:
        await asyncio.wait_for(receiver.arrived.wait_for(lambda: arrived(1)), 20)
    body = next(
        json.loads(r.body)
        for r in receiver.received
        if r.headers.get(DELIVERY_ID_HEADER) == delivery_id
    )
    assert body["data"] == data

    table = pairs(ok(await run("publish", "prompt_tag.set", "--data", json.dumps(data))))
    assert set(table) == {"event_id", "delivery_ids"}
    second_id = table["delivery_ids"]
    async with receiver.arrived:
        await asyncio.wait_for(
            receiver.arrived.wait_for(
                lambda: any(
                    r.headers.get(DELIVERY_ID_HEADER) == second_id for r in receiver.received
                )
            ),
            20,
        )

    listed = ok_json(await run("--json", "deliveries", "--event-id", published["event_id"]))
    assert [d["delivery_id"] for d in listed["deliveries"]] == [delivery_id]
    assert listed["deliveries"][0]["webhook_id"] == webhook_id
    assert listed["deliveries"][0]["event"] == {"entity": "PROMPT_TAG", "action": "SET"}
    by_webhook = ok_json(
        await run("--json", "deliveries", "--webhook-id", webhook_id, "--page-size", "1")
    )
    assert len(by_webhook["deliveries"]) == 2
    assert delivery_id in [d["delivery_id"] for d in by_webhook["deliveries"]]
    lines = ok(await run("deliveries", "--webhook-id", webhook_id)).splitlines()
    assert lines[0].split() == [
        "DELIVERY_ID",
        "WEBHOOK_ID",
        "EVENT",
        "STATUS",
        "ATTEMPTS",
        "LAST_ATTEMPT",
        "HTTP",
        "ERROR",
        "NEXT_ATTEMPT",
        "CREATED",
    ]
    assert len(lines) == 3
    assert all(line.split()[2] == "prompt_tag.set" for line in lines[1:])

    shown = ok_json(await run("--json", "delivery", delivery_id))["delivery"]
    assert (
        shown == shim_get(delivery_server, f"/mlflow/webhook-deliveries/{delivery_id}")["delivery"]
    )
    assert shown["delivery_id"] == delivery_id
    assert shown["status"] in ("PENDING", "SUCCEEDED")
    table = pairs(ok(await run("delivery", delivery_id)))
    assert table["delivery_id"] == delivery_id
    assert table["event"] == "prompt_tag.set"

    again = ok_json(await run("--json", "redeliver", delivery_id))["delivery"]
    assert again["delivery_id"] == delivery_id
    assert again["status"] == "SUCCEEDED"
    assert again["attempts"][-1]["response_status"] == 200
    async with receiver.arrived:
        await asyncio.wait_for(receiver.arrived.wait_for(lambda: arrived(2)), 20)
    text = ok(await run("redeliver", delivery_id))
    assert pairs(text)["status"] == "SUCCEEDED"
    assert "ATTEMPT" in text

    succeeded = ok_json(
        await run("--json", "deliveries", "--webhook-id", webhook_id, "--status", "succeeded")
    )
    assert delivery_id in [d["delivery_id"] for d in succeeded["deliveries"]]
    cancelled = ok_json(
        await run("--json", "deliveries", "--webhook-id", webhook_id, "--status", "CANCELLED")
    )
    assert cancelled == {"deliveries": []}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "COMMAND"),
        (["frobnicate"], "invalid choice"),
        (["get"], "webhook_id"),
        (["create", "--url", "http://x", "--event", "prompt.created"], "--name"),
        (["create", "--name", "n", "--url", "http://x", "--event", "prompt.made"], "prompt.made"),
        (["create", "--name", "n", "--url", "http://x", "--event", "nothing"], "ENTITY.ACTION"),
        (["update", "w", "--status", "paused"], "ACTIVE, DISABLED"),
        (["list", "--page-size", "0"], "--page-size"),
        (["publish", "prompt.created", "--data", "{not json"], "not valid JSON"),
        (["publish", "prompt.created", "--data", "[1]"], "JSON object"),
        (["publish", "prompt.created"], "--data"),
        (["deliveries", "--status", "LOST"], "PENDING"),
        (["--timeout", "-1", "list"], "--timeout"),
        (["--cacert", "/nonexistent/ca.pem", "list"], "/nonexistent/ca.pem"),
        (["deliveries", "--since", "yesterday"], "invalid time 'yesterday'"),
        (["deliveries", "--event", "model.made"], "model.made"),
        (["redeliver"], "give a delivery id, or --failed"),
        (["redeliver", "--failed", "--webhook", "w"], "--since"),
        (["redeliver", "--failed", "--since", "1h"], "--webhook"),
        (["redeliver", "d", "--failed", "--webhook", "w", "--since", "1h"], "not both"),
        (["redeliver", "d", "--since", "1h"], "go with --failed"),
        (["filter", "w", "--clear", "--name", "a*"], "give it alone"),
        (["settings", "w", "--delivery-timeout", "soon"], "'soon' is not a valid value"),
        (["settings", "w", "--retry-schedule", "1,x"], "'1,x' is not a valid value"),
        (["rotate-secret", "w", "--overlap", "1.5h"], "--overlap takes seconds or a span"),
        (["settings", "w", "--ordered", "--unordered"], "not allowed with argument"),
    ],
)
def test_bad_arguments_exit_2(args: list[str], fragment: str) -> None:
    # Nothing listens there: a bad argument must be refused before any call is made.
    stderr = failed(ctl(f"127.0.0.1:{free_port()}", *args), 2)
    assert fragment in stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["get", "no-such-id"], "NOT_FOUND: Webhook with ID no-such-id not found."),
        (["test", "no-such-id"], "NOT_FOUND"),
        (["update", "no-such-id", "--name", "x"], "NOT_FOUND"),
        (
            ["create", "--name", "n", "--url", "ftp://h/x", "--event", "prompt.created"],
            "INVALID_ARGUMENT: Invalid webhook URL scheme: 'ftp'",
        ),
        (
            ["create", "--name", "n", "--url", "http://h/x", "--event", "prompt.deleted"],
            "INVALID_ARGUMENT: Invalid action 'deleted' for entity 'prompt'",
        ),
        (["list", "--page-size", "5", "--json"], None),
        (["publish", "model_version.created", "--data", '{"name": 1}'], "INVALID_ARGUMENT"),
        (["delivery", "no-such-id"], "NOT_FOUND"),
        (["redeliver", "no-such-id"], "NOT_FOUND"),
        (["redeliver", "--failed", "--webhook", "no-such-id", "--since", "1h"], "NOT_FOUND"),
        (["deliveries", "--since", "10", "--until", "5"], "INVALID_ARGUMENT: since_timestamp"),
        (["filter", "no-such-id"], "NOT_FOUND"),
        (["settings", "no-such-id"], "NOT_FOUND"),
        (["rotate-secret", "no-such-id"], "NOT_FOUND"),
        (["rotate-secret", "w", "--overlap", "8d"], "INVALID_ARGUMENT: overlap_seconds"),
    ],
)
def test_server_errors_exit_1(server: ServerProcess, args: list[str], fragment: str | None) -> None:
    result = ctl(server.grpc_address, *args)
    if fragment is None:  # a control: the same options succeed when the call does
        ok_json(result)
        return
    stderr = failed(result, 1)
    assert stderr.startswith("webhooksctl: ")
    assert fragment in stderr
    assert "Traceback" not in stderr


def test_publish_with_a_used_key_and_another_event_exits_1(server: ServerProcess) -> None:
    data = {"name": "p", "key": "k", "value": "v"}
    args = ["publish", "prompt_tag.set", "--idempotency-key", "ctl-key", "--data"]
    first = ok_json(ctl(server.grpc_address, "--json", *args, json.dumps(data)))
    again = ok_json(ctl(server.grpc_address, "--json", *args, json.dumps(data)))
    assert again == first
    stderr = failed(ctl(server.grpc_address, *args, json.dumps({**data, "value": "w"})), 1)
    assert "ALREADY_EXISTS" in stderr and "ctl-key" in stderr


def test_unreachable_server_exits_1() -> None:
    address = f"127.0.0.1:{free_port()}"
    stderr = failed(ctl(address, "list"), 1)
    assert f"UNAVAILABLE: cannot reach the server at {address}" in stderr


def test_silent_server_is_bounded_by_timeout() -> None:
    # Takes TCP connections (the kernel's backlog does) but never answers.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        address = f"127.0.0.1:{s.getsockname()[1]}"
        stderr = failed(ctl(address, "--timeout", "1", "get", "x"), 1)
    assert f"DEADLINE_EXCEEDED: cannot reach the server at {address}" in stderr


def test_address_flag_beats_environment(server: ServerProcess) -> None:
    dead = f"127.0.0.1:{free_port()}"
    assert "webhooks" in ok_json(ctl(dead, "--address", server.grpc_address, "--json", "list"))
    failed(ctl(server.grpc_address, "--address", dead, "list"), 1)


# Tokens and TLS

TOKEN = "ctl-test-token"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    """A server that wants a bearer token and speaks TLS; with its CA certificate's path."""
    workdir = tmp_path_factory.mktemp("ctl-secured")
    ca, cert, key = make_certificates(workdir)
    proc = run_server(
        workdir,
        *PERMISSIVE,
        "--auth-token",
        TOKEN,
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--database-url",
        f"sqlite:///{workdir}/webhooks.db",
    )
    yield proc, ca
    proc.stop()


def test_token_and_cacert_from_environment(secured: tuple[ServerProcess, Path]) -> None:
    server, ca = secured
    env = {"WEBHOOKS_AUTH_TOKEN": TOKEN, "WEBHOOKS_CACERT": str(ca)}
    created = ok_json(
        ctl(
            server.grpc_address,
            "--json",
            "create",
            "--name",
            unique("secured"),
            "--url",
            "http://127.0.0.1:9/x",
            "--event",
            "prompt.created",
            env=env,
        )
    )["webhook"]
    listed = ok_json(ctl(server.grpc_address, "--json", "list", env=env))["webhooks"]
    assert created in listed


def test_token_and_cacert_flags_beat_environment(secured: tuple[ServerProcess, Path]) -> None:
    server, ca = secured
    env = {"WEBHOOKS_AUTH_TOKEN": "wrong-token", "WEBHOOKS_CACERT": "/nonexistent/ca.pem"}
    ok_json(
        ctl(server.grpc_address, "--token", TOKEN, "--cacert", str(ca), "--json", "list", env=env)
    )


def test_missing_or_wrong_token_exits_1(secured: tuple[ServerProcess, Path]) -> None:
    server, ca = secured
    stderr = failed(ctl(server.grpc_address, "--cacert", str(ca), "list"), 1)
    assert "UNAUTHENTICATED" in stderr
    stderr = failed(ctl(server.grpc_address, "--cacert", str(ca), "--token", "nope", "list"), 1)
    assert "UNAUTHENTICATED" in stderr


def test_plaintext_against_tls_exits_1(secured: tuple[ServerProcess, Path]) -> None:
    server, _ = secured
    stderr = failed(ctl(server.grpc_address, "--token", TOKEN, "--timeout", "5", "list"), 1)
    assert f"cannot reach the server at {server.grpc_address}" in stderr


def test_moment_parses_times() -> None:
    now = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    assert moment("1767225600000") == 1_767_225_600_000
    assert moment("2026-01-01T00:00:00Z") == 1_767_225_600_000
    assert moment("2026-01-01") == 1_767_225_600_000  # UTC unless it says otherwise
    assert moment("2026-01-01T01:00:00+01:00") == 1_767_225_600_000
    assert moment("24h", now) == 1_767_225_600_000 - 86_400_000
    assert moment("90m", now) == 1_767_225_600_000 - 5_400_000
    assert moment("7D", now) == 1_767_225_600_000 - 7 * 86_400_000
    assert moment(" 30s ", now) == 1_767_225_600_000 - 30_000


async def test_deliveries_summary_redeliver_failed_and_events(
    delivery_server: ServerProcess, receiver: Receiver
) -> None:
    """A receiver answering 400 fails a delivery at once: the table shows the attempt, the
    answer and the error; redeliver --failed sends it again; events lists the valid names."""
    address = delivery_server.grpc_address

    def run(*args: str) -> Any:
        return asyncio.to_thread(ctl, address, *args)

    created = await run(
        "--json",
        "create",
        "--name",
        unique("failing"),
        "--url",
        f"{receiver.url}/status/400",
        "--event",
        "prompt_alias.deleted",
    )
    webhook_id = ok_json(created)["webhook"]["webhook_id"]
    data = json.dumps({"name": "p", "alias": "prod"})
    [delivery_id] = ok_json(await run("--json", "publish", "prompt_alias.deleted", "--data", data))[
        "delivery_ids"
    ]
    with WebhooksClient(address) as client:
        for _ in range(400):  # attempts are recorded a moment after they are made
            if client.delivery(delivery_id).status == 3:  # FAILED
                break
            await asyncio.sleep(0.05)
    lines = ok(
        await run(
            "deliveries",
            "--webhook-id",
            webhook_id,
            "--status",
            "failed",
            "--event",
            "prompt_alias.deleted",
            "--since",
            "1h",
        )
    ).splitlines()
    assert len(lines) == 2
    columns = lines[1].split()
    assert columns[:5] == [delivery_id, webhook_id, "prompt_alias.deleted", "FAILED", "1"]
    assert columns[6] == "400" and "receiver answered HTTP 400" in lines[1]
    none_yet = ok_json(
        await run("--json", "deliveries", "--webhook-id", webhook_id, "--until", "1")
    )
    assert none_yet == {"deliveries": []}

    before = len(receiver.received)
    again = ok_json(
        await run("--json", "redeliver", "--failed", "--webhook", webhook_id, "--since", "1h")
    )
    assert again == {"redelivered": 1, "succeeded": 0, "delivery_ids": [delivery_id]}
    await receiver.wait_for(before + 1)
    assert ok_json(await run("--json", "delivery", delivery_id))["delivery"]["attempt_count"] == 2
    table = pairs(ok(await run("redeliver", "--failed", "--webhook", webhook_id, "--since", "7d")))
    assert (table["redelivered"], table["succeeded"], table["failed"]) == ("1", "0", "1")

    events = ok(await run("events")).splitlines()
    assert events[0].split() == ["EVENT", "DATA_FIELDS"]
    assert ["prompt_alias.deleted", "name,alias"] in [line.split() for line in events]
    assert len(events) == 16
    listed = ok_json(await run("--json", "events"))["event_types"]
    assert listed[0] == {
        "event": {"entity": "REGISTERED_MODEL", "action": "CREATED"},
        "name": "registered_model.created",
        "data_fields": ["name", "tags", "description"],
    }


@pytest.mark.parametrize(
    ("text", "seconds"), [("0", 0), ("3600", 3600), ("90m", 5400), ("24h", 86_400), ("7D", 604_800)]
)
def test_webhooksctl_reads_an_overlap(text: str, seconds: int) -> None:
    assert _overlap(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-1h", "1.5h", "24x", "1e3"])
def test_webhooksctl_refuses_a_bad_overlap(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="--overlap takes seconds or a span"):
        _overlap(text)

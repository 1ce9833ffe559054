"""The real server through the generated stubs: every RPC's success path and error codes,
defaults, partial updates, pagination under concurrent changes, health, signals and flags."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mlflow_webhooks.generated import webhooks_pb2 as pb
from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc
from tests.conftest import PERMISSIVE
from tests.support import ROOT, Receiver, ServerProcess, run_server

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


def ev(entity: int = pb.MODEL_VERSION, action: int = pb.CREATED) -> pb.WebhookEvent:
    return pb.WebhookEvent(entity=entity, action=action)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    return e.value


async def create(stub: pb_grpc.WebhookServiceStub, **fields: Any) -> pb.Webhook:
    fields.setdefault("name", "hook")
    fields.setdefault("url", "https://example.com/hook")
    fields.setdefault("events", [ev()])
    return (await stub.createWebhook(pb.CreateWebhook(**fields))).webhook


@asynccontextmanager
async def dedicated(
    workdir: Path, *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[ServerProcess, pb_grpc.WebhookServiceStub, grpc.aio.Channel]]:
    """A server of its own, for tests where what else is stored, or the flags, matter."""
    proc = await asyncio.to_thread(
        run_server,
        workdir,
        *PERMISSIVE,
        "--database-url",
        f"sqlite:///{workdir}/own.db",
        *args,
        env=env,
    )
    try:
        async with grpc.aio.insecure_channel(proc.grpc_address) as channel:
            yield proc, pb_grpc.WebhookServiceStub(channel), channel
    finally:
        proc.kill()


# -- create ----------------------------------------------------------------------------


async def test_create_defaults(stub: pb_grpc.WebhookServiceStub) -> None:
    before = now_ms()
    hook = await create(stub, name="defaults")
    after = now_ms()
    assert uuid.UUID(hook.webhook_id).version == 4
    assert str(uuid.UUID(hook.webhook_id)) == hook.webhook_id
    assert hook.status == pb.ACTIVE
    assert hook.HasField("status")
    assert hook.name == "defaults"
    assert hook.url == "https://example.com/hook"
    assert list(hook.events) == [ev()]
    assert not hook.HasField("description")
    # Unix milliseconds.
    assert before <= hook.creation_timestamp <= after
    assert hook.last_updated_timestamp == hook.creation_timestamp


async def test_create_every_field(stub: pb_grpc.WebhookServiceStub) -> None:
    events = [ev(pb.PROMPT, pb.CREATED), ev(pb.MODEL_VERSION_TAG, pb.DELETED)]
    hook = await create(
        stub,
        name="Every.Field_1",
        description="a description",
        url="https://example.com/path?q=1",
        events=events,
        secret="s",
        status=pb.DISABLED,
    )
    assert hook.name == "Every.Field_1"
    assert hook.description == "a description"
    assert hook.url == "https://example.com/path?q=1"
    assert list(hook.events) == events
    assert hook.status == pb.DISABLED


async def test_create_collapses_duplicate_events(stub: pb_grpc.WebhookServiceStub) -> None:
    hook = await create(
        stub,
        events=[ev(pb.PROMPT, pb.CREATED), ev(), ev(pb.PROMPT, pb.CREATED), ev()],
    )
    assert list(hook.events) == [ev(pb.PROMPT, pb.CREATED), ev()]


async def test_ids_are_unique(stub: pb_grpc.WebhookServiceStub) -> None:
    hooks = await asyncio.gather(*(create(stub, name="same") for _ in range(20)))
    assert len({h.webhook_id for h in hooks}) == 20


CREATE_ERRORS = {
    "no-name": ({"name": ""}, "Missing value for required parameter 'name'"),
    "bad-name": ({"name": "-bad"}, "Webhook name '-bad' is invalid"),
    "long-name": ({"name": "a" * 64}, "1 to 63 characters"),
    "no-url": ({"url": ""}, "Missing value for required parameter 'url'"),
    "blank-url": ({"url": "   "}, "Webhook URL cannot be empty or just whitespace: '   '"),
    "ftp-url": (
        {"url": "ftp://example.com/x"},
        "Invalid webhook URL scheme: 'ftp'. Allowed schemes are: http, https.",
    ),
    "unparseable-url": ({"url": "http://[invalid"}, "Invalid webhook URL 'http://[invalid': "),
    "hostless-url": ({"url": "https://"}, "Webhook URL must include a hostname: 'https://'"),
    "long-url": ({"url": "https://example.com/" + "a" * 481}, "at most 500"),
    "no-events": ({"events": []}, "Webhook events cannot be empty"),
    "bad-action": (
        {"events": [ev(pb.REGISTERED_MODEL, pb.DELETED)]},
        "Invalid action 'deleted' for entity 'registered_model'. Valid actions are: ['created']",
    ),
    "entity-unspecified": ({"events": [pb.WebhookEvent(action=pb.CREATED)]}, "entity"),
    "action-unspecified": (
        {"events": [pb.WebhookEvent(entity=pb.PROMPT)]},
        "Invalid action 'action_unspecified' for entity 'prompt'.",
    ),
    "empty-event": ({"events": [pb.WebhookEvent()]}, "entity"),
    "long-description": ({"description": "d" * 1001}, "at most 1000"),
    "long-secret": ({"secret": "s" * 1001}, "at most 1000"),
}


@pytest.mark.parametrize(("fields", "expected"), CREATE_ERRORS.values(), ids=CREATE_ERRORS.keys())
async def test_create_invalid_argument(
    stub: pb_grpc.WebhookServiceStub, server: ServerProcess, fields: dict[str, Any], expected: str
) -> None:
    log_before = len(server.log())
    e = await rpc_error(create(stub, **fields))
    assert e.code() == INVALID
    assert expected in e.details()
    # Never a stack trace, to the caller or in the log.
    assert "Traceback" not in e.details()
    assert "Traceback" not in server.log()[log_before:]


async def test_create_at_limits(stub: pb_grpc.WebhookServiceStub) -> None:
    url = "https://example.com/" + "a" * 480
    assert len(url) == 500
    hook = await create(stub, name="n" * 63, url=url, description="d" * 1000, secret="s" * 1000)
    assert (len(hook.name), len(hook.url), len(hook.description)) == (63, 500, 1000)


async def test_empty_description_is_absent(stub: pb_grpc.WebhookServiceStub) -> None:
    hook = await create(stub, description="")
    assert not hook.HasField("description")


# -- get / list ------------------------------------------------------------------------


async def test_get(stub: pb_grpc.WebhookServiceStub) -> None:
    hook = await create(stub, name="got", description="d")
    got = await stub.getWebhook(pb.GetWebhook(webhook_id=hook.webhook_id))
    assert got.webhook == hook


async def test_get_errors(stub: pb_grpc.WebhookServiceStub) -> None:
    e = await rpc_error(stub.getWebhook(pb.GetWebhook(webhook_id="")))
    assert e.code() == INVALID
    assert "webhook_id" in e.details()
    missing = str(uuid.uuid4())
    e = await rpc_error(stub.getWebhook(pb.GetWebhook(webhook_id=missing)))
    assert e.code() == NOT_FOUND
    assert e.details() == f"Webhook with ID {missing} not found."
    e = await rpc_error(stub.getWebhook(pb.GetWebhook()))
    assert e.code() == INVALID


async def test_list_includes_new_webhook_newest_first(stub: pb_grpc.WebhookServiceStub) -> None:
    first = await create(stub, name="older")
    second = await create(stub, name="newer")
    listed = await stub.listWebhooks(pb.ListWebhooks(max_results=1000))
    ids = [w.webhook_id for w in listed.webhooks]
    assert ids.index(second.webhook_id) < ids.index(first.webhook_id)
    by_id = {w.webhook_id: w for w in listed.webhooks}
    assert by_id[first.webhook_id] == first
    stamps = [(w.creation_timestamp, w.webhook_id) for w in listed.webhooks]
    assert stamps == sorted(stamps, reverse=True)


@pytest.mark.parametrize("bad", [-1, 1001, -100, 2**31 - 1])
async def test_list_bad_max_results(stub: pb_grpc.WebhookServiceStub, bad: int) -> None:
    e = await rpc_error(stub.listWebhooks(pb.ListWebhooks(max_results=bad)))
    assert e.code() == INVALID
    assert "max_results" in e.details()
    assert "1000" in e.details()


@pytest.mark.parametrize("token", ["garbage!!", "bm90LWpzb24", "WzEsMl0"])
async def test_list_bad_page_token(stub: pb_grpc.WebhookServiceStub, token: str) -> None:
    e = await rpc_error(stub.listWebhooks(pb.ListWebhooks(page_token=token)))
    assert e.code() == INVALID
    assert "page_token" in e.details()
    assert "next_page_token" in e.details()


async def test_list_huge_timestamp_in_page_token(stub: pb_grpc.WebhookServiceStub) -> None:
    # base64('[100000000000000000000000,"x"]'): decodes, but overflows SQLite's INTEGER.
    token = "WzEwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMCwieCJd"
    e = await rpc_error(stub.listWebhooks(pb.ListWebhooks(page_token=token)))
    assert e.code() == INVALID


async def all_ids(stub: pb_grpc.WebhookServiceStub) -> list[str]:
    ids: list[str] = []
    token = ""
    while True:
        page = await stub.listWebhooks(pb.ListWebhooks(max_results=1000, page_token=token))
        ids.extend(w.webhook_id for w in page.webhooks)
        if not page.HasField("next_page_token"):
            return ids
        token = page.next_page_token


async def test_list_max_results_default_and_limits(stub: pb_grpc.WebhookServiceStub) -> None:
    made = await asyncio.gather(*(create(stub, name=f"h{i}") for i in range(101)))
    every = await all_ids(stub)
    assert {h.webhook_id for h in made} <= set(every)
    assert len(every) == len(set(every))
    unset = await stub.listWebhooks(pb.ListWebhooks())
    assert len(unset.webhooks) == 100
    assert unset.HasField("next_page_token")
    zero = await stub.listWebhooks(pb.ListWebhooks(max_results=0))
    assert len(zero.webhooks) == 100
    assert zero.HasField("next_page_token")
    assert [w.webhook_id for w in zero.webhooks] == every[:100]
    rest = await stub.listWebhooks(
        pb.ListWebhooks(max_results=1000, page_token=zero.next_page_token)
    )
    assert [w.webhook_id for w in rest.webhooks] == every[100:1100]
    thousand = await stub.listWebhooks(pb.ListWebhooks(max_results=1000))
    assert len(thousand.webhooks) == min(len(every), 1000)
    assert thousand.HasField("next_page_token") == (len(every) > 1000)
    one = await stub.listWebhooks(pb.ListWebhooks(max_results=1))
    assert [w.webhook_id for w in one.webhooks] == every[:1]
    assert one.HasField("next_page_token")


async def test_pages_neither_skip_nor_repeat_under_changes(
    stub: pb_grpc.WebhookServiceStub,
) -> None:
    initial = [(await create(stub, name=f"p{i}")).webhook_id for i in range(14)]
    throughout = set(initial)
    deleted_unseen: set[str] = set()
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await stub.listWebhooks(pb.ListWebhooks(max_results=3, page_token=token))
        pages += 1
        assert len(page.webhooks) <= 3
        seen.extend(w.webhook_id for w in page.webhooks)
        if not page.HasField("next_page_token"):
            assert page.next_page_token == ""
            break
        assert len(page.webhooks) == 3
        token = page.next_page_token
        # Between pages: a new webhook, one not yet seen deleted, one seen deleted.
        await create(stub, name=f"new{pages}")
        not_yet = [i for i in initial if i not in seen and i in throughout]
        if len(not_yet) > 1:
            victim = not_yet[len(not_yet) // 2]
            await stub.deleteWebhook(pb.DeleteWebhook(webhook_id=victim))
            throughout.discard(victim)
            deleted_unseen.add(victim)
        already = [i for i in seen if i in throughout]
        if already and pages % 2:
            await stub.deleteWebhook(pb.DeleteWebhook(webhook_id=already[0]))
            throughout.discard(already[0])
        assert pages < 50
    assert len(seen) == len(set(seen)), "a webhook was repeated"
    assert throughout <= set(seen), "a webhook that existed throughout was skipped"
    assert not deleted_unseen & set(seen), "a webhook deleted before its page was listed"
    assert deleted_unseen, "the test deleted nothing unseen"


# -- update ----------------------------------------------------------------------------


def visible(hook: pb.Webhook) -> pb.Webhook:
    """The webhook without last_updated_timestamp, which every update moves."""
    copy = pb.Webhook()
    copy.CopyFrom(hook)
    copy.ClearField("last_updated_timestamp")
    return copy


async def update(stub: pb_grpc.WebhookServiceStub, webhook_id: str, **fields: Any) -> pb.Webhook:
    response = await stub.updateWebhook(pb.UpdateWebhook(webhook_id=webhook_id, **fields))
    return response.webhook


UPDATES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "name": ({"name": "Renamed.2"}, {"name": "Renamed.2"}),
    "url": ({"url": "https://example.org/new"}, {"url": "https://example.org/new"}),
    "description": ({"description": "new words"}, {"description": "new words"}),
    "status": ({"status": pb.DISABLED}, {"status": pb.DISABLED}),
    "status-active": ({"status": pb.ACTIVE}, {}),
    "events": (
        {"events": [ev(pb.PROMPT_ALIAS, pb.DELETED), ev(pb.BUDGET_POLICY, pb.EXCEEDED)]},
        {"events": [ev(pb.PROMPT_ALIAS, pb.DELETED), ev(pb.BUDGET_POLICY, pb.EXCEEDED)]},
    ),
    "secret": ({"secret": "another"}, {}),
    "nothing": ({}, {}),
}


@pytest.mark.parametrize(("change", "effect"), UPDATES.values(), ids=UPDATES.keys())
async def test_partial_update_changes_only_that_field(
    stub: pb_grpc.WebhookServiceStub, change: dict[str, Any], effect: dict[str, Any]
) -> None:
    hook = await create(
        stub,
        name="partial",
        description="old words",
        url="https://example.com/old",
        events=[ev(), ev(pb.REGISTERED_MODEL, pb.CREATED)],
        secret="old-secret",
    )
    updated = await update(stub, hook.webhook_id, **change)
    expected = visible(hook)
    for field, value in effect.items():
        if field == "events":
            del expected.events[:]
            expected.events.extend(value)
        else:
            setattr(expected, field, value)
    assert visible(updated) == expected
    assert updated.last_updated_timestamp > hook.last_updated_timestamp
    assert updated.creation_timestamp == hook.creation_timestamp
    got = (await stub.getWebhook(pb.GetWebhook(webhook_id=hook.webhook_id))).webhook
    assert got == updated


async def test_update_empty_description_clears_it(stub: pb_grpc.WebhookServiceStub) -> None:
    hook = await create(stub, description="to clear")
    updated = await update(stub, hook.webhook_id, description="")
    assert not updated.HasField("description")


async def test_update_moves_last_updated_forward(stub: pb_grpc.WebhookServiceStub) -> None:
    hook = await create(stub)
    stamps = [hook.last_updated_timestamp]
    for i in range(5):
        stamps.append((await update(stub, hook.webhook_id, name=f"n{i}")).last_updated_timestamp)
    assert stamps == sorted(set(stamps))
    assert stamps[-1] <= now_ms() + 1000


UPDATE_ERRORS = {
    "bad-name": ({"name": "bad name"}, "Webhook name 'bad name' is invalid"),
    "blank-url": ({"url": "   "}, "Webhook URL cannot be empty or just whitespace: '   '"),
    "ftp-url": ({"url": "ftp://example.com/x"}, "Invalid webhook URL scheme: 'ftp'."),
    "hostless-url": ({"url": "https://"}, "Webhook URL must include a hostname: 'https://'"),
    "bad-event": (
        {"events": [ev(pb.REGISTERED_MODEL, pb.DELETED)]},
        "Invalid action 'deleted' for entity 'registered_model'. Valid actions are: ['created']",
    ),
    "unspecified-event": ({"events": [pb.WebhookEvent()]}, "entity"),
    "long-description": ({"description": "d" * 1001}, "at most 1000"),
    "long-secret": ({"secret": "s" * 1001}, "at most 1000"),
    "one-good-one-bad": ({"name": "fine", "url": "ftp://x/"}, "Invalid webhook URL scheme"),
}


@pytest.mark.parametrize(("change", "expected"), UPDATE_ERRORS.values(), ids=UPDATE_ERRORS.keys())
async def test_update_invalid_argument_changes_nothing(
    stub: pb_grpc.WebhookServiceStub, change: dict[str, Any], expected: str
) -> None:
    hook = await create(stub, name="stays")
    e = await rpc_error(update(stub, hook.webhook_id, **change))
    assert e.code() == INVALID
    assert expected in e.details()
    got = (await stub.getWebhook(pb.GetWebhook(webhook_id=hook.webhook_id))).webhook
    assert got == hook


async def test_update_errors(stub: pb_grpc.WebhookServiceStub) -> None:
    e = await rpc_error(update(stub, "", name="x"))
    assert e.code() == INVALID
    assert "webhook_id" in e.details()
    missing = str(uuid.uuid4())
    e = await rpc_error(update(stub, missing, name="x"))
    assert e.code() == NOT_FOUND
    assert e.details() == f"Webhook with ID {missing} not found."


# -- concurrent changes ----------------------------------------------------------------


async def test_concurrent_partial_updates_all_apply(stub: pb_grpc.WebhookServiceStub) -> None:
    """Five callers change five different fields of one webhook at once: each change is kept
    (no update works from a stale copy), and every update gets its own later timestamp."""
    for _ in range(8):
        hook = await create(stub, name="raced", url="https://example.com/a")
        wid = hook.webhook_id
        results = await asyncio.gather(
            update(stub, wid, name="renamed"),
            update(stub, wid, description="described"),
            update(stub, wid, url="https://example.com/b"),
            update(stub, wid, status=pb.DISABLED),
            update(stub, wid, events=[ev(pb.PROMPT, pb.CREATED)]),
        )
        got = (await stub.getWebhook(pb.GetWebhook(webhook_id=wid))).webhook
        assert (got.name, got.description, got.url, got.status, list(got.events)) == (
            "renamed",
            "described",
            "https://example.com/b",
            pb.DISABLED,
            [ev(pb.PROMPT, pb.CREATED)],
        )
        stamps = sorted(r.last_updated_timestamp for r in results)
        assert len(set(stamps)) == len(stamps)
        assert got.last_updated_timestamp == stamps[-1]


async def test_update_racing_delete_is_ok_or_not_found(stub: pb_grpc.WebhookServiceStub) -> None:
    """An update that loses a race with a delete is NOT_FOUND, never INTERNAL."""
    for _ in range(8):
        wid = (await create(stub, name="raced")).webhook_id
        outcomes = await asyncio.gather(
            update(stub, wid, events=[ev(pb.PROMPT, pb.CREATED)], name="late"),
            stub.deleteWebhook(pb.DeleteWebhook(webhook_id=wid)),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, grpc.aio.AioRpcError):
                assert outcome.code() == NOT_FOUND, outcome.details()
            else:
                assert not isinstance(outcome, BaseException), outcome
        e = await rpc_error(stub.getWebhook(pb.GetWebhook(webhook_id=wid)))
        assert e.code() == NOT_FOUND


# -- delete ----------------------------------------------------------------------------


async def test_delete_then_everything_is_not_found(stub: pb_grpc.WebhookServiceStub) -> None:
    hook = await create(stub)
    wid = hook.webhook_id
    assert await stub.deleteWebhook(pb.DeleteWebhook(webhook_id=wid)) == pb.DeleteWebhook.Response()
    message = f"Webhook with ID {wid} not found."
    for call in [
        stub.getWebhook(pb.GetWebhook(webhook_id=wid)),
        stub.updateWebhook(pb.UpdateWebhook(webhook_id=wid, name="back")),
        stub.testWebhook(pb.TestWebhook(webhook_id=wid)),
        stub.deleteWebhook(pb.DeleteWebhook(webhook_id=wid)),
    ]:
        e = await rpc_error(call)
        assert e.code() == NOT_FOUND
        assert e.details() == message
    listed = await stub.listWebhooks(pb.ListWebhooks(max_results=1000))
    assert wid not in {w.webhook_id for w in listed.webhooks}


async def test_delete_errors(stub: pb_grpc.WebhookServiceStub) -> None:
    e = await rpc_error(stub.deleteWebhook(pb.DeleteWebhook(webhook_id="")))
    assert e.code() == INVALID
    assert "webhook_id" in e.details()
    e = await rpc_error(stub.deleteWebhook(pb.DeleteWebhook(webhook_id="not-a-uuid")))
    assert e.code() == NOT_FOUND


async def test_test_webhook_errors(stub: pb_grpc.WebhookServiceStub) -> None:
    e = await rpc_error(stub.testWebhook(pb.TestWebhook(webhook_id="")))
    assert e.code() == INVALID
    e = await rpc_error(stub.testWebhook(pb.TestWebhook(webhook_id=str(uuid.uuid4()))))
    assert e.code() == NOT_FOUND


# -- secrets ---------------------------------------------------------------------------


async def test_secret_never_returned_nor_logged(
    stub: pb_grpc.WebhookServiceStub, server: ServerProcess, receiver: Receiver
) -> None:
    secret = f"never-shown-{uuid.uuid4().hex}"
    second = f"never-shown-either-{uuid.uuid4().hex}"
    responses: list[Any] = []
    created = await stub.createWebhook(
        pb.CreateWebhook(name="secretive", url=f"{receiver.url}/ok", events=[ev()], secret=secret)
    )
    wid = created.webhook.webhook_id
    responses.append(created)
    responses.append(await stub.getWebhook(pb.GetWebhook(webhook_id=wid)))
    responses.append(await stub.listWebhooks(pb.ListWebhooks(max_results=1000)))
    responses.append(await stub.updateWebhook(pb.UpdateWebhook(webhook_id=wid, name="still")))
    responses.append(await stub.testWebhook(pb.TestWebhook(webhook_id=wid)))
    responses.append(await stub.updateWebhook(pb.UpdateWebhook(webhook_id=wid, secret=second)))
    responses.append(await stub.testWebhook(pb.TestWebhook(webhook_id=wid)))
    responses.append(await stub.getWebhook(pb.GetWebhook(webhook_id=wid)))
    responses.append(await stub.deleteWebhook(pb.DeleteWebhook(webhook_id=wid)))
    for response in responses:
        wire = response.SerializeToString()
        assert secret.encode() not in wire
        assert second.encode() not in wire
        assert secret not in str(response)
    assert responses[4].result.success
    log = server.log()
    assert secret not in log
    assert second not in log


# -- health, reflection of state -------------------------------------------------------


@pytest.mark.parametrize("service", ["", "mlflow.WebhookService", "mlflow.WebhookDeliveryService"])
async def test_health_serving(channel: grpc.aio.Channel, service: str) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_health_unknown_service(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    e = await rpc_error(health.Check(health_pb2.HealthCheckRequest(service="no.Such")))
    assert e.code() == NOT_FOUND


async def test_unknown_method_is_unimplemented(channel: grpc.aio.Channel) -> None:
    call = channel.unary_unary(
        "/mlflow.WebhookService/noSuchMethod",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    e = await rpc_error(call(b""))
    assert e.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_garbage_request_bytes_are_not_unknown(channel: grpc.aio.Channel) -> None:
    call = channel.unary_unary(
        "/mlflow.WebhookService/getWebhook",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    e = await rpc_error(call(b"\xff\xff\xff\xff"))
    # A request that does not parse is a bad argument, never UNKNOWN (CONTRACT section 3).
    assert e.code() == INVALID


# -- process: port lines, signals, flags -----------------------------------------------


async def test_port_lines_printed_and_serving_at_once(workdir: Path) -> None:
    async with dedicated(workdir) as (proc, stub, channel):
        assert re.fullmatch(r"127\.0\.0\.1:\d+", proc.grpc_address)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", proc.http_url)
        assert int(proc.grpc_address.rsplit(":", 1)[1]) != 0
        assert int(proc.http_url.rsplit(":", 1)[1]) != 0
        assert proc.grpc_address.rsplit(":", 1)[1] != proc.http_url.rsplit(":", 1)[1]
        # Printed before serving: the first call, with no retry, is answered.
        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(), wait_for_ready=False)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with socket.create_connection(("127.0.0.1", int(proc.http_url.rsplit(":", 1)[1])), 5):
            pass
        # A new database lists nothing, and says there is no next page.
        empty = await stub.listWebhooks(pb.ListWebhooks())
        assert list(empty.webhooks) == []
        assert not empty.HasField("next_page_token")


async def test_sigterm_drains_and_exits_0(workdir: Path) -> None:
    async with dedicated(workdir) as (proc, stub, _):
        hook = await create(stub, name="kept")
        code = await asyncio.to_thread(proc.stop, signal.SIGTERM, 30.0)
        assert code == 0, proc.log()
        assert "Traceback" not in proc.log()
    # Nothing accepted is lost: the same database serves it again.
    async with dedicated(workdir) as (_, stub, _):
        got = await stub.getWebhook(pb.GetWebhook(webhook_id=hook.webhook_id))
        assert got.webhook == hook


async def test_sigterm_lets_an_in_flight_call_finish(workdir: Path, receiver: Receiver) -> None:
    path = f"/slow/{uuid.uuid4().hex}"
    async with dedicated(workdir, "--delivery-timeout", "1") as (proc, stub, _):
        hook = await create(stub, url=receiver.url + path)
        call = asyncio.ensure_future(stub.testWebhook(pb.TestWebhook(webhook_id=hook.webhook_id)))
        async with receiver.arrived:
            await asyncio.wait_for(
                receiver.arrived.wait_for(lambda: any(r.path == path for r in receiver.received)),
                10,
            )
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGTERM)
        # The call in flight when the signal came is answered, not cut off.
        result = (await asyncio.wait_for(call, 15)).result
        assert result.success is False
        assert "timed out" in result.error_message
        assert await asyncio.to_thread(proc.stop, signal.SIGTERM, 30.0) == 0


async def test_sigint_exits_0(workdir: Path) -> None:
    async with dedicated(workdir) as (proc, stub, _):
        await create(stub, name="interrupted")
        code = await asyncio.to_thread(proc.stop, signal.SIGINT, 30.0)
        assert code == 0, proc.log()
        assert "Traceback" not in proc.log()


async def test_health_not_serving_while_draining(workdir: Path) -> None:
    async with dedicated(workdir) as (proc, _, channel):
        health = health_pb2_grpc.HealthStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service="mlflow.WebhookService"))
        first = await asyncio.wait_for(watch.read(), 10)
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGTERM)
        # The open Watch is an in-flight call, so the drain waits for it: the change shows.
        second = await asyncio.wait_for(watch.read(), 10)
        assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()
        code = await asyncio.to_thread(proc.stop, signal.SIGTERM, 30.0)
        assert code == 0, proc.log()


def run_to_exit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlflow_webhooks.server", *args],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


BAD_FLAGS = {
    "unknown-flag": (["--no-such-flag"], "--no-such-flag"),
    "bad-timeout": (["--delivery-timeout", "0"], "--delivery-timeout"),
    "bad-address": (["--grpc-address", "nowhere"], "--grpc-address"),
    # str.isdigit() is true for "\u00b2", int() refuses it: a ConfigError, not a traceback.
    "superscript-workers": (["--workers", "\u00b2"], "--workers"),
}


@pytest.mark.parametrize(("args", "named"), BAD_FLAGS.values(), ids=BAD_FLAGS.keys())
def test_bad_flag_exits_2_with_clear_message(args: list[str], named: str) -> None:
    done = run_to_exit(*args)
    assert done.returncode == 2
    assert named in done.stderr
    assert "Traceback" not in done.stderr
    assert "listening" not in done.stdout


def test_port_in_use_exits_non_zero_with_clear_message(workdir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_to_exit(
            "--grpc-address",
            f"127.0.0.1:{port}",
            "--http-address",
            "127.0.0.1:0",
            "--database-url",
            f"sqlite:///{workdir}/busy.db",
        )
    assert done.returncode != 0
    assert f"127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_second_server_on_same_grpc_port_refused(workdir: Path) -> None:
    """Two servers must not share one gRPC port (gRPC sets SO_REUSEPORT by default, and the
    kernel would then split callers between two processes with different databases)."""
    first = run_server(workdir, "--database-url", f"sqlite:///{workdir}/first.db")
    second: subprocess.Popen[str] | None = None
    try:
        second = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow_webhooks.server",
                "--grpc-address",
                first.grpc_address,
                "--http-address",
                "127.0.0.1:0",
                "--database-url",
                f"sqlite:///{workdir}/second.db",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert second.stdout is not None
        # Either it exits at once, or it prints that it listens: whichever comes first.
        line = second.stdout.readline()
        assert not line.startswith("grpc listening"), "a second server bound the same port"
        assert second.wait(timeout=30) != 0
    finally:
        if second is not None and second.poll() is None:
            second.kill()
            second.wait(timeout=10)
        first.kill()

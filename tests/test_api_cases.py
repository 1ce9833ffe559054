"""One table of API cases (CONTRACT section 4), each run over gRPC and over REST under each of
the shim's three prefixes. The session server holds other tests' webhooks too, so the cases
assert on what they created, never on totals."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from google.protobuf import struct_pb2
from google.protobuf.message import Message

from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from mlflow_webhooks.generated import webhooks_pb2 as pb
from mlflow_webhooks.server.store import now_ms
from tests.shim_transport import PREFIXES, GrpcTransport, RestTransport
from tests.support import Receiver

MV_CREATED = pb.WebhookEvent(entity=pb.MODEL_VERSION, action=pb.CREATED)
RM_CREATED = pb.WebhookEvent(entity=pb.REGISTERED_MODEL, action=pb.CREATED)
TAG_SET = pb.WebhookEvent(entity=pb.MODEL_VERSION_TAG, action=pb.SET)
URL = "https://example.com/hook"
UNKNOWN_ID = str(uuid.UUID(int=0x1234, version=4))
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@dataclass
class Ctx:
    call: Callable[[str, Message], Awaitable[tuple[str, Any]]]
    receiver_url: str
    webhook: pb.Webhook | None = None
    receiver: Receiver | None = None

    @property
    def id(self) -> str:
        assert self.webhook is not None
        return self.webhook.webhook_id

    async def ok(self, rpc: str, request: Message) -> Any:
        code, response = await self.call(rpc, request)
        assert code == "OK", (rpc, code, response)
        return response


Request = Callable[[Ctx], Message]
Check = Callable[[Ctx, Any], Awaitable[None] | None]


@dataclass(frozen=True)
class Case:
    id: str
    rpc: str
    request: Request
    code: str = "OK"
    message: str | None = None  # the exact error message; "{id}" is the case's webhook id
    mentions: str | None = None  # a part of the error message
    check: Check | None = None  # more checks of a response
    existing: bool = False  # create a webhook (ctx.webhook) first


def create(**fields: Any) -> Request:
    fields = {"name": "case", "url": URL, "events": [MV_CREATED], **fields}
    return lambda _: pb.CreateWebhook(**fields)


def on_existing(message_class: type[Message], **fields: Any) -> Request:
    return lambda ctx: message_class(webhook_id=ctx.id, **fields)


def invalid_create(case_id: str, message: str | None = None, mentions: str | None = None, **kw):
    return Case(case_id, "createWebhook", create(**kw), "INVALID_ARGUMENT", message, mentions)


def created_as_asked(ctx: Ctx, response: Any) -> None:
    hook = response.webhook
    assert UUID4.match(hook.webhook_id), hook.webhook_id
    assert (hook.name, hook.url, list(hook.events)) == ("case", URL, [MV_CREATED])
    assert hook.status == pb.ACTIVE
    assert not hook.HasField("description")
    assert hook.creation_timestamp == hook.last_updated_timestamp > 1_600_000_000_000


async def stored(ctx: Ctx, response: Any) -> None:
    got = await ctx.ok("getWebhook", pb.GetWebhook(webhook_id=response.webhook.webhook_id))
    assert got.webhook == response.webhook


def full_create(ctx: Ctx, response: Any) -> Awaitable[None]:
    hook = response.webhook
    assert hook.description == "a" * 1000
    assert hook.status == pb.DISABLED
    assert hook.url.endswith("a" * 100) and len(hook.url) == 500
    assert [f.name for f, _ in hook.ListFields()].count("secret") == 0
    return stored(ctx, response)


def updated(expect: Callable[[pb.Webhook, pb.Webhook], None]) -> Check:
    """Checks an update against the webhook before it, then that get answers the same."""

    async def check(ctx: Ctx, response: Any) -> None:
        before, after = ctx.webhook, response.webhook
        assert before is not None
        expect(before, after)
        assert after.creation_timestamp == before.creation_timestamp
        assert after.last_updated_timestamp > before.last_updated_timestamp
        await stored(ctx, response)

    return check


def only_name_changed(before: pb.Webhook, after: pb.Webhook) -> None:
    assert after.name == "renamed"
    for field in ("url", "events", "description", "status"):
        assert getattr(after, field) == getattr(before, field), field


def unchanged(rpc: str) -> Check:
    async def check(ctx: Ctx, _: Any) -> None:
        got = await ctx.ok("getWebhook", pb.GetWebhook(webhook_id=ctx.id))
        assert got.webhook == ctx.webhook, rpc

    return check


async def gone_everywhere(ctx: Ctx, response: Any) -> None:
    assert response == pb.DeleteWebhook.Response()
    expected = f"Webhook with ID {ctx.id} not found."
    for rpc, request in [
        ("getWebhook", pb.GetWebhook(webhook_id=ctx.id)),
        ("updateWebhook", pb.UpdateWebhook(webhook_id=ctx.id, name="again")),
        ("testWebhook", pb.TestWebhook(webhook_id=ctx.id)),
        ("deleteWebhook", pb.DeleteWebhook(webhook_id=ctx.id)),
    ]:
        assert await ctx.call(rpc, request) == ("NOT_FOUND", expected), rpc


async def listed(ctx: Ctx, response: Any) -> None:
    """The new webhook is on the first page (newest first), and paging by one reaches it
    without repeats."""
    assert response.webhooks[0] == ctx.webhook
    seen: list[str] = []
    token = ""
    for _ in range(5):
        page = await ctx.ok("listWebhooks", pb.ListWebhooks(max_results=1, page_token=token))
        assert len(page.webhooks) == 1
        seen.append(page.webhooks[0].webhook_id)
        if not page.next_page_token:
            break
        token = page.next_page_token
    assert seen[0] == ctx.id
    assert len(seen) == len(set(seen))


def answered(expected_status: int, success: bool) -> Check:
    def check(ctx: Ctx, response: Any) -> None:
        assert response.result.success is success, response
        assert response.result.response_status == expected_status

    return check


def with_receiver(path: str) -> Request:
    return lambda ctx: pb.CreateWebhook(
        name="receiver-case", url=ctx.receiver_url + path, events=[MV_CREATED]
    )


NOT_FOUND = "Webhook with ID " + UNKNOWN_ID + " not found."

# ---- the delivery log, health and bulk redelivery (issue 11) -----------------------------

MV_DATA = {
    "name": "m",
    "version": "1",
    "source": "s3://m/1",
    "run_id": None,
    "tags": {},
    "description": None,
}
RM_DATA = {"name": "m", "tags": {}, "description": None}


async def hook_at(ctx: Ctx, path: str, *events: pb.WebhookEvent) -> str:
    made = await ctx.ok(
        "createWebhook",
        pb.CreateWebhook(
            name="log-case", url=ctx.receiver_url + path, events=list(events or [MV_CREATED])
        ),
    )
    return made.webhook.webhook_id


async def publish(ctx: Ctx, event: pb.WebhookEvent, data: dict[str, Any]) -> list[str]:
    struct = struct_pb2.Struct()
    struct.update(data)
    published = await ctx.ok("publishEvent", dpb.PublishEvent(event=event, data=struct))
    return list(published.delivery_ids)


async def settled(ctx: Ctx, delivery_id: str, attempts: int = 1) -> dpb.Delivery:
    """The delivery once it has `attempts` attempts recorded and is not waiting for its first
    (attempts are written in batches a moment after they are made); bounded."""
    for _ in range(400):
        got = (await ctx.ok("getDelivery", dpb.GetDelivery(delivery_id=delivery_id))).delivery
        if got.attempt_count >= attempts and got.status != dpb.PENDING:
            return got
        await asyncio.sleep(0.05)
    pytest.fail(f"delivery {delivery_id} did not settle: {got}")


def deliveries_request(**fields: Any) -> Request:
    return lambda _: dpb.ListDeliveries(**fields)


def invalid_deliveries(case_id: str, mentions: str, **fields: Any) -> Case:
    return Case(
        case_id, "listDeliveries", deliveries_request(**fields), "INVALID_ARGUMENT", None, mentions
    )


async def listed_with_summaries_and_filters(ctx: Ctx, _: Any) -> None:
    """Two events of two types to a receiver answering 500 once retries are spent (the session
    server retries 5xx, so the receiver answers 400: final at once), then every filter."""
    hook = await hook_at(ctx, "/status/400", MV_CREATED, RM_CREATED)
    [first] = await publish(ctx, MV_CREATED, MV_DATA)
    before_second = (await settled(ctx, first)).creation_timestamp + 1
    [second] = await publish(ctx, RM_CREATED, RM_DATA)
    await settled(ctx, second)

    async def ids(**fields: Any) -> list[str]:
        page = await ctx.ok("listDeliveries", dpb.ListDeliveries(webhook_id=hook, **fields))
        return [d.delivery_id for d in page.deliveries]

    listed = await ctx.ok("listDeliveries", dpb.ListDeliveries(webhook_id=hook))
    assert [d.delivery_id for d in listed.deliveries] == [second, first]  # newest first
    summary = listed.deliveries[0]
    got = await ctx.ok("getDelivery", dpb.GetDelivery(delivery_id=second))
    assert summary.event_id == got.delivery.event_id and summary.event_id
    assert summary.attempt_count == 1 and not summary.attempts and not summary.payload
    assert summary.last_attempt.number == 1
    assert summary.last_attempt.response_status == 400
    assert "400" in summary.last_attempt.error
    assert not summary.last_attempt.response_body  # lists leave bodies out
    assert summary.last_attempt.timestamp >= summary.creation_timestamp
    assert await ids(event=RM_CREATED) == [second]
    assert await ids(event=MV_CREATED) == [first]
    assert await ids(status=dpb.FAILED) == [second, first]
    assert await ids(status=dpb.SUCCEEDED) == []
    assert await ids(since_timestamp=before_second) == [second]
    assert await ids(until_timestamp=before_second) == [first]
    assert await ids(since_timestamp=0, until_timestamp=before_second, event=MV_CREATED) == [first]
    page = await ctx.ok("listDeliveries", dpb.ListDeliveries(webhook_id=hook, max_results=1))
    assert [d.delivery_id for d in page.deliveries] == [second] and page.next_page_token
    rest = await ctx.ok(
        "listDeliveries",
        dpb.ListDeliveries(webhook_id=hook, max_results=1, page_token=page.next_page_token),
    )
    assert [d.delivery_id for d in rest.deliveries] == [first] and not rest.next_page_token


async def payload_as_sent(ctx: Ctx, _: Any) -> None:
    assert ctx.receiver is not None
    await hook_at(ctx, "/ok")
    before = len(ctx.receiver.received)
    [delivery_id] = await publish(ctx, MV_CREATED, MV_DATA)
    await ctx.receiver.wait_for(before + 1)
    got = await settled(ctx, delivery_id)
    [sent] = [r for r in ctx.receiver.received if r.headers["webhook-id"] == delivery_id]
    assert got.payload == sent.body.decode()
    assert json.loads(got.payload)["data"] == MV_DATA
    assert got.status == dpb.SUCCEEDED and got.last_attempt.response_status == 200


async def redelivered_failed(ctx: Ctx, _: Any) -> None:
    """Failed deliveries go out again, one new logged attempt each; a bound leaves a token;
    once the receiver is fixed they succeed."""
    assert ctx.receiver is not None
    hook = await hook_at(ctx, "/status/400")
    ids = [(await publish(ctx, MV_CREATED, MV_DATA))[0] for _ in range(3)]
    for delivery_id in ids:
        await settled(ctx, delivery_id)
    before = len(ctx.receiver.received)
    first = await ctx.ok(
        "redeliverFailed",
        dpb.RedeliverFailed(webhook_id=hook, since_timestamp=0, max_deliveries=2),
    )
    assert (first.redelivered, first.succeeded) == (2, 0)
    assert list(first.delivery_ids) == ids[:2]  # oldest first
    assert first.next_page_token
    await ctx.receiver.wait_for(before + 2)
    assert sorted(ctx.receiver.delivery_ids()[before:]) == sorted(ids[:2])
    for delivery_id in ids[:2]:
        again = await settled(ctx, delivery_id, attempts=2)
        assert [a.number for a in again.attempts] == [1, 2]
        assert again.status == dpb.FAILED
    await ctx.ok("updateWebhook", pb.UpdateWebhook(webhook_id=hook, url=ctx.receiver_url + "/ok"))
    rest = await ctx.ok(
        "redeliverFailed",
        dpb.RedeliverFailed(webhook_id=hook, since_timestamp=0, page_token=first.next_page_token),
    )
    assert (rest.redelivered, rest.succeeded, list(rest.delivery_ids)) == (1, 1, ids[2:])
    assert not rest.next_page_token
    assert (await settled(ctx, ids[2], attempts=2)).status == dpb.SUCCEEDED
    newer = await ctx.ok(
        "redeliverFailed",
        dpb.RedeliverFailed(webhook_id=hook, since_timestamp=2**62),
    )
    assert newer.redelivered == 0


async def health_and_disable_reason(ctx: Ctx, _: Any) -> None:
    """A 410 disables the webhook: health says why and when; a status change clears it."""
    quiet = await hook_at(ctx, "/ok", TAG_SET)
    gone = await hook_at(ctx, "/status/410")
    [delivery_id] = await publish(ctx, MV_CREATED, MV_DATA)
    sent = await settled(ctx, delivery_id)
    answer = await ctx.ok(
        "getWebhookHealth", dpb.GetWebhookHealth(webhook_ids=[gone, UNKNOWN_ID, quiet])
    )
    assert [h.webhook_id for h in answer.webhooks] == [gone, quiet]
    health, idle = answer.webhooks
    assert (health.deliveries_24h, health.failures_24h) == (1, 1)
    assert health.last_delivery.delivery_id == delivery_id
    assert health.last_delivery.status == dpb.FAILED
    assert health.last_delivery.last_attempt.response_status == 410
    assert "410" in health.disabled_reason
    assert health.disabled_timestamp == sent.attempts[0].timestamp
    assert (idle.deliveries_24h, idle.failures_24h) == (0, 0)
    assert not idle.HasField("last_delivery") and not idle.HasField("disabled_reason")
    got = await ctx.ok("getWebhook", pb.GetWebhook(webhook_id=gone))
    assert got.webhook.status == pb.DISABLED
    await ctx.ok("updateWebhook", pb.UpdateWebhook(webhook_id=gone, status=pb.ACTIVE))
    again = await ctx.ok("getWebhookHealth", dpb.GetWebhookHealth(webhook_ids=[gone]))
    assert not again.webhooks[0].HasField("disabled_reason")
    assert again.webhooks[0].failures_24h == 1


def every_event_type(_: Ctx, response: Any) -> None:
    names = [t.name for t in response.event_types]
    assert len(names) == len(set(names)) == 15
    by_name = {t.name: t for t in response.event_types}
    assert by_name["model_version.created"].event == MV_CREATED
    assert list(by_name["model_version_tag.set"].data_fields) == ["name", "version", "key", "value"]
    assert "registered_model.deleted" not in by_name


LOG_CASES = [
    Case("event-types", "listEventTypes", lambda _: dpb.ListEventTypes(), check=every_event_type),
    Case(
        "list-deliveries-summaries-and-filters",
        "listDeliveries",
        deliveries_request(),
        check=listed_with_summaries_and_filters,
    ),
    Case(
        "get-delivery-payload-as-sent",
        "listDeliveries",
        deliveries_request(),
        check=payload_as_sent,
    ),
    invalid_deliveries(
        "list-deliveries-since-not-before-until",
        "since_timestamp (5) must be before until_timestamp (5)",
        since_timestamp=5,
        until_timestamp=5,
    ),
    invalid_deliveries(
        "list-deliveries-negative-since",
        "since_timestamp must be Unix milliseconds",
        since_timestamp=-1,
    ),
    invalid_deliveries(
        "list-deliveries-negative-until",
        "until_timestamp must be Unix milliseconds",
        until_timestamp=-5,
    ),
    invalid_deliveries(
        "list-deliveries-bad-event",
        "Invalid action 'deleted' for entity 'registered_model'",
        event=pb.WebhookEvent(entity=pb.REGISTERED_MODEL, action=pb.DELETED),
    ),
    invalid_deliveries(
        "list-deliveries-entity-unspecified",
        "entity",
        event=pb.WebhookEvent(action=pb.CREATED),
    ),
    invalid_deliveries("list-deliveries-max-results-1001", "max_results", max_results=1001),
    invalid_deliveries("list-deliveries-bad-page-token", "page_token", page_token="nope"),
    Case(
        "health-and-disable-reason",
        "getWebhookHealth",
        lambda _: dpb.GetWebhookHealth(webhook_ids=[UNKNOWN_ID]),
        check=health_and_disable_reason,
    ),
    Case(
        "health-unknown-left-out",
        "getWebhookHealth",
        lambda _: dpb.GetWebhookHealth(webhook_ids=[UNKNOWN_ID]),
        check=lambda _, r: len(r.webhooks) == 0 or pytest.fail(r),
    ),
    Case(
        "health-no-ids",
        "getWebhookHealth",
        lambda _: dpb.GetWebhookHealth(),
        "INVALID_ARGUMENT",
        mentions="webhook_ids",
    ),
    Case(
        "health-101-ids",
        "getWebhookHealth",
        lambda _: dpb.GetWebhookHealth(webhook_ids=[UNKNOWN_ID] * 101),
        "INVALID_ARGUMENT",
        mentions="at most 100 webhook_ids",
    ),
    Case(
        "redeliver-failed-sends-again",
        "redeliverFailed",
        lambda _: dpb.RedeliverFailed(webhook_id=UNKNOWN_ID, since_timestamp=0),
        "NOT_FOUND",
        check=redelivered_failed,
    ),
    Case(
        "redeliver-failed-none",
        "redeliverFailed",
        on_existing(dpb.RedeliverFailed, since_timestamp=0),
        existing=True,
        check=lambda _, r: (r.redelivered, r.succeeded) == (0, 0) or pytest.fail(r),
    ),
    Case(
        "redeliver-failed-unknown-webhook",
        "redeliverFailed",
        lambda _: dpb.RedeliverFailed(webhook_id=UNKNOWN_ID, since_timestamp=0),
        "NOT_FOUND",
        NOT_FOUND,
    ),
    Case(
        "redeliver-failed-since-missing",
        "redeliverFailed",
        on_existing(dpb.RedeliverFailed),
        "INVALID_ARGUMENT",
        mentions="since_timestamp",
        existing=True,
    ),
    Case(
        "redeliver-failed-since-negative",
        "redeliverFailed",
        on_existing(dpb.RedeliverFailed, since_timestamp=-1),
        "INVALID_ARGUMENT",
        mentions="since_timestamp must be Unix milliseconds",
        existing=True,
    ),
    Case(
        "redeliver-failed-max-0",
        "redeliverFailed",
        on_existing(dpb.RedeliverFailed, since_timestamp=0, max_deliveries=0),
        "INVALID_ARGUMENT",
        mentions="max_deliveries must be between 1 and 1000",
        existing=True,
    ),
    Case(
        "redeliver-failed-max-1001",
        "redeliverFailed",
        on_existing(dpb.RedeliverFailed, since_timestamp=0, max_deliveries=1001),
        "INVALID_ARGUMENT",
        mentions="max_deliveries",
        existing=True,
    ),
]

CASES = [
    # create: valid
    Case("create-minimal", "createWebhook", create(), check=created_as_asked),
    Case("create-stored", "createWebhook", create(), check=stored),
    Case(
        "create-full",
        "createWebhook",
        create(
            url="https://example.com/" + "a" * 480,
            description="a" * 1000,
            secret="s" * 1000,
            status=pb.DISABLED,
        ),
        check=full_create,
    ),
    Case(
        "create-duplicate-events-collapse",
        "createWebhook",
        create(events=[MV_CREATED, TAG_SET, MV_CREATED]),
        check=lambda _, r: (list(r.webhook.events) == [MV_CREATED, TAG_SET]) or pytest.fail(r),
    ),
    Case(
        "create-name-63-mixed-case",
        "createWebhook",
        create(name="A" + "b.c_d-e" * 8 + "z" * 6),
        check=lambda _, r: len(r.webhook.name) == 63 or pytest.fail(r),
    ),
    # create: invalid, one per rule
    invalid_create("create-name-missing", mentions="name", name=""),
    invalid_create("create-name-bad-characters", mentions="name", name="bad name!"),
    invalid_create("create-name-starts-with-dash", mentions="name", name="-bad"),
    invalid_create("create-name-64", mentions="name", name="a" * 64),
    invalid_create("create-url-missing", mentions="url", url=""),
    invalid_create(
        "create-url-whitespace",
        "Webhook URL cannot be empty or just whitespace: '   '",
        url="   ",
    ),
    invalid_create(
        "create-url-scheme",
        "Invalid webhook URL scheme: 'ftp'. Allowed schemes are: http, https.",
        url="ftp://example.com/hook",
    ),
    invalid_create(
        "create-url-no-host", "Webhook URL must include a hostname: 'https://'", url="https://"
    ),
    invalid_create(
        "create-url-unparseable",
        mentions="Invalid webhook URL 'http://[invalid': ",
        url="http://[invalid",
    ),
    invalid_create("create-url-501", mentions="500", url="https://example.com/" + "a" * 481),
    invalid_create("create-events-empty", "Webhook events cannot be empty", events=[]),
    invalid_create(
        "create-entity-unspecified",
        events=[pb.WebhookEvent(entity=pb.ENTITY_UNSPECIFIED, action=pb.CREATED)],
        mentions="entity",
    ),
    invalid_create(
        "create-action-unspecified",
        events=[pb.WebhookEvent(entity=pb.MODEL_VERSION, action=pb.ACTION_UNSPECIFIED)],
        mentions="action",
    ),
    invalid_create(
        "create-invalid-pair",
        "Invalid action 'deleted' for entity 'registered_model'. Valid actions are: ['created']",
        events=[pb.WebhookEvent(entity=pb.REGISTERED_MODEL, action=pb.DELETED)],
    ),
    invalid_create("create-description-1001", mentions="1000", description="d" * 1001),
    invalid_create("create-secret-1001", mentions="1000", secret="s" * 1001),
    # get
    Case("get-existing", "getWebhook", on_existing(pb.GetWebhook), existing=True, check=stored),
    Case(
        "get-unknown",
        "getWebhook",
        lambda _: pb.GetWebhook(webhook_id=UNKNOWN_ID),
        "NOT_FOUND",
        NOT_FOUND,
    ),
    # list
    Case(
        "list-newest-first-and-pages",
        "listWebhooks",
        lambda _: pb.ListWebhooks(),
        existing=True,
        check=listed,
    ),
    Case(
        "list-max-results-0-means-default", "listWebhooks", lambda _: pb.ListWebhooks(max_results=0)
    ),
    Case("list-max-results-1000", "listWebhooks", lambda _: pb.ListWebhooks(max_results=1000)),
    Case(
        "list-max-results-1001",
        "listWebhooks",
        lambda _: pb.ListWebhooks(max_results=1001),
        "INVALID_ARGUMENT",
        mentions="max_results",
    ),
    Case(
        "list-max-results-negative",
        "listWebhooks",
        lambda _: pb.ListWebhooks(max_results=-1),
        "INVALID_ARGUMENT",
        mentions="max_results",
    ),
    Case(
        "list-bad-page-token",
        "listWebhooks",
        lambda _: pb.ListWebhooks(page_token="not a token"),
        "INVALID_ARGUMENT",
        mentions="page_token",
    ),
    # update
    Case(
        "update-name-only",
        "updateWebhook",
        on_existing(pb.UpdateWebhook, name="renamed"),
        existing=True,
        check=updated(only_name_changed),
    ),
    Case(
        "update-events-replace",
        "updateWebhook",
        on_existing(pb.UpdateWebhook, events=[RM_CREATED, TAG_SET]),
        existing=True,
        check=updated(lambda b, a: list(a.events) == [RM_CREATED, TAG_SET] or pytest.fail(a)),
    ),
    Case(
        "update-url",
        "updateWebhook",
        on_existing(pb.UpdateWebhook, url="https://example.org/x"),
        existing=True,
        check=updated(
            lambda b, a: (a.url, a.name) == ("https://example.org/x", b.name) or pytest.fail(a)
        ),
    ),
    Case(
        "update-description-empty-clears",
        "updateWebhook",
        on_existing(pb.UpdateWebhook, description=""),
        existing=True,
        check=updated(lambda b, a: not a.HasField("description") or pytest.fail(a)),
    ),
    Case(
        "update-status-disabled",
        "updateWebhook",
        on_existing(pb.UpdateWebhook, status=pb.DISABLED),
        existing=True,
        check=updated(lambda b, a: (a.status, a.name) == (pb.DISABLED, b.name) or pytest.fail(a)),
    ),
    Case(
        "update-secret-only",
        "updateWebhook",
        on_existing(pb.UpdateWebhook, secret="new"),
        existing=True,
        check=updated(
            lambda b, a: (a.name, a.url, a.events) == (b.name, b.url, b.events) or pytest.fail(a)
        ),
    ),
    Case(
        "update-bad-url-changes-nothing",
        "updateWebhook",
        on_existing(pb.UpdateWebhook, name="renamed", url="ftp://example.com"),
        existing=True,
        code="INVALID_ARGUMENT",
        message="Invalid webhook URL scheme: 'ftp'. Allowed schemes are: http, https.",
        check=unchanged("updateWebhook"),
    ),
    Case(
        "update-invalid-pair",
        "updateWebhook",
        on_existing(pb.UpdateWebhook, events=[pb.WebhookEvent(entity=pb.PROMPT, action=pb.SET)]),
        existing=True,
        code="INVALID_ARGUMENT",
        message="Invalid action 'set' for entity 'prompt'. Valid actions are: ['created']",
        check=unchanged("updateWebhook"),
    ),
    Case(
        "update-bad-name",
        "updateWebhook",
        on_existing(pb.UpdateWebhook, name="no spaces"),
        existing=True,
        code="INVALID_ARGUMENT",
        mentions="name",
        check=unchanged("updateWebhook"),
    ),
    Case(
        "update-description-1001",
        "updateWebhook",
        on_existing(pb.UpdateWebhook, description="d" * 1001),
        existing=True,
        code="INVALID_ARGUMENT",
        mentions="1000",
    ),
    Case(
        "update-unknown",
        "updateWebhook",
        lambda _: pb.UpdateWebhook(webhook_id=UNKNOWN_ID, name="x"),
        "NOT_FOUND",
        NOT_FOUND,
    ),
    # delete
    Case(
        "delete-then-everything-not-found",
        "deleteWebhook",
        on_existing(pb.DeleteWebhook),
        existing=True,
        check=gone_everywhere,
    ),
    Case(
        "delete-unknown",
        "deleteWebhook",
        lambda _: pb.DeleteWebhook(webhook_id=UNKNOWN_ID),
        "NOT_FOUND",
        NOT_FOUND,
    ),
    # test
    Case(
        "test-unknown",
        "testWebhook",
        lambda _: pb.TestWebhook(webhook_id=UNKNOWN_ID),
        "NOT_FOUND",
        NOT_FOUND,
    ),
    *LOG_CASES,
]


# ---- filters per webhook (issue 14) ------------------------------------------------------

ALIAS_CREATED = pb.WebhookEvent(entity=pb.MODEL_VERSION_ALIAS, action=pb.CREATED)


def mv_data(name: str) -> dict[str, Any]:
    return {**MV_DATA, "name": name}


def webhook_filter(**parts: list[str]) -> Request:
    return lambda ctx: dpb.SetWebhookFilter(webhook_id=ctx.id, filter=dpb.WebhookFilter(**parts))


async def set_filter(ctx: Ctx, webhook_id: str, **parts: list[str]) -> None:
    request = dpb.SetWebhookFilter(webhook_id=webhook_id, filter=dpb.WebhookFilter(**parts))
    await ctx.ok("setWebhookFilter", request)


async def each_gets_its_own(ctx: Ctx, _: Any) -> None:
    """Four webhooks to one receiver, three with filters; eight events, each matching some
    of them. Each webhook has a delivery, logged and sent, for exactly the events its
    filter takes. Names are this run's own, as the session server's other webhooks get
    these events too."""
    assert ctx.receiver is not None
    run = uuid.uuid4().hex[:8]
    fraud = await hook_at(ctx, "/ok", MV_CREATED, ALIAS_CREATED)
    await set_filter(ctx, fraud, names=[f"fraud-{run}-*"], aliases=["champion"])
    churn = await hook_at(ctx, "/ok", MV_CREATED, ALIAS_CREATED)
    await set_filter(ctx, churn, names=[f"churn-{run}", f"churn-{run}-v[0-9]"])
    owners = await hook_at(ctx, "/ok", TAG_SET)
    await set_filter(ctx, owners, names=[f"*-{run}*"], tag_keys=["owner", "team"])
    everything = await hook_at(ctx, "/ok", MV_CREATED, ALIAS_CREATED, TAG_SET)
    ours = {fraud, churn, owners, everything}
    alias = {"name": f"fraud-{run}-a", "version": "1"}
    tag = {"name": f"churn-{run}", "version": "1", "value": "x"}
    cases = [
        (MV_CREATED, mv_data(f"fraud-{run}-a"), {fraud, everything}),
        (MV_CREATED, mv_data(f"churn-{run}"), {churn, everything}),
        (MV_CREATED, mv_data(f"churn-{run}-v2"), {churn, everything}),
        (MV_CREATED, mv_data(f"churn-{run}-v22"), {everything}),
        (MV_CREATED, mv_data(f"other-{run}"), {everything}),
        (ALIAS_CREATED, {**alias, "alias": "champion"}, {fraud, everything}),
        (ALIAS_CREATED, {**alias, "alias": "staging"}, {everything}),
        (TAG_SET, {**tag, "key": "owner"}, {owners, everything}),
        (TAG_SET, {**tag, "key": "stage"}, {everything}),
    ]
    expected: dict[str, set[str]] = {hook: set() for hook in ours}  # webhook -> event ids
    sent: set[str] = set()  # delivery ids to our webhooks
    for event, data, takers in cases:
        struct = struct_pb2.Struct()
        struct.update(data)
        published = await ctx.ok("publishEvent", dpb.PublishEvent(event=event, data=struct))
        logged = await ctx.ok("listDeliveries", dpb.ListDeliveries(event_id=published.event_id))
        got = {d.webhook_id for d in logged.deliveries} & ours
        assert got == takers, (event, data)
        # The publish answers one delivery per webhook that takes the event, no more.
        assert len(published.delivery_ids) == len(logged.deliveries)
        sent |= {d.delivery_id for d in logged.deliveries if d.webhook_id in ours}
        for hook in takers:
            expected[hook].add(published.event_id)
    for hook, event_ids in expected.items():
        listed = await ctx.ok("listDeliveries", dpb.ListDeliveries(webhook_id=hook))
        assert {d.event_id for d in listed.deliveries} == event_ids
        assert len(listed.deliveries) == len(event_ids)
    for _ in range(400):  # bounded: the worker sends them a moment after the publish
        if sent <= set(ctx.receiver.delivery_ids("/ok")):
            break
        await asyncio.sleep(0.05)
    assert sent <= set(ctx.receiver.delivery_ids("/ok"))


async def filter_stored_and_cleared(ctx: Ctx, response: Any) -> None:
    assert list(response.filter.names) == ["fraud-*", "a?c[0-9]"]
    assert list(response.filter.aliases) == ["champion"]
    assert list(response.filter.tag_keys) == []
    got = await ctx.ok("getWebhookFilter", dpb.GetWebhookFilter(webhook_id=ctx.id))
    assert got.filter == response.filter
    cleared = await ctx.ok("setWebhookFilter", dpb.SetWebhookFilter(webhook_id=ctx.id))
    assert cleared.filter == dpb.WebhookFilter()
    got = await ctx.ok("getWebhookFilter", dpb.GetWebhookFilter(webhook_id=ctx.id))
    assert got.filter == dpb.WebhookFilter()


async def filter_verdict_in_test_result(ctx: Ctx, _: Any) -> None:
    """testWebhook still sends its example, and says when the filter would leave a
    published event like it out; without a filter it says nothing of the kind."""
    hook = await hook_at(ctx, "/ok")
    plain = await ctx.ok("testWebhook", pb.TestWebhook(webhook_id=hook))
    assert plain.result.success and not plain.result.error_message
    await set_filter(ctx, hook, names=["fraud-*"])
    filtered = await ctx.ok("testWebhook", pb.TestWebhook(webhook_id=hook))
    assert filtered.result.success and filtered.result.response_status == 200
    message = filtered.result.error_message
    assert "would leave a published event like this example out" in message
    assert "'example_model' matches none of the filter's names (fraud-*)" in message
    await set_filter(ctx, hook, names=["example_*"])
    taken = await ctx.ok("testWebhook", pb.TestWebhook(webhook_id=hook))
    assert taken.result.success and not taken.result.error_message


def invalid_filter(case_id: str, mentions: str, **parts: list[str]) -> Case:
    return Case(
        case_id,
        "setWebhookFilter",
        webhook_filter(**parts),
        "INVALID_ARGUMENT",
        mentions=mentions,
        existing=True,
        check=unchanged_filter,
    )


async def unchanged_filter(ctx: Ctx, _: Any) -> None:
    got = await ctx.ok("getWebhookFilter", dpb.GetWebhookFilter(webhook_id=ctx.id))
    assert got.filter == dpb.WebhookFilter()


FILTER_CASES = [
    Case(
        "filter-each-webhook-gets-its-own",
        "listEventTypes",
        lambda _: dpb.ListEventTypes(),
        check=each_gets_its_own,
    ),
    Case(
        "filter-set-get-clear",
        "setWebhookFilter",
        webhook_filter(names=["fraud-*", "a?c[0-9]"], aliases=["champion"]),
        existing=True,
        check=filter_stored_and_cleared,
    ),
    Case(
        "filter-test-webhook-says-filtered-out",
        "listEventTypes",
        lambda _: dpb.ListEventTypes(),
        check=filter_verdict_in_test_result,
    ),
    invalid_filter(
        "filter-unclosed-bracket",
        "filter.names[1] 'fraud-[ab' has a '[' that is never closed",
        names=["ok-*", "fraud-[ab"],
    ),
    invalid_filter("filter-empty-entry", "filter.aliases[0] is empty", aliases=[""]),
    invalid_filter(
        "filter-duplicate", "filter.tag_keys[1] 'owner' is given twice", tag_keys=["owner"] * 2
    ),
    invalid_filter("filter-too-long", "at most 256 are allowed", names=["a" * 257]),
    invalid_filter(
        "filter-too-many", "at most 50 are allowed", aliases=[f"a{i}" for i in range(51)]
    ),
    invalid_filter("filter-control-character", "a control character", names=["a\nb"]),
    Case(
        "filter-unknown-webhook",
        "setWebhookFilter",
        lambda _: dpb.SetWebhookFilter(webhook_id=UNKNOWN_ID),
        "NOT_FOUND",
        NOT_FOUND,
    ),
    Case(
        "filter-get-unknown-webhook",
        "getWebhookFilter",
        lambda _: dpb.GetWebhookFilter(webhook_id=UNKNOWN_ID),
        "NOT_FOUND",
        NOT_FOUND,
    ),
]
CASES += FILTER_CASES


# ---- per-webhook delivery settings (issue 14) ---------------------------------------------
# The session server runs with the default limits: 20 retries, 604800 s in all, a 60 s
# timeout, 32 in flight.


def schedule(*delays: float) -> dpb.RetrySchedule:
    return dpb.RetrySchedule(delays_seconds=delays)


def webhook_settings(**fields: Any) -> Request:
    return lambda ctx: dpb.SetWebhookSettings(
        webhook_id=ctx.id, settings=dpb.WebhookSettings(**fields)
    )


async def get_settings(ctx: Ctx) -> dpb.WebhookSettings:
    got = await ctx.ok("getWebhookSettings", dpb.GetWebhookSettings(webhook_id=ctx.id))
    return got.settings


async def settings_changed_kept_and_reset(ctx: Ctx, response: Any) -> None:
    full = dpb.WebhookSettings(
        retry_schedule=schedule(1, 2.5, 0), timeout_seconds=3, max_concurrency=4
    )
    assert response.settings == full
    assert await get_settings(ctx) == full
    # A part given replaces its stored value; the others are kept.
    one = await ctx.ok("setWebhookSettings", webhook_settings(max_concurrency=1)(ctx))
    full.max_concurrency = 1
    assert one.settings == full == await get_settings(ctx)
    nothing = await ctx.ok("setWebhookSettings", dpb.SetWebhookSettings(webhook_id=ctx.id))
    assert nothing.settings == full
    # An empty schedule and zeros put the parts back to the server's: unset.
    reset = webhook_settings(retry_schedule=schedule(), timeout_seconds=0, max_concurrency=0)
    cleared = await ctx.ok("setWebhookSettings", reset(ctx))
    assert cleared.settings == dpb.WebhookSettings() == await get_settings(ctx)


async def ordered_kept_until_turned_off(ctx: Ctx, response: Any) -> None:
    """`ordered` is a part like the others: kept while others change, unset once off."""
    assert response.settings == dpb.WebhookSettings(ordered=True) == await get_settings(ctx)
    other = await ctx.ok("setWebhookSettings", webhook_settings(max_concurrency=2)(ctx))
    assert other.settings == dpb.WebhookSettings(ordered=True, max_concurrency=2)
    off = await ctx.ok("setWebhookSettings", webhook_settings(ordered=False)(ctx))
    assert off.settings == dpb.WebhookSettings(max_concurrency=2) == await get_settings(ctx)


async def unchanged_settings(ctx: Ctx, _: Any) -> None:
    assert await get_settings(ctx) == dpb.WebhookSettings()


def invalid_settings(case_id: str, mentions: str, **fields: Any) -> Case:
    return Case(
        case_id,
        "setWebhookSettings",
        webhook_settings(**fields),
        "INVALID_ARGUMENT",
        mentions=mentions,
        existing=True,
        check=unchanged_settings,
    )


async def timeout_used_by_test_webhook(ctx: Ctx, _: Any) -> None:
    """testWebhook sends as deliveries do, with the webhook's timeout (the server's is 2 s)."""
    hook = await hook_at(ctx, "/slow")
    settings = dpb.WebhookSettings(timeout_seconds=0.25)
    await ctx.ok("setWebhookSettings", dpb.SetWebhookSettings(webhook_id=hook, settings=settings))
    tested = await ctx.ok("testWebhook", pb.TestWebhook(webhook_id=hook))
    assert not tested.result.success
    assert tested.result.error_message == "timed out after 0.25s"


SETTINGS_CASES = [
    Case(
        "settings-set-keep-reset",
        "setWebhookSettings",
        webhook_settings(retry_schedule=schedule(1, 2.5, 0), timeout_seconds=3, max_concurrency=4),
        existing=True,
        check=settings_changed_kept_and_reset,
    ),
    Case(
        "settings-test-webhook-uses-the-timeout",
        "listEventTypes",
        lambda _: dpb.ListEventTypes(),
        check=timeout_used_by_test_webhook,
    ),
    invalid_settings(
        "settings-too-many-retries",
        "settings.retry_schedule has 21 delays; this server allows at most 20 retries "
        "(--max-retries).",
        retry_schedule=schedule(*[1] * 21),
    ),
    invalid_settings(
        "settings-schedule-too-long",
        "settings.retry_schedule adds up to 604801 seconds; this server allows at most 604800 "
        "(--max-retry-window).",
        retry_schedule=schedule(604800, 1),
    ),
    invalid_settings(
        "settings-negative-delay",
        "settings.retry_schedule.delays_seconds[1] is -5; each delay is a number of seconds, "
        "0 or more.",
        retry_schedule=schedule(1, -5),
    ),
    invalid_settings(
        "settings-negative-timeout",
        "settings.timeout_seconds is -1; it must be a positive number of seconds (0: the "
        "server's, --delivery-timeout).",
        timeout_seconds=-1,
    ),
    invalid_settings(
        "settings-timeout-over-limit",
        "settings.timeout_seconds is 61; this server allows at most 60 (--max-delivery-timeout).",
        timeout_seconds=61,
    ),
    invalid_settings(
        "settings-negative-concurrency",
        "settings.max_concurrency is -1; it must be 1 to 32 (--max-webhook-concurrency), or 0 "
        "for the server's, 32.",
        max_concurrency=-1,
    ),
    # One bad part refuses the whole call: the good parts are not stored either.
    invalid_settings(
        "settings-concurrency-over-limit",
        "settings.max_concurrency is 33; it must be 1 to 32 (--max-webhook-concurrency)",
        retry_schedule=schedule(1),
        timeout_seconds=5,
        max_concurrency=33,
    ),
    Case(
        "settings-unknown-webhook",
        "setWebhookSettings",
        lambda _: dpb.SetWebhookSettings(webhook_id=UNKNOWN_ID),
        "NOT_FOUND",
        NOT_FOUND,
    ),
    Case(
        "settings-get-unknown-webhook",
        "getWebhookSettings",
        lambda _: dpb.GetWebhookSettings(webhook_id=UNKNOWN_ID),
        "NOT_FOUND",
        NOT_FOUND,
    ),
    Case(
        "settings-ordered-kept-beside-the-other-parts",
        "setWebhookSettings",
        webhook_settings(ordered=True),
        existing=True,
        check=ordered_kept_until_turned_off,
    ),
]
CASES += SETTINGS_CASES


# ---- secret rotation (issue 14) ------------------------------------------------------------
# What the receiver sees during and after the window: tests/test_rotation.py.


def rotate(**fields: Any) -> Request:
    return lambda ctx: dpb.RotateWebhookSecret(webhook_id=ctx.id, **fields)


def rotated(overlap_ms: int | None, generated: bool) -> Check:
    """The answer: the webhook as stored, the secret only when generated, and the window's
    end `overlap_ms` after the call (bounded by the test's clock before and after it)."""
    before = now_ms()

    async def check(ctx: Ctx, response: Any) -> None:
        after = now_ms()
        assert ctx.webhook is not None
        assert response.webhook.webhook_id == ctx.id
        assert response.webhook.last_updated_timestamp > ctx.webhook.last_updated_timestamp
        await stored(ctx, response)
        assert response.HasField("secret") == generated
        if generated:
            # 32 random bytes, URL-safe base64 without padding.
            assert re.fullmatch(r"[A-Za-z0-9_-]{43}", response.secret), response.secret
        health = await ctx.ok("getWebhookHealth", dpb.GetWebhookHealth(webhook_ids=[ctx.id]))
        [state] = health.webhooks
        if overlap_ms is None:
            assert not response.HasField("previous_secret_expires_timestamp")
            assert not state.HasField("previous_secret_expires_timestamp")
        else:
            expires = response.previous_secret_expires_timestamp
            assert before + overlap_ms <= expires <= after + overlap_ms
            # getWebhookHealth tells of the window while it lasts.
            assert state.previous_secret_expires_timestamp == expires

    return check


def invalid_rotation(case_id: str, message: str, **fields: Any) -> Case:
    return Case(
        case_id,
        "rotateWebhookSecret",
        rotate(**fields),
        "INVALID_ARGUMENT",
        message,
        existing=True,
        check=unchanged("rotateWebhookSecret"),
    )


def rotation_cases() -> list[Case]:
    """Made per test run (the checks take the time the case starts)."""
    return [
        Case(
            "rotate-to-a-given-secret",
            "rotateWebhookSecret",
            rotate(secret="after", overlap_seconds=60),
            existing=True,
            check=rotated(60_000, generated=False),
        ),
        Case(
            "rotate-to-a-generated-secret-24h-by-default",
            "rotateWebhookSecret",
            rotate(),
            existing=True,
            check=rotated(86_400_000, generated=True),
        ),
        Case(
            "rotate-without-overlap",
            "rotateWebhookSecret",
            rotate(secret="after", overlap_seconds=0),
            existing=True,
            check=rotated(None, generated=False),
        ),
        invalid_rotation(
            "rotate-overlap-negative",
            "overlap_seconds must be between 0 and 604800 (7 days), got -1; leave it out for "
            "86400 (24 hours).",
            overlap_seconds=-1,
        ),
        invalid_rotation(
            "rotate-overlap-over-a-week",
            "overlap_seconds must be between 0 and 604800 (7 days), got 604801; leave it out "
            "for 86400 (24 hours).",
            overlap_seconds=604801,
        ),
        invalid_rotation(
            "rotate-to-the-current-secret",
            "The new secret is the webhook's current secret: give a different one, or leave "
            "secret out to have one generated.",
            secret="before",
        ),
        invalid_rotation(
            "rotate-secret-too-long",
            "Webhook secret is 1001 characters; at most 1000 are allowed.",
            secret="s" * 1001,
        ),
        Case(
            "rotate-unknown-webhook",
            "rotateWebhookSecret",
            lambda _: dpb.RotateWebhookSecret(webhook_id=UNKNOWN_ID, secret="x"),
            "NOT_FOUND",
            NOT_FOUND,
        ),
    ]


ROTATION_IDS = [c.id for c in rotation_cases()]


@pytest.fixture(scope="session")
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


@pytest.fixture(
    params=["grpc", *PREFIXES], ids=["grpc", *(f"rest{p or '-bare'}" for p in PREFIXES)]
)
def transport(request, channel, http_session, server):
    if request.param == "grpc":
        return GrpcTransport(channel)
    return RestTransport(http_session, server.http_url, request.param)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_case(case: Case, transport, receiver):
    await run_case(case, transport, receiver)


@pytest.mark.parametrize("case_id", ROTATION_IDS)
async def test_rotation_case(case_id: str, transport, receiver):
    [case] = [c for c in rotation_cases() if c.id == case_id]
    await run_case(case, transport, receiver)


async def run_case(case: Case, transport, receiver) -> None:
    ctx = Ctx(transport.call, receiver.url, receiver=receiver)
    if case.existing:
        made = await ctx.ok(
            "createWebhook",
            pb.CreateWebhook(
                name="existing",
                url="https://example.com/existing",
                events=[MV_CREATED],
                description="before",
                secret="before",
            ),
        )
        ctx.webhook = made.webhook
    code, response = await transport.call(case.rpc, case.request(ctx))
    assert code == case.code, response
    if case.code != "OK":
        if case.message is not None:
            expected = case.message.replace("{id}", ctx.id if ctx.webhook else "")
            assert response == expected
        if case.mentions is not None:
            assert case.mentions in response
    if case.check is not None:
        result = case.check(ctx, response)
        if inspect.isawaitable(result):
            await result


@pytest.mark.parametrize(
    ("path", "success", "status"), [("/ok", True, 200), ("/status/404", False, 404)]
)
async def test_test_webhook_reaches_receiver(transport, receiver, path, success, status):
    ctx = Ctx(transport.call, receiver.url)
    made = await ctx.ok("createWebhook", with_receiver(path)(ctx))
    before = len(receiver.received)
    result = await ctx.ok("testWebhook", pb.TestWebhook(webhook_id=made.webhook.webhook_id))
    answered(status, success)(ctx, result)
    arrived = await receiver.wait_for(before + 1)
    assert any(r.path == path for r in arrived[before:])

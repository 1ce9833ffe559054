"""Section 9: the web console's first page with 1,000 webhooks and 100,000 deliveries: the
time from navigating to /ui/ until the list is rendered, in Debian's headless chromium, beside
the REST calls the page makes (one page of listWebhooks, one getWebhookHealth for its ids)."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
import uuid
from typing import Any

from bench import load
from bench.common import Context, start_server, wait_idle
from bench.report import Row

CONSOLE = "9. Console"
PAGE = 100  # what /ui/ asks for: one page of webhooks, and their health in one call
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
RENDERED = 'main[data-page="webhooks"][aria-busy="false"]'


def build(database: str, webhooks: int, deliveries: int) -> float:
    """Webhooks subscribed to model_version.created and events fanned out to every one of
    them, spread over the last 22 hours: 9 in 10 deliveries SUCCEEDED at the first attempt,
    1 in 10 FAILED after a 500. Written through the server's store models into the SQLite
    file before the server starts; the seconds it took."""
    import peewee as pw

    from mlflow_webhooks.generated import webhooks_pb2 as pb
    from mlflow_webhooks.server.store import DeliveryStatus, Store, now_ms
    from mlflow_webhooks.server.store import models as m

    started = time.perf_counter()
    store = Store(f"sqlite:///{database}", None)
    store.open()
    now = now_ms()
    hook_ids = [str(uuid.uuid4()) for _ in range(webhooks)]
    events = max(1, deliveries // webhooks)
    with store.db.atomic():
        for chunk in pw.chunked(list(enumerate(hook_ids)), 1000):
            m.Webhook.insert_many(
                [
                    {
                        "id": hook_id,
                        "name": f"hook-{i}",
                        "url": load.CREATE_URL,
                        "description": "a webhook of the size the bench creates",
                        "secret_token": None,
                        "status": pb.ACTIVE,
                        "creation_timestamp": now - 86_400_000 + i,
                        "last_updated_timestamp": now - 86_400_000 + i,
                    }
                    for i, hook_id in chunk
                ]
            ).execute()
            m.Subscription.insert_many(
                [
                    {"webhook": h, "entity": pb.MODEL_VERSION, "action": pb.CREATED, "position": 0}
                    for _, h in chunk
                ]
            ).execute()
        for e in range(events):
            at = now - (e + 1) * (22 * 3_600_000 // events)
            event_id = str(uuid.uuid4())
            m.Event.insert(
                id=event_id,
                entity=pb.MODEL_VERSION,
                action=pb.CREATED,
                data=json.dumps(
                    {
                        "name": "m",
                        "version": str(e),
                        "source": "s",
                        "run_id": None,
                        "tags": {},
                        "description": None,
                    }
                ),
                occurred_at="2026-01-01T00:00:00+00:00",
                creation_timestamp=at,
            ).execute()
            rows = []
            for i, hook_id in enumerate(hook_ids):
                failed = (i + e) % 10 == 0
                rows.append(
                    (
                        str(uuid.uuid4()),
                        hook_id,
                        DeliveryStatus.FAILED if failed else DeliveryStatus.SUCCEEDED,
                        500 if failed else 200,
                    )
                )
            for part in pw.chunked(rows, 1000):
                m.Delivery.insert_many(
                    [
                        {
                            "id": d,
                            "event": event_id,
                            "webhook_id": h,
                            "status": status,
                            "attempt_count": 1,
                            "creation_timestamp": at,
                        }
                        for d, h, status, _ in part
                    ]
                ).execute()
                m.Attempt.insert_many(
                    [
                        {
                            "delivery": d,
                            "number": 1,
                            "timestamp": at + 5,
                            "duration_ms": 5,
                            "response_status": code,
                            "response_body": "ok" if code == 200 else "busy",
                            "error": None if code == 200 else "receiver answered HTTP 500",
                        }
                        for d, _, _, code in part
                    ]
                ).execute()
    store.close()
    return time.perf_counter() - started


def page_loads(base: str, repeats: int) -> tuple[list[float], list[tuple[str, float]]]:
    """Loads /ui/ `repeats` times after one warm-up load, in one browser tab (so the assets
    are revalidated, as on an operator's reload); the ms from navigation to the rendered list
    of each, and the API requests of the last load with their durations."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(60_000)
            loads: list[float] = []
            for i in range(repeats + 1):
                started = time.perf_counter()
                page.goto(base + "/ui/")
                page.wait_for_selector(RENDERED)
                if i:
                    loads.append((time.perf_counter() - started) * 1000)
                rows = page.locator("#webhooks tbody tr").count()
                if rows != PAGE:
                    raise RuntimeError(f"/ui/ rendered {rows} webhooks, not {PAGE}")
            calls = page.evaluate(
                "performance.getEntriesByType('resource')"
                ".filter(e => e.name.includes('/api/'))"
                ".map(e => [new URL(e.name).pathname, e.duration])"
            )
        finally:
            browser.close()
    return loads, [(name, float(ms)) for name, ms in calls]


def rest_calls(base: str, repeats: int) -> tuple[list[float], list[float]]:
    """The page's two calls made directly, one at a time: ms of each, `repeats` times."""

    def timed(url: str) -> tuple[float, Any]:
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - loopback
            body = json.loads(response.read())
        return (time.perf_counter() - started) * 1000, body

    api = base + "/api/2.0/mlflow"
    _, first = timed(f"{api}/webhooks?max_results={PAGE}")
    ids = "&".join(f"webhook_ids={w['webhook_id']}" for w in first["webhooks"])
    timed(f"{api}/webhook-health?{ids}")
    list_ms: list[float] = []
    health_ms: list[float] = []
    for _ in range(repeats):
        list_ms.append(timed(f"{api}/webhooks?max_results={PAGE}")[0])
        ms, health = timed(f"{api}/webhook-health?{ids}")
        health_ms.append(ms)
        if len(health["webhooks"]) != PAGE:
            raise RuntimeError(f"health answered {len(health['webhooks'])} webhooks")
    return list_ms, health_ms


def console_first_page(ctx: Context) -> None:
    s = ctx.settings
    workdir = ctx.subdir("console")
    database = workdir / "webhooks.db"
    built = ctx.run(build, str(database), s.console_webhooks, s.console_deliveries)
    server = start_server(workdir, database=database)
    try:
        wait_idle(server.pid, 10.0)
        list_ms, health_ms = ctx.run(rest_calls, server.http_url, s.console_loads)
        loads, calls = ctx.run(page_loads, server.http_url, s.console_loads)
    finally:
        server.stop()
    scale = f"{s.console_webhooks:,} webhooks, {s.console_deliveries:,} deliveries"
    ctx.add(
        Row(
            CONSOLE,
            f"/ui/ to the rendered list ({scale})",
            "ms",
            loads,
            [a + b for a, b in zip(list_ms, health_ms, strict=True)],
            "its 2 REST calls in a row",
        )
    )
    ctx.add(Row(CONSOLE, f"listWebhooks, a page of {PAGE} (REST)", "ms", list_ms, [], ""))
    ctx.add(Row(CONSOLE, f"getWebhookHealth of {PAGE} webhooks (REST)", "ms", health_ms, [], ""))
    seen = ", ".join(f"`{name}` {ms:.1f} ms" for name, ms in calls)
    ctx.note(
        CONSOLE,
        f"{scale} ({s.console_deliveries // max(1, s.console_webhooks)} events fanned out to "
        f"every webhook over the last 22 hours, 1 delivery in 10 FAILED) written through "
        f"server.store's models into the SQLite file before the server starts ({built:.1f} s). "
        f"Figure: Debian's headless chromium (Playwright) loads /ui/ {s.console_loads} times "
        "in one tab after a warm-up load; from navigation until the table of the first page "
        f"of {PAGE} webhooks with their health is rendered. Ceiling column: the page's two "
        "REST calls made directly, one after the other (listWebhooks max_results=100, then "
        f"getWebhookHealth for those ids), {s.console_loads} times. The requests the page "
        f"made on its last load (resource timing): {seen or 'none seen'}. The page never "
        "loads the whole table: one page of webhooks, their health in one call.",
    )

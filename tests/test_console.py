"""The web console (/ui/) in real headless Chromium (Debian's, driven by Playwright), against
the real server and real receivers; and its HTTP route: assets, headers, auth.

Set WEBHOOKS_CONSOLE_SCREENSHOTS=1 to write the screenshots docs/console.md shows into docs/
(they are written to a temporary directory otherwise, so the code that takes them runs
every time)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from playwright.async_api import async_playwright, expect
from standardwebhooks.webhooks import Webhook as StandardWebhook

from tests.support import ROOT, Receiver, ServerProcess, own_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TOKEN = "console-test-token"
MV_CREATED = {"entity": "MODEL_VERSION", "action": "CREATED"}
MV_DATA = {
    "name": "fraud-model",
    "version": "7",
    "source": "s3://models/fraud/7",
    "run_id": "4f2c0a7e9b1d",
    "tags": {"team": "risk"},
    "description": "Retrained on November data",
}
SHOTS = ROOT / "docs" if os.environ.get("WEBHOOKS_CONSOLE_SCREENSHOTS") == "1" else None


# ---- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    """One headless Chromium for every console test."""
    if not Path(CHROMIUM).exists():
        problem = "chromium is not installed (make test installs it with apt-get)"
        if os.environ.get("CI") == "true":
            pytest.fail(problem + " (CI=true: the console tests must run)")
        pytest.skip(problem)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--no-first-run",
            ],
        )
        yield launched
        await launched.close()


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # One quick retry, so a receiver answering 500 makes a FAILED delivery within a second.
    proc = own_server(
        tmp_path_factory.mktemp("console"), "--retry-schedule", "0.2", "--delivery-timeout", "3"
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = own_server(tmp_path_factory.mktemp("console-token"), "--auth-token", TOKEN)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
async def console_receiver() -> AsyncIterator[Receiver]:
    rec = await Receiver().start()
    yield rec
    await rec.stop()


class Rest:
    """The public REST API, as the test sets things up through it."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str | None = None):
        self._session = session
        self._base = base + "/api/2.0/mlflow"
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        async with self._session.request(
            method, self._base + path, json=body, params=query or None, headers=self._headers
        ) as response:
            answer = await response.json()
            assert response.status == 200, answer
            return answer

    async def webhook(self, name: str, url: str, **fields: Any) -> str:
        body = {"name": name, "url": url, "events": [MV_CREATED], **fields}
        return (await self.call("POST", "/webhooks", body))["webhook"]["webhook_id"]

    async def publish(self) -> list[str]:
        body = {"event": MV_CREATED, "data": MV_DATA}
        return (await self.call("POST", "/webhook-events", body))["delivery_ids"]

    async def settled(self, delivery_id: str, attempts: int = 1) -> dict[str, Any]:
        """The delivery once `attempts` are recorded and it is no longer PENDING; bounded."""
        for _ in range(400):
            got = (await self.call("GET", f"/webhook-deliveries/{delivery_id}"))["delivery"]
            if got.get("attempt_count", 0) >= attempts and got["status"] != "PENDING":
                return got
            await asyncio.sleep(0.05)
        pytest.fail(f"delivery {delivery_id} did not settle: {got}")


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


@pytest.fixture(scope="module")
async def world(
    console_server: ServerProcess, console_receiver: Receiver, http: aiohttp.ClientSession
) -> dict[str, Any]:
    """Webhooks in every state, set up through the API: one healthy, one failing (500), one
    the service disabled (410), one disabled by hand; one event delivered to all of them."""
    rest = Rest(http, console_server.http_url)
    base = console_receiver.url
    ids = {
        "healthy": await rest.webhook("deploy-notifier", base + "/ok", description="Tells CD"),
        "failing": await rest.webhook("audit-log", base + "/status/500"),
        "gone": await rest.webhook("legacy-slack", base + "/status/410"),
    }
    ids["paused"] = await rest.webhook("staging-hook", base + "/ok", status="DISABLED")
    delivered = await rest.publish()
    settled = {d["webhook_id"]: d for d in [await rest.settled(i) for i in delivered]}
    return {"rest": rest, "ids": ids, "deliveries": settled, "receiver_url": base}


class Page:
    """A browser tab that records every URL it requests."""

    def __init__(self, page: Any, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.requested: list[str] = []
        page.on("request", lambda request: self.requested.append(request.url))

    async def open(self, path: str, name: str) -> None:
        await self.page.goto(self.origin + path)
        await self.loaded(name)

    async def loaded(self, name: str) -> None:
        await self.page.wait_for_selector(f'main[data-page="{name}"][aria-busy="false"]')

    async def reload(self, name: str) -> None:
        await self.page.reload()
        await self.loaded(name)

    def assert_same_origin(self) -> None:
        assert self.requested
        elsewhere = [u for u in self.requested if _origin(u) != _origin(self.origin)]
        assert not elsewhere, elsewhere

    async def shot(self, name: str, directory: Path) -> None:
        await self.page.screenshot(path=str((SHOTS or directory) / name), full_page=True)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


@pytest.fixture
async def tab(browser: Any, console_server: ServerProcess) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    page = Page(await context.new_page(), console_server.http_url)
    yield page
    await context.close()
    page.assert_same_origin()


# ---- the pages -----------------------------------------------------------------------------


async def test_webhooks_page_shows_health_by_url_and_after_reload(
    tab: Page, world: dict[str, Any], tmp_path: Path
) -> None:
    ids = world["ids"]
    await tab.open("/ui/", "webhooks")
    for attempt in ("first load", "reload"):
        rows = tab.page.locator("#webhooks tbody tr")
        assert await rows.count() == 4, attempt
        failing = tab.page.locator(f'tr[data-webhook-id="{ids["failing"]}"]')
        assert "audit-log" in await failing.inner_text()
        assert await failing.locator(".count").inner_text() == "1"
        assert await failing.locator('[data-status="FAILED"]').count() == 1
        gone = tab.page.locator(f'tr[data-webhook-id="{ids["gone"]}"]')
        assert await gone.locator('[data-status="DISABLED"]').count() == 1
        assert "410 Gone" in await gone.locator(".reason").inner_text()
        healthy = tab.page.locator(f'tr[data-webhook-id="{ids["healthy"]}"]')
        assert await healthy.locator('[data-status="SUCCEEDED"]').count() == 1
        assert await healthy.locator(".count").inner_text() == "0"
        assert "127.0.0.1:" in await healthy.inner_text()  # the receiver's host
        assert "model_version.created" in await healthy.inner_text()
        assert "2 failing" in await tab.page.locator("#summary").inner_text()
        if attempt == "first load":
            await tab.shot("console-webhooks.png", tmp_path)
            await tab.reload("webhooks")


async def test_webhook_page_lists_and_filters_deliveries(
    tab: Page, world: dict[str, Any], tmp_path: Path
) -> None:
    rest: Rest = world["rest"]
    failing = world["ids"]["failing"]
    # A second, successful delivery: the receiver is fixed, then the event published again.
    first = world["deliveries"][failing]  # FAILED
    receiver = world["receiver_url"]
    await rest.call("PATCH", f"/webhooks/{failing}", {"url": receiver + "/ok"})
    newer = await rest.publish()
    for delivery_id in newer:
        await rest.settled(delivery_id)
    await rest.call("PATCH", f"/webhooks/{failing}", {"url": receiver + "/status/500"})

    await tab.open(f"/ui/webhooks/{failing}", "webhook")
    rows = tab.page.locator("#deliveries tbody tr")
    assert await rows.count() == 2
    first_row = await rows.nth(0).get_attribute("data-delivery-id")
    assert first_row in newer  # newest first
    assert await tab.page.locator("svg.chart rect.bad").count() >= 1
    assert "1 of 2 deliveries" in await tab.page.locator("#failures-24h").inner_text()
    await tab.shot("console-webhook.png", tmp_path)

    await tab.page.select_option("#status-filter", "FAILED")
    await tab.page.wait_for_url(f"**/ui/webhooks/{failing}?status=FAILED")
    await tab.loaded("webhook")
    for _ in ("filtered", "after reload"):
        rows = tab.page.locator("#deliveries tbody tr")
        assert await rows.count() == 1
        assert await rows.nth(0).get_attribute("data-delivery-id") == first["delivery_id"]
        assert "500" in await rows.nth(0).inner_text()
        await tab.reload("webhook")


async def test_delivery_page_and_redeliver_click(
    tab: Page, world: dict[str, Any], console_receiver: Receiver, tmp_path: Path
) -> None:
    failed = world["deliveries"][world["ids"]["gone"]]
    delivery_id = failed["delivery_id"]
    await tab.open(f"/ui/deliveries/{delivery_id}", "delivery")
    payload = await tab.page.locator("#payload").inner_text()
    assert '"name": "fraud-model"' in payload and '"entity": "model_version"' in payload
    assert await tab.page.locator("#attempts tbody tr").count() == 1
    assert "410" in await tab.page.locator("#attempts tbody tr").first.inner_text()
    await tab.shot("console-delivery.png", tmp_path)

    before = len(console_receiver.received)
    await tab.page.click("#redeliver")
    arrived = await console_receiver.wait_for(before + 1)
    assert delivery_id in [r.headers["webhook-id"] for r in arrived[before:]]
    # expect() polls by selector: the page's CSP (rightly) refuses wait_for_function's eval.
    await expect(tab.page.locator("#attempts tbody tr")).to_have_count(2)
    await tab.loaded("delivery")
    newest = tab.page.locator("#attempts tbody tr").first
    assert await newest.get_attribute("data-attempt") == "2"
    await tab.reload("delivery")
    assert await tab.page.locator("#attempts tbody tr").count() == 2


async def test_forms_create_and_edit_a_webhook(
    tab: Page, world: dict[str, Any], tmp_path: Path
) -> None:
    rest: Rest = world["rest"]
    await tab.open("/ui/", "webhooks")
    await tab.page.click("#new-webhook")
    await tab.page.wait_for_selector("#webhook-form[open]")
    await tab.page.fill("#wh-name", "made-in-browser")
    await tab.page.fill("#wh-url", world["receiver_url"] + "/ok")
    await tab.page.check('input[name=events][value="MODEL_VERSION_TAG.SET"]')
    await tab.page.check('input[name=events][value="PROMPT.CREATED"]')
    await tab.page.fill("#wh-description", "from the console")
    await tab.shot("console-create.png", tmp_path)
    await tab.page.click("#webhook-form button[type=submit]")
    await tab.page.wait_for_url("**/ui/webhooks/*")
    await tab.loaded("webhook")
    webhook_id = tab.page.url.rsplit("/", 1)[1]
    made = (await rest.call("GET", f"/webhooks/{webhook_id}"))["webhook"]
    assert (made["name"], made["description"]) == ("made-in-browser", "from the console")
    assert made["events"] == [
        {"entity": "MODEL_VERSION_TAG", "action": "SET"},
        {"entity": "PROMPT", "action": "CREATED"},
    ]

    await tab.page.click("#edit")
    await tab.page.wait_for_selector("#webhook-form[open]")
    await tab.page.fill("#wh-name", "renamed-in-browser")
    await tab.page.uncheck('input[name=events][value="PROMPT.CREATED"]')
    await tab.page.click("#webhook-form button[type=submit]")
    await expect(tab.page.locator("h1")).to_contain_text("renamed-in-browser")
    edited = (await rest.call("GET", f"/webhooks/{webhook_id}"))["webhook"]
    assert edited["name"] == "renamed-in-browser"
    assert edited["events"] == [{"entity": "MODEL_VERSION_TAG", "action": "SET"}]

    # A refusal is shown as the API words it, and nothing changes.
    await tab.page.click("#edit")
    await tab.page.fill("#wh-name", "no spaces allowed")
    await tab.page.click("#webhook-form button[type=submit]")
    alert = tab.page.locator("#webhook-form [role=alert]")
    await alert.wait_for()
    assert "name" in (await alert.inner_text()).lower()
    assert (await rest.call("GET", f"/webhooks/{webhook_id}"))["webhook"]["name"] == (
        "renamed-in-browser"
    )


async def test_disable_and_delete_from_the_webhook_page(tab: Page, world: dict[str, Any]) -> None:
    rest: Rest = world["rest"]
    webhook_id = await rest.webhook("short-lived", world["receiver_url"] + "/ok")
    await tab.open(f"/ui/webhooks/{webhook_id}", "webhook")
    await tab.page.click("#toggle-status")
    await tab.page.wait_for_selector('h1 [data-status="DISABLED"]')
    got = (await rest.call("GET", f"/webhooks/{webhook_id}"))["webhook"]
    assert got["status"] == "DISABLED"
    tab.page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await tab.page.click("#delete")
    await tab.page.wait_for_url(tab.origin + "/ui/")
    await tab.loaded("webhooks")
    assert await tab.page.locator(f'tr[data-webhook-id="{webhook_id}"]').count() == 0


async def test_ordered_delivery_on_the_webhook_page(tab: Page, world: dict[str, Any]) -> None:
    """An ordered webhook's second delivery shows as waiting its turn while the first waits
    for a retry; unticking the box lets it go."""
    rest: Rest = world["rest"]
    alias = {"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"}
    # The receiver asks for a retry in 600 s: the first keeps its turn all test long.
    url = world["receiver_url"] + "/retry-after/600"
    webhook_id = await rest.webhook("champion-moves", url, events=[alias])
    await rest.call("POST", f"/webhooks/{webhook_id}/settings", {"settings": {"ordered": True}})
    ids = []
    for version in ("3", "4"):
        body = {"event": alias, "data": {"name": "churn", "alias": "champion", "version": version}}
        ids += (await rest.call("POST", "/webhook-events", body))["delivery_ids"]
    for _ in range(400):  # bounded: the first attempt goes a moment after the publish
        first = (await rest.call("GET", f"/webhook-deliveries/{ids[0]}"))["delivery"]
        if first.get("attempt_count"):
            break
        await asyncio.sleep(0.05)
    await tab.open(f"/ui/webhooks/{webhook_id}", "webhook")
    assert await tab.page.is_checked("#settings-ordered")
    waiting = tab.page.locator(f'tr[data-delivery-id="{ids[1]}"]')
    await expect(waiting).to_contain_text("waiting its turn")
    await expect(tab.page.locator(f'tr[data-delivery-id="{ids[0]}"]')).not_to_contain_text(
        "waiting its turn"
    )

    await tab.page.uncheck("#settings-ordered")
    await tab.page.click("#save-settings")
    await tab.loaded("webhook")
    await expect(tab.page.locator(".flash.ok")).to_contain_text("Settings saved")
    assert not await tab.page.is_checked("#settings-ordered")
    settings = await rest.call("GET", f"/webhooks/{webhook_id}/settings")
    assert settings == {"settings": {}}
    second = (await rest.call("GET", f"/webhook-deliveries/{ids[1]}"))["delivery"]
    assert "next_attempt_timestamp" in second or second["status"] != "PENDING"


async def test_send_test_from_the_webhook_page(
    tab: Page, world: dict[str, Any], console_receiver: Receiver
) -> None:
    healthy = world["ids"]["healthy"]
    await tab.open(f"/ui/webhooks/{healthy}", "webhook")
    await tab.page.click("#test")
    before = len(console_receiver.received)
    await tab.page.click("#send-test")
    result = tab.page.locator("#test-result .flash")
    await expect(result).to_contain_text("Delivered")
    assert "200" in await result.inner_text()
    arrived = await console_receiver.wait_for(before + 1)
    assert json.loads(arrived[before].body)["entity"] == "model_version"


async def test_rotate_the_secret_from_the_webhook_page(
    tab: Page, world: dict[str, Any], console_receiver: Receiver
) -> None:
    """A generated secret, shown once in the dialog; the test send after it is signed with
    both the old and the new secret."""
    rest: Rest = world["rest"]
    url = world["receiver_url"] + "/ok/rotated"
    webhook_id = await rest.webhook("rotated-in-console", url, secret="console-old")
    await tab.open(f"/ui/webhooks/{webhook_id}", "webhook")
    await tab.page.click("#rotate-secret")
    await tab.page.fill("#rotate-overlap-hours", "2")
    await tab.page.click("#rotate-submit")
    await expect(tab.page.locator("#rotate-result .flash")).to_contain_text(
        "The old secret signs deliveries too until"
    )
    generated = await tab.page.locator("#rotate-generated").input_value()
    assert len(generated) == 43
    before = len(console_receiver.received)
    await rest.call("POST", f"/webhooks/{webhook_id}/test", {})
    sent = (await console_receiver.wait_for(before + 1))[before]
    assert sent.path == "/ok/rotated"
    headers = {k.lower(): v for k, v in sent.headers.items()}
    for secret in ("console-old", generated):
        verifier = StandardWebhook("whsec_" + base64.b64encode(secret.encode()).decode())
        verifier.verify(sent.body, headers)  # raises unless one of the signatures is this one's
    await tab.page.click("#rotate-dialog button[type=button]")
    await tab.loaded("webhook")
    assert generated not in await tab.page.content()  # shown that once
    # The page says, from getWebhookHealth, until when the old secret signs.
    window = tab.page.locator("#rotation-window")
    await expect(window).to_contain_text("the old secret signs deliveries too until")


async def test_redeliver_all_failed_since(
    tab: Page, world: dict[str, Any], console_receiver: Receiver
) -> None:
    failing = world["ids"]["failing"]
    await tab.open(f"/ui/webhooks/{failing}", "webhook")
    before = len(console_receiver.received)
    await tab.page.click("#redeliver-failed")
    result = tab.page.locator("#redeliver-result")
    await result.locator("text=Sent").wait_for()
    text = await result.inner_text()
    assert "Sent 1 again: 0 succeeded, 1 failed." in text
    arrived = await console_receiver.wait_for(before + 1)
    assert any(r.path == "/status/500" for r in arrived[before:])


async def test_delivery_settings_from_the_webhook_page(
    tab: Page, world: dict[str, Any], console_server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    rest = Rest(http, console_server.http_url)
    hook = await rest.webhook("paced-hook", world["receiver_url"] + "/ok")
    await tab.open(f"/ui/webhooks/{hook}", "webhook")
    await tab.page.fill("#settings-retry-schedule", "10, 60,600")
    await tab.page.fill("#settings-timeout", "2.5")
    await tab.page.click("#save-settings")
    await tab.loaded("webhook")
    await expect(tab.page.locator(".flash.ok")).to_contain_text("Settings saved")
    stored = (await rest.call("GET", f"/webhooks/{hook}/settings"))["settings"]
    assert stored == {"retry_schedule": {"delays_seconds": [10, 60, 600]}, "timeout_seconds": 2.5}
    await expect(tab.page.locator("#settings-retry-schedule")).to_have_value("10,60,600")
    # Over the server's limit: its message, and nothing changed.
    await tab.page.fill("#settings-max-concurrency", "100")
    await tab.page.click("#save-settings")
    await expect(tab.page.locator("#settings-result")).to_contain_text(
        "settings.max_concurrency is 100; it must be 1 to 32 (--max-webhook-concurrency)"
    )
    assert (await rest.call("GET", f"/webhooks/{hook}/settings"))["settings"] == stored
    # Emptied fields go back to the server's.
    for field in ("#settings-retry-schedule", "#settings-timeout", "#settings-max-concurrency"):
        await tab.page.fill(field, "")
    await tab.page.click("#save-settings")
    await tab.loaded("webhook")
    await expect(tab.page.locator("#settings-timeout")).to_have_value("")
    assert (await rest.call("GET", f"/webhooks/{hook}/settings"))["settings"] == {}
    await rest.call("DELETE", f"/webhooks/{hook}")


async def test_unknown_page_and_unknown_delivery(tab: Page, world: dict[str, Any]) -> None:
    await tab.open("/ui/deliveries/00000000-0000-4000-8000-000000000000", "error")
    assert "not found" in (await tab.page.locator("main").inner_text()).lower()


# ---- with --auth-token ---------------------------------------------------------------------


async def test_token_is_asked_for_and_kept_in_session_storage_only(
    browser: Any, token_server: ServerProcess, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    rest = Rest(http, token_server.http_url, TOKEN)
    await rest.webhook("secret-project-hook", "https://example.com/hook")
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    tab = Page(await context.new_page(), token_server.http_url)
    try:
        await tab.open("/ui/", "login")
        assert "secret-project-hook" not in await tab.page.content()
        assert await tab.page.locator("#webhooks").count() == 0
        await tab.shot("console-login.png", tmp_path)

        await tab.page.fill("#token", "wrong")
        await tab.page.click("form.login button[type=submit]")
        await tab.loaded("login")
        assert "not accepted" in await tab.page.locator("main").inner_text()
        assert "secret-project-hook" not in await tab.page.content()

        await tab.page.fill("#token", TOKEN)
        await tab.page.click("form.login button[type=submit]")
        await tab.loaded("webhooks")
        assert "secret-project-hook" in await tab.page.locator("#webhooks").inner_text()
        stored = await tab.page.evaluate(
            "[sessionStorage.length, localStorage.length, document.cookie]"
        )
        assert stored == [1, 0, ""]
        await tab.reload("webhooks")  # the session keeps it across a reload
        await tab.page.click("#sign-out")
        await tab.loaded("login")
        assert await tab.page.evaluate("sessionStorage.length") == 0
    finally:
        await context.close()
    tab.assert_same_origin()


# ---- the route itself ----------------------------------------------------------------------


async def test_assets_and_headers(token_server: ServerProcess, http: aiohttp.ClientSession) -> None:
    """Pages and assets need no token (they hold no data); the API behind them still does."""
    base = token_server.http_url
    for path in ("/ui/", "/ui/webhooks/x", "/ui/deliveries/y"):
        async with http.get(base + path) as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
            assert "connect-src 'self'" in response.headers["Content-Security-Policy"]
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert 'src="/ui/assets/js/app.js"' in await response.text()
    async with http.get(base + "/ui/assets/js/app.js") as response:
        assert response.status == 200 and response.content_type == "text/javascript"
        etag = response.headers["ETag"]
    async with http.get(base + "/ui/assets/js/app.js", headers={"If-None-Match": etag}) as again:
        assert again.status == 304
    async with http.get(base + "/ui/assets/console.css") as response:
        assert response.content_type == "text/css"
    async with http.get(base + "/ui", allow_redirects=False) as response:
        assert response.status == 308 and response.headers["Location"] == "/ui/"
    for path in (
        "/ui/assets/nope.js",
        "/ui/assets/../__init__.py",
        "/ui/assets/%2e%2e/__init__.py",
        "/ui/elsewhere",
    ):
        async with http.get(base + path) as response:
            assert response.status in (401, 404), path
    async with http.get(base + "/ui/assets/js/../../../auth.py") as response:
        assert response.status in (401, 404)
    async with http.get(base + "/api/2.0/mlflow/webhooks") as response:
        assert response.status == 401


def test_every_asset_is_local() -> None:
    """No CDN: nothing under static/ names another origin (the form's placeholder aside)."""
    static = ROOT / "server" / "console" / "static"
    for path in static.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".js", ".css"):
            text = path.read_text().replace("https://example.com/hook", "")
            text = text.replace("http://www.w3.org/2000/svg", "")  # the SVG namespace name
            assert "http://" not in text and "https://" not in text, path
            assert "//cdn" not in text and "@import" not in text, path

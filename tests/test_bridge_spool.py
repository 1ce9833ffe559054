"""The bridge's spool and sender, in-process: file order, fsync, acks, take-over of a dead
writer's file, set-aside, and the retry policy; the publishing loop against a real aiohttp
endpoint and against a real service process (idempotency after a lost ack)."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from mlflow_webhooks_bridge import publisher, spool
from mlflow_webhooks_bridge.publisher import Publisher

from tests.support import Receiver, own_server

MV_TAG = ("model_version_tag", "set")


def record(n: int, entity: str = "model_version_tag", action: str = "set") -> spool.Record:
    data = {"name": "m", "version": "1", "key": f"k{n}", "value": str(n)}
    return spool.Record(f"key-{n}", 1_000 + n, entity, action, data)


def drain(reader: spool.SpoolReader) -> list[spool.Entry]:
    """Takes everything, as the publisher does: refresh, head, done."""
    taken = []
    while True:
        reader.refresh()
        if (entry := reader.head()) is None:
            return taken
        taken.append(entry)
        reader.done(entry)


def test_records_come_back_in_order_and_once(tmp_path: Path) -> None:
    writer = spool.SpoolWriter(tmp_path)
    for n in range(3):
        writer.append(record(n))
    reader = spool.SpoolReader(tmp_path)
    assert [e.record for e in drain(reader)] == [record(n) for n in range(3)]
    writer.append(record(3))
    assert [e.record for e in drain(reader)] == [record(3)]
    # A new reader (a new leader) starts where the acks say.
    assert drain(spool.SpoolReader(tmp_path)) == []


def test_append_is_fsynced_before_it_returns(tmp_path: Path, monkeypatch) -> None:
    writer = spool.SpoolWriter(tmp_path)
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_size)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    writer.append(record(0))
    assert synced == [len(record(0).to_line())]


def test_files_merge_in_the_order_events_happened(tmp_path: Path) -> None:
    first, second = spool.SpoolWriter(tmp_path), spool.SpoolWriter(tmp_path)
    for n, writer in enumerate([second, first, first, second]):
        writer.append(record(n))
    taken = drain(spool.SpoolReader(tmp_path))
    assert [e.record.key for e in taken if e.record] == [f"key-{n}" for n in range(4)]


def test_half_written_line_is_never_read(tmp_path: Path) -> None:
    writer = spool.SpoolWriter(tmp_path)
    writer.append(record(0))
    with writer.path.open("ab") as f:  # a writer that died mid-write
        f.write(record(1).to_line()[:20])
    assert [e.record for e in drain(spool.SpoolReader(tmp_path))] == [record(0)]
    assert spool.status(tmp_path)["spooled"] == 0


def test_a_dead_writers_half_line_does_not_keep_its_file(tmp_path: Path) -> None:
    writer = spool.SpoolWriter(tmp_path)
    writer.append(record(0))
    with writer.path.open("ab") as f:
        f.write(record(1).to_line()[:20])
    writer.close()
    reader = spool.SpoolReader(tmp_path)
    assert [e.record for e in drain(reader)] == [record(0)]
    reader.remove_finished()
    assert list(tmp_path.glob("*.spool")) == []


def test_a_record_longer_than_a_read_chunk(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(spool, "_READ_CHUNK", 16)
    writer = spool.SpoolWriter(tmp_path)
    writer.append(record(0))
    writer.append(record(1))
    assert [e.record for e in drain(spool.SpoolReader(tmp_path))] == [record(0), record(1)]


def test_unreadable_line_is_an_entry_without_record(tmp_path: Path) -> None:
    writer = spool.SpoolWriter(tmp_path)
    with writer.path.open("ab") as f:
        f.write(b"not json\n")
    writer.append(record(0))
    taken = drain(spool.SpoolReader(tmp_path))
    assert [e.record for e in taken] == [None, record(0)]


def test_dead_writers_file_is_taken_over_and_removed_when_published(tmp_path: Path) -> None:
    dead = spool.SpoolWriter(tmp_path)
    dead.append(record(0))
    dead_path = dead.path
    live = spool.SpoolWriter(tmp_path)
    assert spool.owner_alive(dead_path)
    dead.close()  # as when its process dies: the kernel frees the lock
    assert not spool.owner_alive(dead_path)
    assert spool.owner_alive(live.path)
    reader = spool.SpoolReader(tmp_path)
    reader.refresh()
    reader.remove_finished()
    assert dead_path.exists(), "removed before it was published"
    assert [e.record for e in drain(reader)] == [record(0)]
    reader.remove_finished()
    assert not dead_path.exists()
    assert not Path(f"{dead_path}{spool.ACK_SUFFIX}").exists()
    assert live.path.exists(), "a live writer's file stays"


def test_writer_rotates_and_old_files_go_once_published(tmp_path: Path) -> None:
    writer = spool.SpoolWriter(tmp_path, max_bytes=len(record(0).to_line()) * 2)
    for n in range(5):
        writer.append(record(n))
    assert len(list(tmp_path.glob("*.spool"))) == 3
    reader = spool.SpoolReader(tmp_path)
    assert [e.record for e in drain(reader)] == [record(n) for n in range(5)]
    reader.remove_finished()
    assert list(tmp_path.glob("*.spool")) == [writer.path]


def test_status_counts_spooled_age_and_rejected(tmp_path: Path) -> None:
    writer = spool.SpoolWriter(tmp_path)
    writer.append(record(0))
    writer.append(record(1))
    reader = spool.SpoolReader(tmp_path)
    reader.refresh()
    entry = reader.head()
    assert entry is not None
    spool.set_aside(tmp_path, entry, "the service answered 400: bad")
    reader.done(entry)
    status = spool.status(tmp_path, now_ns=1_001 + 2_000_000_000)
    assert status["spooled"] == 1
    assert status["oldest_spooled_age_seconds"] == pytest.approx(2.0)
    assert status["rejected"] == 1
    kept = json.loads((tmp_path / spool.REJECTED).read_text())
    assert kept["reason"] == "the service answered 400: bad"
    assert json.loads(kept["line"])["key"] == "key-0"


def test_one_leader_at_a_time(tmp_path: Path) -> None:
    lead = spool.try_lead(tmp_path)
    assert lead is not None
    assert spool.try_lead(tmp_path) is None
    os.close(lead)
    again = spool.try_lead(tmp_path)
    assert again is not None
    os.close(again)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, "published"),
        (204, "published"),
        (400, "refused"),
        (409, "refused"),
        (413, "refused"),
        (401, "retry"),
        (403, "retry"),
        (404, "retry"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_classify(status: int, kind: str) -> None:
    assert publisher.classify(status, b'{"message": "why"}').kind == kind


def test_classify_keeps_the_services_message() -> None:
    body = json.dumps({"error_code": "INVALID_PARAMETER_VALUE", "message": "data.name is required"})
    outcome = publisher.classify(400, body.encode())
    assert outcome.detail == "the service answered 400: data.name is required"
    assert publisher.classify(503, b"<html>", "7").retry_after == 7.0


def test_retry_after_seconds() -> None:
    assert publisher.retry_after_seconds("3") == 3.0
    assert publisher.retry_after_seconds("100000") == publisher.RETRY_AFTER_MAX
    assert publisher.retry_after_seconds("Thu, 01 Jan 1970 00:00:10 GMT", now=4.0) == 6.0
    assert publisher.retry_after_seconds("Thu, 01 Jan 1970 00:00:10 GMT", now=20.0) == 0.0
    assert publisher.retry_after_seconds("soon") is None
    assert publisher.retry_after_seconds(None) is None


def test_backoff_grows_to_a_cap_with_jitter() -> None:
    assert publisher.backoff(1, 0.0) == publisher.BACKOFF_FIRST / 2
    assert publisher.backoff(1, 0.999) < publisher.BACKOFF_FIRST
    assert publisher.backoff(3, 0.0) == publisher.BACKOFF_FIRST * 2
    assert publisher.backoff(50, 0.999) <= publisher.BACKOFF_MAX


def test_publish_body_names_the_event_as_the_service_does() -> None:
    body = json.loads(publisher.publish_body(record(1, "prompt_version_tag", "deleted")))
    assert body["event"] == {"entity": "PROMPT_VERSION_TAG", "action": "DELETED"}
    assert body["idempotency_key"] == "key-1"
    assert body["data"] == record(1).data


class FakeService:
    """An aiohttp endpoint in the test's loop standing in for publishEvent: it answers each
    request with the next of `answers` (then 200) and records what it got."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.got: list[dict] = []
        self.changed = asyncio.Condition()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _publish(self, request: web.Request) -> web.Response:
        body = await request.json()
        async with self.changed:
            self.got.append({"body": body, "auth": request.headers.get("Authorization")})
            self.changed.notify_all()
        status = self.answers.pop(0) if self.answers else 200
        return web.json_response(
            {"error_code": "X", "message": f"answered {status}"}, status=status
        )

    async def start(self) -> FakeService:
        app = web.Application()
        app.router.add_post(publisher.PUBLISH_PATH, self._publish)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def wait_for(self, count: int) -> list[dict]:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: len(self.got) >= count), 20)
        return self.got

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()


@pytest.fixture
async def fake() -> AsyncIterator[FakeService]:
    service = await FakeService([]).start()
    yield service
    await service.stop()


async def until_spool_empty(directory: Path) -> dict:
    for _ in range(200):
        status = await asyncio.to_thread(spool.status, directory)
        if status["spooled"] == 0:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"spool not drained: {status}")


async def test_publisher_retries_in_order_and_sets_refused_aside(
    tmp_path: Path, fake: FakeService
) -> None:
    fake.answers[:] = [503, 503, 200, 400]
    writer = spool.SpoolWriter(tmp_path)
    for n in range(3):
        writer.append(record(n))
    sender = Publisher(fake.url, "t0ken", tmp_path)
    sender.start()
    try:
        got = await fake.wait_for(5)
        status = await until_spool_empty(tmp_path)
    finally:
        await asyncio.to_thread(sender.stop)
    keys = [g["body"]["idempotency_key"] for g in got]
    # The first event is retried with its key until accepted; the second is refused and set
    # aside; the third goes next. Nothing moves ahead of a retried event.
    assert keys == ["key-0", "key-0", "key-0", "key-1", "key-2"]
    assert {g["auth"] for g in got} == {"Bearer t0ken"}
    assert status["rejected"] == 1
    assert "answered 400" in status["last_error"]
    assert status["last_published_at"] is not None


async def test_a_live_process_takes_over_a_dead_leaders_spool(
    tmp_path: Path, fake: FakeService
) -> None:
    dead = spool.SpoolWriter(tmp_path)
    dead.append(record(0))
    dead_lead = spool.try_lead(tmp_path)  # the dead process led; it holds the lock ...
    sender = Publisher(fake.url, None, tmp_path)
    sender.start()
    try:
        dead.close()
        assert dead_lead is not None
        os.close(dead_lead)  # ... until it dies
        got = await fake.wait_for(1)
        await until_spool_empty(tmp_path)
    finally:
        await asyncio.to_thread(sender.stop)
    assert [g["body"]["idempotency_key"] for g in got] == ["key-0"]
    assert got[0]["auth"] is None


async def test_a_lost_ack_republishes_and_the_service_delivers_once(tmp_path: Path) -> None:
    """A leader that died between the service's answer and its ack: the next one publishes the
    event again with the same idempotency key, and the real service delivers it once."""
    receiver = await Receiver().start()
    service = await asyncio.to_thread(own_server, tmp_path)
    try:
        hook = {
            "name": "lost-ack",
            "url": f"{receiver.url}/ok",
            "events": [{"entity": "MODEL_VERSION_TAG", "action": "SET"}],
        }
        request = json.dumps(hook).encode()
        await asyncio.to_thread(_post, f"{service.http_url}/api/2.0/mlflow/webhooks", request)
        directory = tmp_path / "spool"
        writer = spool.SpoolWriter(directory)
        writer.append(record(0))
        writer.append(record(1))
        for attempt in range(2):
            sender = Publisher(service.http_url, None, directory)
            sender.start()
            await until_spool_empty(directory)
            await asyncio.to_thread(sender.stop)
            if attempt == 0:
                Path(f"{writer.path}{spool.ACK_SUFFIX}").unlink()  # the ack never made it
        await receiver.wait_for(2)
        # The republished event made no new delivery: the service's log has two, one each.
        deliveries = await asyncio.to_thread(
            _get, f"{service.http_url}/api/2.0/mlflow/webhook-deliveries"
        )
        assert len(deliveries["deliveries"]) == 2
        assert sorted(b["data"]["key"] for b in receiver.bodies("/ok")) == ["k0", "k1"]
    finally:
        service.stop()
        await receiver.stop()


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(  # noqa: S310
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200

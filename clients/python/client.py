"""A small synchronous client over the generated gRPC stubs of both services."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from mlflow_webhooks.generated import webhook_delivery_pb2_grpc as dpb_grpc
from mlflow_webhooks.generated import webhooks_pb2 as pb
from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc

DEFAULT_TIMEOUT = 30.0

EventLike = str | pb.WebhookEvent | tuple[int, int]


class WebhooksError(Exception):
    """A call failed: `code` is the gRPC status code, `message` the server's explanation."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


def parse_event(value: EventLike) -> pb.WebhookEvent:
    """`model_version.created` (MLflow's spelling), an (entity, action) pair or a message.

    Only the spelling is checked here; whether the pair is valid is the server's call, so the
    client never disagrees with it."""
    if isinstance(value, pb.WebhookEvent):
        return value
    if isinstance(value, tuple):
        return pb.WebhookEvent(entity=value[0], action=value[1])
    entity, sep, action = value.strip().partition(".")
    try:
        if not sep:
            raise ValueError
        return pb.WebhookEvent(
            entity=pb.WebhookEntity.Value(entity.upper()),
            action=pb.WebhookAction.Value(action.upper()),
        )
    except ValueError:
        raise ValueError(
            f"invalid event {value!r}: expected ENTITY.ACTION such as model_version.created"
        ) from None


def event_name(event: pb.WebhookEvent) -> str:
    entity = pb.WebhookEntity.Name(event.entity).lower()
    return f"{entity}.{pb.WebhookAction.Name(event.action).lower()}"


def _enum(enum: Any, value: str | int, what: str) -> int:
    if isinstance(value, int):
        return value
    try:
        return int(enum.Value(value.strip().upper()))
    except ValueError:
        names = ", ".join(
            v.name for v in enum.DESCRIPTOR.values if not v.name.endswith("UNSPECIFIED")
        )
        raise ValueError(f"invalid {what} {value!r}: expected one of {names}") from None


def webhook_status(value: str | int) -> int:
    return _enum(pb.WebhookStatus, value, "webhook status")


def delivery_status(value: str | int) -> int:
    return _enum(dpb.DeliveryStatus, value, "delivery status")


_INT64 = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
}


def _json_value(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return to_json(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        known = field.enum_type.values_by_number.get(value)
        return known.name if known else value
    if field.type in _INT64:
        return int(value)
    return value


def to_json(message: Message) -> dict[str, Any]:
    """The message as the JSON shim writes it: proto field names, enums by name, int64 as
    numbers (json_format would quote them), unset fields left out."""
    if message.DESCRIPTOR.full_name.startswith("google.protobuf."):
        return json_format.MessageToDict(message, preserving_proto_field_name=True)
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        if field.is_repeated:
            out[field.name] = [_json_value(field, v) for v in value]
        else:
            out[field.name] = _json_value(field, value)
    return out


class WebhooksClient:
    """Calls both services on one channel.

    `token` is sent as `authorization: Bearer TOKEN` metadata; `root_certificates` (PEM bytes)
    switches the channel to TLS. Every call has a deadline of `timeout` seconds, so an
    unreachable server fails with UNAVAILABLE or DEADLINE_EXCEEDED instead of hanging.
    Use as a context manager, or call close()."""

    def __init__(
        self,
        address: str,
        token: str | None = None,
        root_certificates: bytes | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.address = address
        self.timeout = timeout
        if root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.secure_channel(address, credentials)
        else:
            self._channel = grpc.insecure_channel(address)
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        self._webhooks = pb_grpc.WebhookServiceStub(self._channel)
        self._deliveries = dpb_grpc.WebhookDeliveryServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> WebhooksClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, method: Any, request: Message) -> Any:
        try:
            return method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            code: grpc.StatusCode = e.code()  # type: ignore[attr-defined]
            details: str = e.details() or ""  # type: ignore[attr-defined]
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                details = f"cannot reach the server at {self.address}: {details}"
            elif code == grpc.StatusCode.UNIMPLEMENTED:
                # Most likely a server older than this client.
                details = f"the server at {self.address} does not offer this call: {details}"
            raise WebhooksError(code, details) from None

    # Webhooks

    def create(
        self,
        name: str,
        url: str,
        events: Iterable[EventLike],
        *,
        description: str | None = None,
        secret: str | None = None,
        status: str | int | None = None,
    ) -> pb.Webhook:
        request = pb.CreateWebhook(name=name, url=url, events=[parse_event(e) for e in events])
        if description is not None:
            request.description = description
        if secret is not None:
            request.secret = secret
        if status is not None:
            request.status = webhook_status(status)  # type: ignore[assignment]
        return self._call(self._webhooks.createWebhook, request).webhook

    def list_page(
        self, max_results: int | None = None, page_token: str | None = None
    ) -> pb.ListWebhooks.Response:
        """One page, newest first; its next_page_token is unset on the last page."""
        request = pb.ListWebhooks()
        if max_results is not None:
            request.max_results = max_results
        if page_token:
            request.page_token = page_token
        return self._call(self._webhooks.listWebhooks, request)

    def iter_webhooks(self, page_size: int | None = None) -> Iterator[pb.Webhook]:
        """Every webhook, newest first, fetching pages of `page_size` as it goes."""
        token: str | None = None
        while True:
            page = self.list_page(page_size, token)
            yield from page.webhooks
            if not page.next_page_token:
                return
            token = page.next_page_token

    def get(self, webhook_id: str) -> pb.Webhook:
        return self._call(self._webhooks.getWebhook, pb.GetWebhook(webhook_id=webhook_id)).webhook

    def update(
        self,
        webhook_id: str,
        *,
        name: str | None = None,
        url: str | None = None,
        events: Iterable[EventLike] | None = None,
        description: str | None = None,
        secret: str | None = None,
        status: str | int | None = None,
    ) -> pb.Webhook:
        """Changes only what is given; an empty `secret` turns signing off."""
        request = pb.UpdateWebhook(webhook_id=webhook_id)
        if name is not None:
            request.name = name
        if url is not None:
            request.url = url
        if events is not None:
            request.events.extend(parse_event(e) for e in events)
        if description is not None:
            request.description = description
        if secret is not None:
            request.secret = secret
        if status is not None:
            request.status = webhook_status(status)  # type: ignore[assignment]
        return self._call(self._webhooks.updateWebhook, request).webhook

    def delete(self, webhook_id: str) -> None:
        self._call(self._webhooks.deleteWebhook, pb.DeleteWebhook(webhook_id=webhook_id))

    def test(self, webhook_id: str, event: EventLike | None = None) -> pb.WebhookTestResult:
        """Sends the event's example payload once, now; defaults to the webhook's first event."""
        request = pb.TestWebhook(webhook_id=webhook_id)
        if event is not None:
            request.event.CopyFrom(parse_event(event))
        return self._call(self._webhooks.testWebhook, request).result

    # Events and deliveries

    def publish(
        self,
        event: EventLike,
        data: Mapping[str, Any],
        idempotency_key: str | None = None,
    ) -> dpb.PublishEvent.Response:
        """Answers the event id and one delivery id per subscribed active webhook."""
        request = dpb.PublishEvent(event=parse_event(event))
        request.data.update(dict(data))
        if idempotency_key is not None:
            request.idempotency_key = idempotency_key
        return self._call(self._deliveries.publishEvent, request)

    def deliveries_page(
        self,
        *,
        webhook_id: str | None = None,
        event_id: str | None = None,
        status: str | int | None = None,
        event: EventLike | None = None,
        since: int | None = None,
        until: int | None = None,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> dpb.ListDeliveries.Response:
        """One page, newest first, each delivery with its latest attempt. `since` and `until`
        are Unix milliseconds: created in [since, until)."""
        request = dpb.ListDeliveries()
        if webhook_id:
            request.webhook_id = webhook_id
        if event_id:
            request.event_id = event_id
        if status is not None:
            request.status = delivery_status(status)  # type: ignore[assignment]
        if event is not None:
            request.event.CopyFrom(parse_event(event))
        if since is not None:
            request.since_timestamp = since
        if until is not None:
            request.until_timestamp = until
        if max_results is not None:
            request.max_results = max_results
        if page_token:
            request.page_token = page_token
        return self._call(self._deliveries.listDeliveries, request)

    def deliveries(
        self,
        *,
        webhook_id: str | None = None,
        event_id: str | None = None,
        status: str | int | None = None,
        event: EventLike | None = None,
        since: int | None = None,
        until: int | None = None,
        page_size: int | None = None,
    ) -> Iterator[dpb.Delivery]:
        """Every delivery matching the filters, across pages (each with its latest attempt,
        not all of them)."""
        token: str | None = None
        while True:
            page = self.deliveries_page(
                webhook_id=webhook_id,
                event_id=event_id,
                status=status,
                event=event,
                since=since,
                until=until,
                max_results=page_size,
                page_token=token,
            )
            yield from page.deliveries
            if not page.next_page_token:
                return
            token = page.next_page_token

    def delivery(self, delivery_id: str) -> dpb.Delivery:
        """One delivery with all its attempts."""
        request = dpb.GetDelivery(delivery_id=delivery_id)
        return self._call(self._deliveries.getDelivery, request).delivery

    def redeliver(self, delivery_id: str) -> dpb.Delivery:
        """Sends the delivery again now, under the same delivery id."""
        request = dpb.Redeliver(delivery_id=delivery_id)
        return self._call(self._deliveries.redeliver, request).delivery

    def redeliver_failed_page(
        self,
        webhook_id: str,
        since: int,
        *,
        max_deliveries: int | None = None,
        page_token: str | None = None,
    ) -> dpb.RedeliverFailed.Response:
        """Sends up to `max_deliveries` (default 100) of the webhook's FAILED deliveries created
        at or after `since` (Unix ms) again, oldest first; next_page_token goes on."""
        request = dpb.RedeliverFailed(webhook_id=webhook_id, since_timestamp=since)
        if max_deliveries is not None:
            request.max_deliveries = max_deliveries
        if page_token:
            request.page_token = page_token
        return self._call(self._deliveries.redeliverFailed, request)

    def redeliver_failed(
        self, webhook_id: str, since: int, *, max_deliveries: int | None = None
    ) -> Iterator[dpb.RedeliverFailed.Response]:
        """Every FAILED delivery of the webhook since `since`, batch after batch; yields each
        batch's answer."""
        token: str | None = None
        while True:
            batch = self.redeliver_failed_page(
                webhook_id, since, max_deliveries=max_deliveries, page_token=token
            )
            yield batch
            if not batch.next_page_token:
                return
            token = batch.next_page_token

    def health(self, webhook_ids: Iterable[str]) -> list[dpb.WebhookHealth]:
        """Each known webhook's newest delivery, deliveries and failures in the last 24 hours,
        and why the service disabled it, if it did (1 to 100 ids)."""
        request = dpb.GetWebhookHealth(webhook_ids=list(webhook_ids))
        return list(self._call(self._deliveries.getWebhookHealth, request).webhooks)

    def set_filter(
        self,
        webhook_id: str,
        *,
        names: Iterable[str] = (),
        aliases: Iterable[str] = (),
        tag_keys: Iterable[str] = (),
    ) -> dpb.WebhookFilter:
        """Sets which events of its types the webhook gets: model or prompt names (glob
        patterns), alias names, tag keys; nothing given removes the filter."""
        spec = dpb.WebhookFilter(names=list(names), aliases=list(aliases), tag_keys=list(tag_keys))
        request = dpb.SetWebhookFilter(webhook_id=webhook_id, filter=spec)
        return self._call(self._deliveries.setWebhookFilter, request).filter

    def get_filter(self, webhook_id: str) -> dpb.WebhookFilter:
        """The webhook's filter; empty when it has none."""
        request = dpb.GetWebhookFilter(webhook_id=webhook_id)
        return self._call(self._deliveries.getWebhookFilter, request).filter

    def set_settings(
        self,
        webhook_id: str,
        *,
        retry_schedule: Iterable[float] | None = None,
        timeout: float | None = None,
        max_concurrency: int | None = None,
        ordered: bool | None = None,
    ) -> dpb.WebhookSettings:
        """Changes the delivery settings given and keeps the others; answers them all.
        `retry_schedule` (seconds before each retry), `timeout` (seconds per attempt) and
        `max_concurrency` (attempts in flight, per server process) override the server's,
        within its limits; `retry_schedule=[]`, `timeout=0` or `max_concurrency=0` put that
        part back to the server's. `ordered=True` sends one delivery at a time, in publish
        order (docs/delivery.md)."""
        settings = dpb.WebhookSettings()
        if retry_schedule is not None:
            settings.retry_schedule.SetInParent()  # given, even when empty
            settings.retry_schedule.delays_seconds.extend(retry_schedule)
        if timeout is not None:
            settings.timeout_seconds = timeout
        if max_concurrency is not None:
            settings.max_concurrency = max_concurrency
        if ordered is not None:
            settings.ordered = ordered
        request = dpb.SetWebhookSettings(webhook_id=webhook_id, settings=settings)
        return self._call(self._deliveries.setWebhookSettings, request).settings

    def get_settings(self, webhook_id: str) -> dpb.WebhookSettings:
        """The webhook's delivery settings; a part not set is the server's."""
        request = dpb.GetWebhookSettings(webhook_id=webhook_id)
        return self._call(self._deliveries.getWebhookSettings, request).settings

    def rotate_secret(
        self, webhook_id: str, secret: str | None = None, *, overlap_seconds: int | None = None
    ) -> dpb.RotateWebhookSecret.Response:
        """Replaces the webhook's secret with `secret`, or with a generated one (answered in
        `.secret`, this once) when none is given. The old secret signs deliveries too for
        `overlap_seconds` (0 to 7 days; 24 hours when not given), until
        `.previous_secret_expires_timestamp`."""
        request = dpb.RotateWebhookSecret(webhook_id=webhook_id)
        if secret is not None:
            request.secret = secret
        if overlap_seconds is not None:
            request.overlap_seconds = overlap_seconds
        return self._call(self._deliveries.rotateWebhookSecret, request)

    def event_types(self) -> list[dpb.EventType]:
        """The valid events (`model_version.created`, …) and their data fields."""
        request = dpb.ListEventTypes()
        return list(self._call(self._deliveries.listEventTypes, request).event_types)

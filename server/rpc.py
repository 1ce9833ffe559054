"""gRPC servicers: request message in, core call, response message out. Errors raised by the
core become status codes in CallInterceptor, so the methods carry no error handling and the
JSON shim can call them directly."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import struct_pb2
from google.protobuf.descriptor import FieldDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message

from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from mlflow_webhooks.generated import webhook_delivery_pb2_grpc as dpb_grpc
from mlflow_webhooks.generated import webhooks_pb2 as pb
from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc
from mlflow_webhooks.server import filters, observe
from mlflow_webhooks.server.core import WebhookCore
from mlflow_webhooks.server.delivery.settings import DeliverySettings
from mlflow_webhooks.server.errors import Code, InvalidArgument, ServiceError
from mlflow_webhooks.server.store import AttemptRecord, DeliveryRecord, Health, WebhookRecord

log = logging.getLogger(__name__)


def webhook_message(record: WebhookRecord) -> pb.Webhook:
    """The wire form of a webhook. The secret has no field here, so it cannot leak."""
    message = pb.Webhook(
        webhook_id=record.id,
        name=record.name,
        url=record.url,
        events=[pb.WebhookEvent(entity=e, action=a) for e, a in record.events],
        status=record.status,
        creation_timestamp=record.creation_timestamp,
        last_updated_timestamp=record.last_updated_timestamp,
    )
    if record.description is not None:
        message.description = record.description
    return message


def event_pairs(messages: Any) -> list[tuple[int, int]]:
    return [(e.entity, e.action) for e in messages]


def optional(message: Any, field: str) -> Any:
    """The field's value if the caller set it, else None (proto2 presence)."""
    return getattr(message, field) if message.HasField(field) else None


def webhook_fields(request: pb.CreateWebhook | pb.UpdateWebhook) -> dict[str, Any]:
    """The webhook fields create and update share, as the core takes them: name, url and
    events as given (empty means unset), the rest None when the caller did not set them."""
    return {
        "name": request.name,
        "url": request.url,
        "event_pairs": event_pairs(request.events),
        "description": optional(request, "description"),
        "secret": optional(request, "secret"),
        "status": optional(request, "status"),
    }


class WebhookServicer(pb_grpc.WebhookServiceServicer):
    def __init__(self, core: WebhookCore) -> None:
        self._core = core

    async def createWebhook(self, request: pb.CreateWebhook, context: object) -> Any:
        record = await self._core.create_webhook(**webhook_fields(request))
        return pb.CreateWebhook.Response(webhook=webhook_message(record))

    async def listWebhooks(self, request: pb.ListWebhooks, context: object) -> Any:
        # proto2 gives an unset max_results its declared default of 100.
        page = await self._core.list_webhooks(request.max_results, request.page_token)
        response = pb.ListWebhooks.Response(webhooks=[webhook_message(r) for r in page.items])
        if page.next_token:
            response.next_page_token = page.next_token
        return response

    async def getWebhook(self, request: pb.GetWebhook, context: object) -> Any:
        record = await self._core.get_webhook(request.webhook_id)
        return pb.GetWebhook.Response(webhook=webhook_message(record))

    async def updateWebhook(self, request: pb.UpdateWebhook, context: object) -> Any:
        record = await self._core.update_webhook(request.webhook_id, **webhook_fields(request))
        return pb.UpdateWebhook.Response(webhook=webhook_message(record))

    async def deleteWebhook(self, request: pb.DeleteWebhook, context: object) -> Any:
        await self._core.delete_webhook(request.webhook_id)
        return pb.DeleteWebhook.Response()

    async def testWebhook(self, request: pb.TestWebhook, context: object) -> Any:
        event = (request.event.entity, request.event.action) if request.HasField("event") else None
        attempt, filtered = await self._core.test_webhook(request.webhook_id, event)
        result = pb.WebhookTestResult(success=attempt.succeeded)
        if attempt.status is not None:
            result.response_status = attempt.status
            result.response_body = attempt.body
        # MLflow's result has no field for the filter's verdict: error_message carries it,
        # after the attempt's own error if there was one.
        if attempt.error and filtered:
            result.error_message = f"{attempt.error.rstrip('.')}. {filtered}"
        elif attempt.error or filtered:
            result.error_message = attempt.error or filtered
        return pb.TestWebhook.Response(result=result)


def delivery_message(record: DeliveryRecord) -> dpb.Delivery:
    message = dpb.Delivery(
        delivery_id=record.id,
        event_id=record.event_id,
        webhook_id=record.webhook_id,
        event=pb.WebhookEvent(entity=record.event[0], action=record.event[1]),
        status=int(record.status),
        creation_timestamp=record.creation_timestamp,
        test=record.is_test,
        attempt_count=record.attempt_count,
    )
    if record.next_attempt_timestamp is not None:
        message.next_attempt_timestamp = record.next_attempt_timestamp
    for a in record.attempts:
        _fill_attempt(message.attempts.add(), a, with_body=True)
    if record.last_attempt is not None:
        _fill_attempt(message.last_attempt, record.last_attempt, with_body=False)
    if record.payload is not None:
        message.payload = record.payload
    return message


def _fill_attempt(attempt: dpb.DeliveryAttempt, a: AttemptRecord, with_body: bool) -> None:
    attempt.number = a.number
    attempt.timestamp = a.timestamp
    attempt.duration_ms = a.duration_ms
    if a.response_status is not None:
        attempt.response_status = a.response_status
        if with_body:
            attempt.response_body = a.response_body
    if a.error:
        attempt.error = a.error


def health_message(health: Health) -> dpb.WebhookHealth:
    message = dpb.WebhookHealth(
        webhook_id=health.webhook_id,
        deliveries_24h=health.deliveries,
        failures_24h=health.failures,
    )
    if health.last_delivery is not None:
        message.last_delivery.CopyFrom(delivery_message(health.last_delivery))
    if health.disabled_reason is not None:
        message.disabled_reason = health.disabled_reason
    if health.disabled_timestamp is not None:
        message.disabled_timestamp = health.disabled_timestamp
    if health.previous_secret_until is not None:
        message.previous_secret_expires_timestamp = health.previous_secret_until
    return message


def settings_message(settings: DeliverySettings) -> dpb.WebhookSettings:
    message = dpb.WebhookSettings()
    if settings.retry_schedule is not None:
        message.retry_schedule.delays_seconds.extend(settings.retry_schedule)
    if settings.timeout is not None:
        message.timeout_seconds = settings.timeout
    if settings.max_concurrency is not None:
        message.max_concurrency = settings.max_concurrency
    if settings.ordered:
        message.ordered = True
    return message


def filter_message(spec: filters.Filter) -> dpb.WebhookFilter:
    return dpb.WebhookFilter(names=spec.names, aliases=spec.aliases, tag_keys=spec.tag_keys)


def plain_json(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain JSON, read directly (json_format.MessageToDict took three times as
    long). Struct keeps every number as a double, so integral values go back to ints: a
    producer's 1704067200000 is delivered as written. NaN and infinities are a ValueError,
    as in json_format: JSON cannot carry them."""
    return {key: _plain_value(value) for key, value in struct.fields.items()}


def _plain_value(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            raise ValueError(f"{number} is not a JSON number")
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return plain_json(value.struct_value)
    if kind == "list_value":
        return [_plain_value(item) for item in value.list_value.values]
    return None  # null_value, or no kind at all


class DeliveryServicer(dpb_grpc.WebhookDeliveryServiceServicer):
    def __init__(self, core: WebhookCore) -> None:
        self._core = core

    async def publishEvent(self, request: dpb.PublishEvent, context: object) -> Any:
        event = (request.event.entity, request.event.action)
        data = None
        if request.HasField("data"):
            try:
                data = plain_json(request.data)
            except ValueError:
                # A Struct may hold NaN or an infinity; JSON, and so a receiver, cannot.
                raise InvalidArgument(
                    "data holds a number JSON cannot carry (NaN or an infinity); send finite "
                    "numbers, or the value as a string."
                ) from None
        event_id, delivery_ids = await self._core.publish_event(
            event, data, request.idempotency_key
        )
        return dpb.PublishEvent.Response(event_id=event_id, delivery_ids=delivery_ids)

    async def listDeliveries(self, request: dpb.ListDeliveries, context: object) -> Any:
        page = await self._core.list_deliveries(
            request.max_results,
            request.page_token,
            request.webhook_id,
            request.event_id,
            request.status,
            (request.event.entity, request.event.action) if request.HasField("event") else None,
            optional(request, "since_timestamp"),
            optional(request, "until_timestamp"),
        )
        response = dpb.ListDeliveries.Response(deliveries=[delivery_message(d) for d in page.items])
        if page.next_token:
            response.next_page_token = page.next_token
        return response

    async def getDelivery(self, request: dpb.GetDelivery, context: object) -> Any:
        record = await self._core.get_delivery(request.delivery_id)
        return dpb.GetDelivery.Response(delivery=delivery_message(record))

    async def redeliver(self, request: dpb.Redeliver, context: object) -> Any:
        record = await self._core.redeliver(request.delivery_id)
        return dpb.Redeliver.Response(delivery=delivery_message(record))

    async def redeliverFailed(self, request: dpb.RedeliverFailed, context: object) -> Any:
        outcomes, next_token = await self._core.redeliver_failed(
            request.webhook_id,
            optional(request, "since_timestamp"),
            request.max_deliveries,
            request.page_token,
        )
        response = dpb.RedeliverFailed.Response(
            redelivered=len(outcomes),
            succeeded=sum(o.status == dpb.SUCCEEDED for o in outcomes),
            delivery_ids=[o.delivery_id for o in outcomes],
        )
        if next_token:
            response.next_page_token = next_token
        return response

    async def listEventTypes(self, request: dpb.ListEventTypes, context: object) -> Any:
        return dpb.ListEventTypes.Response(
            event_types=[
                dpb.EventType(
                    event=pb.WebhookEvent(entity=entity, action=action),
                    name=name,
                    data_fields=fields,
                )
                for (entity, action), name, fields in self._core.event_types()
            ]
        )

    async def setWebhookFilter(self, request: dpb.SetWebhookFilter, context: object) -> Any:
        given = request.filter
        stored = await self._core.set_webhook_filter(
            request.webhook_id, given.names, given.aliases, given.tag_keys
        )
        return dpb.SetWebhookFilter.Response(filter=filter_message(stored))

    async def getWebhookFilter(self, request: dpb.GetWebhookFilter, context: object) -> Any:
        found = await self._core.get_webhook_filter(request.webhook_id)
        return dpb.GetWebhookFilter.Response(filter=filter_message(found))

    async def setWebhookSettings(self, request: dpb.SetWebhookSettings, context: object) -> Any:
        given = request.settings
        stored = await self._core.set_delivery_settings(
            request.webhook_id,
            given.retry_schedule.delays_seconds if given.HasField("retry_schedule") else None,
            given.timeout_seconds if given.HasField("timeout_seconds") else None,
            given.max_concurrency if given.HasField("max_concurrency") else None,
            given.ordered if given.HasField("ordered") else None,
        )
        return dpb.SetWebhookSettings.Response(settings=settings_message(stored))

    async def getWebhookSettings(self, request: dpb.GetWebhookSettings, context: object) -> Any:
        found = await self._core.get_delivery_settings(request.webhook_id)
        return dpb.GetWebhookSettings.Response(settings=settings_message(found))

    async def rotateWebhookSecret(self, request: dpb.RotateWebhookSecret, context: object) -> Any:
        # proto2 gives an unset overlap_seconds its declared default of 86400.
        record, generated = await self._core.rotate_webhook_secret(
            request.webhook_id, request.secret, request.overlap_seconds
        )
        response = dpb.RotateWebhookSecret.Response(webhook=webhook_message(record))
        if generated is not None:
            response.secret = generated
        if record.previous_secret_until is not None:
            response.previous_secret_expires_timestamp = record.previous_secret_until
        return response

    async def getWebhookHealth(self, request: dpb.GetWebhookHealth, context: object) -> Any:
        found = await self._core.webhook_health(list(request.webhook_ids))
        return dpb.GetWebhookHealth.Response(webhooks=[health_message(h) for h in found])


STATUS = {code: grpc.StatusCode[code.value] for code in Code}

Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


@dataclass(frozen=True)
class Undecodable:
    error: str


def not_utf8(message: Message) -> str | None:
    """The name of the first string field, at any depth, whose bytes are not UTF-8. proto2
    parsing does not check (proto3 does), and hands such a field back as bytes."""
    for field, value in message.ListFields():
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
            pairs = [(key_field, k) for k in value] + [(value_field, v) for v in value.values()]
        else:
            pairs = [(field, v) for v in (value if field.is_repeated else [value])]
        for of, item in pairs:
            if of.type == FieldDescriptor.TYPE_STRING and isinstance(item, bytes):
                return field.name
            if isinstance(item, Message) and (inner := not_utf8(item)) is not None:
                return f"{field.name}.{inner}"
    return None


def method_names(services: Iterable[ServiceDescriptor]) -> frozenset[str]:
    """The gRPC method paths ("/package.Service/method") of `services`."""
    return frozenset(f"/{s.full_name}/{m.name}" for s in services for m in s.methods)


class CallInterceptor(grpc.aio.ServerInterceptor):
    """The boundary of every unary call: core errors become their status code, anything
    unexpected becomes INTERNAL with a plain message (never UNKNOWN or a stack trace), and
    each call is logged and counted once, under its method's name if it is one of `known`
    and as "unknown" otherwise (with auth on, a call to a made-up method is refused, and
    counted, before anyone looks the method up)."""

    def __init__(self, known: frozenset[str]) -> None:
        self._known = known

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner: Handler = handler.unary_unary
        method = handler_call_details.method
        label = method if method in self._known else observe.UNKNOWN_METHOD
        metadata = dict(handler_call_details.invocation_metadata or ())
        deserialize = handler.request_deserializer or (lambda data: data)

        def tolerant(data: bytes) -> Any:
            # grpc answers UNKNOWN when deserializing fails; keep the error for the handler.
            try:
                message = deserialize(data)
            except DecodeError as e:
                return Undecodable(str(e))
            field = not_utf8(message) if isinstance(message, Message) else None
            if field is not None:
                return Undecodable(f"field '{field}' is not valid UTF-8; strings must be UTF-8")
            return message

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            rid = observe.request_id(metadata.get("x-request-id"))
            code = grpc.StatusCode.OK
            try:
                if isinstance(request, Undecodable):
                    code = grpc.StatusCode.INVALID_ARGUMENT
                    await context.abort(
                        code,
                        f"The request is not a valid protobuf message for {method}: "
                        f"{request.error}",
                    )
                return await inner(request, context)
            except grpc.aio.AbortError:
                code = context.code() or code  # type: ignore[assignment]
                raise
            except ServiceError as e:
                code = STATUS[e.code]
                await context.abort(code, e.message)
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("unexpected error in %s (request id %s)", label, rid)
                await context.abort(code, "internal error; the server log has the details")
            finally:
                observe.record_call("grpc", label, code.name, started, rid, context.peer())

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=tolerant,
            response_serializer=handler.response_serializer,
        )

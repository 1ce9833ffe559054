"""gRPC servicers: request message in, core call, response message out. Errors raised by the
core become status codes in ErrorInterceptor, so the methods carry no error handling and the
JSON shim can call them directly."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from generated import webhooks_pb2 as pb
from generated import webhooks_pb2_grpc as pb_grpc
from server.core import WebhookCore
from server.errors import Code, ServiceError
from server.store import WebhookRecord

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


class WebhookServicer(pb_grpc.WebhookServiceServicer):
    def __init__(self, core: WebhookCore) -> None:
        self._core = core

    async def createWebhook(self, request: pb.CreateWebhook, context: object) -> Any:
        record = await self._core.create_webhook(
            name=request.name,
            url=request.url,
            event_pairs=event_pairs(request.events),
            description=optional(request, "description"),
            secret=optional(request, "secret"),
            status=optional(request, "status"),
        )
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
        record = await self._core.update_webhook(
            request.webhook_id,
            name=request.name,
            url=request.url,
            event_pairs=event_pairs(request.events),
            description=optional(request, "description"),
            secret=optional(request, "secret"),
            status=optional(request, "status"),
        )
        return pb.UpdateWebhook.Response(webhook=webhook_message(record))

    async def deleteWebhook(self, request: pb.DeleteWebhook, context: object) -> Any:
        await self._core.delete_webhook(request.webhook_id)
        return pb.DeleteWebhook.Response()

    async def testWebhook(self, request: pb.TestWebhook, context: object) -> Any:
        event = (request.event.entity, request.event.action) if request.HasField("event") else None
        attempt = await self._core.test_webhook(request.webhook_id, event)
        result = pb.WebhookTestResult(success=attempt.succeeded)
        if attempt.status is not None:
            result.response_status = attempt.status
            result.response_body = attempt.body
        if attempt.error:
            result.error_message = attempt.error
        return pb.TestWebhook.Response(result=result)


STATUS = {code: grpc.StatusCode[code.value] for code in Code}

Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Turns core errors into their status code, and anything unexpected into INTERNAL with a
    plain message: the caller never sees UNKNOWN or a stack trace."""

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

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await inner(request, context)
            except ServiceError as e:
                await context.abort(STATUS[e.code], e.message)
            except Exception:
                log.exception("unexpected error in %s", method)
                await context.abort(
                    grpc.StatusCode.INTERNAL, "internal error; the server log has the details"
                )

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

"""One way to call an RPC over either transport, so a table of cases runs over both.

`call(rpc_name, request) -> (code_name, response_or_message)`: code_name is a gRPC status name
("OK", "INVALID_ARGUMENT", ...); on OK the second item is the response message, otherwise the
error message. The REST side reads its routes from the protos' (rpc) options, as a client in
another language would, and checks that the HTTP status matches the error code."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import aiohttp
import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.message import Message

from mlflow_webhooks.generated import (  # noqa: F401
    databricks_pb2,
    webhook_delivery_pb2,
    webhook_delivery_pb2_grpc,
    webhooks_pb2,
    webhooks_pb2_grpc,
)

SERVICES = ("mlflow.WebhookService", "mlflow.WebhookDeliveryService")
PREFIXES = ("/api/2.0", "/ajax-api/2.0", "")

# MLflow's error_code -> the gRPC status name it stands for, and its HTTP status.
REST_CODES = {
    "INVALID_PARAMETER_VALUE": ("INVALID_ARGUMENT", 400),
    "RESOURCE_DOES_NOT_EXIST": ("NOT_FOUND", 404),
    "UNAUTHENTICATED": ("UNAUTHENTICATED", 401),
    "TEMPORARILY_UNAVAILABLE": ("UNAVAILABLE", 503),
    "INTERNAL_ERROR": ("INTERNAL", 500),
}


def rpc_descriptor(rpc: str) -> Any:
    """The RPC of either service (their method names do not overlap)."""
    pool = descriptor_pool.Default()
    for service in SERVICES:
        methods = pool.FindServiceByName(service).methods_by_name
        if rpc in methods:
            return methods[rpc]
    raise KeyError(rpc)


def endpoint(rpc: str) -> tuple[str, str]:
    options = rpc_descriptor(rpc).GetOptions().Extensions[databricks_pb2.rpc]
    return options.endpoints[0].method, options.endpoints[0].path


class GrpcTransport:
    name = "grpc"

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stubs = (
            webhooks_pb2_grpc.WebhookServiceStub(channel),
            webhook_delivery_pb2_grpc.WebhookDeliveryServiceStub(channel),
        )

    async def call(self, rpc: str, request: Message) -> tuple[str, Any]:
        stub = next(s for s in self._stubs if hasattr(s, rpc))
        try:
            return "OK", await getattr(stub, rpc)(request, timeout=30)
        except grpc.aio.AioRpcError as e:
            return e.code().name, e.details()


def query_items(fields: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Query parameters for a GET: repeated fields repeat their key, nested ones are dotted."""
    items: list[tuple[str, str]] = []
    for key, value in fields.items():
        if isinstance(value, dict):
            items += query_items(value, f"{prefix}{key}.")
        else:
            for item in value if isinstance(value, list) else [value]:
                items.append((prefix + key, str(item).lower() if isinstance(item, bool) else item))
    return items


class RestTransport:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, prefix: str) -> None:
        self.name = f"rest{prefix or '-bare'}"
        self._session = session
        self._base = base_url + prefix

    async def call(self, rpc: str, request: Message) -> tuple[str, Any]:
        method, path = endpoint(rpc)
        fields = json_format.MessageToDict(request, preserving_proto_field_name=True)
        for name in list(fields):
            if "{" + name + "}" in path:
                path = path.replace("{" + name + "}", quote(str(fields.pop(name)), safe=""))
        # An id the caller left empty is still part of the path.
        path = path.replace("{webhook_id}", "")
        kwargs: dict[str, Any] = {}
        if method == "GET":
            kwargs["params"] = query_items(fields)
        else:
            kwargs["json"] = fields
        async with self._session.request(method, self._base + path, **kwargs) as response:
            assert response.content_type == "application/json", await response.text()
            body = json.loads(await response.read())
            if response.status == 200:
                output = message_factory.GetMessageClass(rpc_descriptor(rpc).output_type)
                return "OK", json_format.ParseDict(body, output())
            assert set(body) == {"error_code", "message"}, body
            code, status = REST_CODES[body["error_code"]]
            assert response.status == status, (response.status, body)
            return code, body["message"]

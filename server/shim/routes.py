"""REST routes read from the `(rpc)` options of the services' descriptors, so a new RPC or a new
service is served without a line written for it."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, MethodDescriptor
from google.protobuf.message import Message

from mlflow_webhooks.generated import databricks_pb2

Call = Callable[[Message], Awaitable[Message]]

_PLACEHOLDER = re.compile(r"{([^{}/]+)}")


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as in the options, e.g. "/mlflow/webhooks/{webhook_id}"
    major: int  # since.major: the route is also served under /api/{major}.0
    rpc: MethodDescriptor
    call: Call

    @functools.cached_property
    def request_type(self) -> Descriptor:
        return self.rpc.input_type

    @functools.cached_property
    def response_type(self) -> Descriptor:
        return self.rpc.output_type

    @functools.cached_property
    def request_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.rpc.input_type)

    @functools.cached_property
    def path_fields(self) -> list[str]:
        return _PLACEHOLDER.findall(self.path)

    @property
    def title(self) -> str:
        return options(self.rpc).rpc_doc_title or self.rpc.name

    def prefixed(self) -> list[str]:
        """Where the route is served: MLflow's two prefixes, then bare."""
        return [
            f"/api/{self.major}.0{self.path}",
            f"/ajax-api/{self.major}.0{self.path}",
            self.path,
        ]


def options(rpc: MethodDescriptor) -> databricks_pb2.DatabricksRpcOptions:
    return rpc.GetOptions().Extensions[databricks_pb2.rpc]


def _bound(servicer: object, rpc: MethodDescriptor) -> Call:
    method: Callable[[Message, Any], Awaitable[Message]] = getattr(servicer, rpc.name)

    # The servicer is the very object gRPC calls; it never touches its context, so the shim
    # passes none and no copy of validation or a network hop sits between the transports.
    async def call(request: Message) -> Message:
        return await method(request, None)

    return call


def routes(servicers: Mapping[str, object]) -> list[Route]:
    """One Route per endpoint of every RPC of every service in `servicers` (full service name
    to servicer). RPCs without endpoints are gRPC only."""
    pool = descriptor_pool.Default()
    found: list[Route] = []
    for service_name, servicer in servicers.items():
        service = pool.FindServiceByName(service_name)
        for rpc in service.methods:
            for endpoint in options(rpc).endpoints:
                found.append(
                    Route(
                        method=endpoint.method.upper(),
                        path=endpoint.path,
                        major=endpoint.since.major or 2,
                        rpc=rpc,
                        call=_bound(servicer, rpc),
                    )
                )
    return found

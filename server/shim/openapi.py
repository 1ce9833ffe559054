"""An OpenAPI 3 document made from the same descriptors the routes come from."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from mlflow_webhooks.generated import databricks_pb2
from mlflow_webhooks.server.shim.routes import Route

Schema = dict[str, Any]

_INT32_RANGE = {"minimum": -(2**31), "maximum": 2**31 - 1}
_UINT32_RANGE = {"minimum": 0, "maximum": 2**32 - 1}
_SCALARS: dict[int, Schema] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32", **_INT32_RANGE},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32", **_INT32_RANGE},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32", **_INT32_RANGE},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int64", **_UINT32_RANGE},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int64", **_UINT32_RANGE},
    FieldDescriptor.TYPE_INT64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "integer", "format": "int64", "minimum": 0},
    FieldDescriptor.TYPE_FIXED64: {"type": "integer", "format": "int64", "minimum": 0},
}
# Well-known types have JSON forms of their own.
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string"},
    "google.protobuf.Empty": {"type": "object"},
}
ERROR = "ErrorResponse"


class _Components:
    """Collects a schema for every message and enum reached, keyed by full name."""

    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = {
            ERROR: {
                "type": "object",
                "required": ["error_code", "message"],
                "properties": {
                    "error_code": {"type": "string", "example": "INVALID_PARAMETER_VALUE"},
                    "message": {"type": "string"},
                },
            }
        }

    def ref(self, descriptor: Descriptor | EnumDescriptor) -> Schema:
        name = descriptor.full_name
        if name in _WELL_KNOWN:
            return _WELL_KNOWN[name]
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder first: messages may refer to themselves
            if isinstance(descriptor, EnumDescriptor):
                self.schemas[name] = {
                    "type": "string",
                    "enum": [v.name for v in descriptor.values],
                }
            else:
                self.schemas[name] = self.message(descriptor)
        return {"$ref": f"#/components/schemas/{name}"}

    def field(self, field: FieldDescriptor) -> Schema:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self.field_value(value)}
        schema = self.field_value(field)
        return {"type": "array", "items": schema} if field.is_repeated else schema

    def field_value(self, field: FieldDescriptor) -> Schema:
        if field.message_type is not None:
            return self.ref(field.message_type)
        if field.enum_type is not None:
            return self.ref(field.enum_type)
        return dict(_SCALARS[field.type])

    def message(self, descriptor: Descriptor, leave_out: Iterable[str] = ()) -> Schema:
        skipped = set(leave_out)
        fields = [f for f in descriptor.fields if f.name not in skipped]
        schema: Schema = {
            "type": "object",
            "properties": {f.name: self.field(f) for f in fields},
        }
        required = [f.name for f in fields if _required(f)]
        if required:
            schema["required"] = required
        return schema


def _required(field: FieldDescriptor) -> bool:
    return bool(field.GetOptions().Extensions[databricks_pb2.validate_required])


def _query_parameters(
    components: _Components, descriptor: Descriptor, prefix: str, depth: int
) -> list[Schema]:
    """GET requests take their fields from the query, nested ones by dotted names."""
    parameters: list[Schema] = []
    for field in descriptor.fields:
        name = prefix + field.name
        message_type = field.message_type
        if message_type is not None:
            if not field.is_repeated and depth < 3 and message_type.full_name not in _WELL_KNOWN:
                parameters += _query_parameters(components, message_type, name + ".", depth + 1)
            continue
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "schema": components.field(field),
                **({"style": "form", "explode": True} if field.is_repeated else {}),
            }
        )
    return parameters


def _operation(components: _Components, route: Route) -> Schema:
    request = route.request_type
    path_fields = route.path_fields
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": components.field(request.fields_by_name[name]),
        }
        for name in path_fields
    ]
    operation: Schema = {
        "operationId": route.rpc.name,
        "summary": route.title,
        "tags": [route.rpc.containing_service.name],
    }
    error = {
        "description": "An error, as MLflow's server reports it",
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR}"}}},
    }
    if route.method == "GET":
        parameters += _query_parameters(components, request, "", 0)
    else:
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": components.message(request, path_fields)}},
        }
    operation["parameters"] = parameters
    operation["responses"] = {
        "200": {
            "description": "Success",
            "content": {"application/json": {"schema": components.ref(route.response_type)}},
        },
        "default": error,
    }
    return operation


def document(routes: list[Route], title: str = "MLflow webhooks") -> Schema:
    components = _Components()
    paths: dict[str, Schema] = {}
    for route in routes:
        path = route.prefixed()[0]
        paths.setdefault(path, {})[route.method.lower()] = _operation(components, route)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": "2.0",
            "description": (
                "MLflow-compatible REST API, made from the service protos. Every path is also "
                "served under /ajax-api/2.0 and without a prefix. Request fields may use proto "
                "names or JSON (camelCase) names; enums are given by name."
            ),
        },
        "paths": paths,
        "components": {"schemas": components.schemas},
    }

"""JSON to request messages and response messages to JSON the way MLflow's server does it, and
errors as MLflow's `{"error_code", "message"}` bodies."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterable, Mapping
from json.encoder import encode_basestring_ascii as _string  # C, as json.dumps uses
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from mlflow_webhooks.server.errors import ServiceError

# gRPC status name -> (HTTP status, MLflow error_code). server.errors.Code is named after these,
# so a new Code needs no line here. Client mistakes stay 4xx even where MLflow says 5xx.
BY_GRPC_STATUS: dict[str, tuple[int, str]] = {
    "CANCELLED": (499, "CANCELLED"),
    "UNKNOWN": (500, "INTERNAL_ERROR"),
    "INVALID_ARGUMENT": (400, "INVALID_PARAMETER_VALUE"),
    "DEADLINE_EXCEEDED": (504, "DEADLINE_EXCEEDED"),
    "NOT_FOUND": (404, "RESOURCE_DOES_NOT_EXIST"),
    "ALREADY_EXISTS": (400, "RESOURCE_ALREADY_EXISTS"),
    "PERMISSION_DENIED": (403, "PERMISSION_DENIED"),
    "RESOURCE_EXHAUSTED": (429, "RESOURCE_EXHAUSTED"),
    "FAILED_PRECONDITION": (400, "INVALID_STATE"),
    "ABORTED": (409, "ABORTED"),
    "OUT_OF_RANGE": (400, "INVALID_PARAMETER_VALUE"),
    "UNIMPLEMENTED": (501, "NOT_IMPLEMENTED"),
    "INTERNAL": (500, "INTERNAL_ERROR"),
    "UNAVAILABLE": (503, "TEMPORARILY_UNAVAILABLE"),
    "DATA_LOSS": (500, "DATA_LOSS"),
    "UNAUTHENTICATED": (401, "UNAUTHENTICATED"),
}

_INT64 = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_SINT64,
    }
)
_JSON_VALUES = frozenset(
    {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}
)


class Failure(Exception):
    """An answer other than 200: HTTP status, MLflow error_code and a message for people."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.headers = dict(headers or {})

    @classmethod
    def of(cls, error: ServiceError) -> Failure:
        status, error_code = BY_GRPC_STATUS[error.code.value]
        return cls(status, error_code, error.message)

    def body(self) -> dict[str, str]:
        return {"error_code": self.error_code, "message": self.message}


def invalid(message: str) -> Failure:
    return Failure(400, "INVALID_PARAMETER_VALUE", message)


# ---- requests ----------------------------------------------------------------------------


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    """A JSON number as a double; one out of a double's range (1e999) is refused here, as
    it would otherwise become infinity, which JSON cannot carry on to a receiver."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text} is out of range (at most about 1.8e308)")
    return value


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of a request body; an empty body is an empty object, as in MLflow."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite)
    except (ValueError, RecursionError) as e:
        message = f"The request body is not valid JSON: {e}"
        raise Failure(400, "MALFORMED_REQUEST", message) from None
    if not isinstance(value, dict):
        raise Failure(
            400,
            "MALFORMED_REQUEST",
            f"The request body must be a JSON object, not {type(value).__name__}.",
        )
    return value


@functools.cache
def _fields(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    """A message's fields by proto name and by JSON name: requests may use either."""
    by_name = {f.json_name: f for f in descriptor.fields}
    by_name.update(descriptor.fields_by_name)
    return by_name


def _descends(field: FieldDescriptor) -> bool:
    """Whether the field's JSON form is an object of the message's own fields (well-known types
    such as Struct or Timestamp have JSON forms of their own)."""
    message_type = field.message_type
    return message_type is not None and not message_type.full_name.startswith("google.protobuf.")


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _known(descriptor: Descriptor, value: dict[str, Any]) -> dict[str, Any]:
    """`value` without the keys the message does not have, at every depth. json_format's own
    ignore_unknown_fields would also ignore unknown enum names, and those must be refused."""
    kept: dict[str, Any] = {}
    for key, item in value.items():
        field = _fields(descriptor).get(key)
        if field is None:
            continue
        if field.enum_type is not None:
            _names_or_integers(field, item)
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            if _descends(value_field) and isinstance(item, dict):
                item = {k: _known_item(value_field, v) for k, v in item.items()}
        elif _descends(field):
            if field.is_repeated and isinstance(item, list):
                item = [_known_item(field, v) for v in item]
            else:
                item = _known_item(field, item)
        kept[key] = item
    return kept


def _names_or_integers(field: FieldDescriptor, item: Any) -> None:
    """json_format takes true as the enum value 1, because bool is an int in Python, and
    7.0 as the value 7: an enum is a name or an integer."""
    if any(isinstance(v, bool | float) for v in (item if isinstance(item, list) else [item])):
        raise invalid(
            f"Invalid value for field '{field.name}': {json.dumps(item)}. "
            f"Use one of the names of {field.enum_type.full_name}."
        )


def _known_item(field: FieldDescriptor, item: Any) -> Any:
    return _known(field.message_type, item) if isinstance(item, dict) else item


def query_fields(descriptor: Descriptor, query: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Request fields from a query string: `key=v` per field, a repeated field by repeating
    its key, a nested field by a dotted key (`event.entity=MODEL_VERSION`)."""
    fields: dict[str, Any] = {}
    for key, text in query:
        target, message = fields, descriptor
        parts = key.split(".")
        for part in parts[:-1]:
            field = _fields(message).get(part)
            if field is None or field.is_repeated or not _descends(field):
                break
            target = target.setdefault(field.name, {})
            message = field.message_type
        else:
            field = _fields(message).get(parts[-1])
            if field is None or _is_map(field) or field.message_type is not None:
                continue
            value = _query_scalar(field, key, text)
            if field.is_repeated:
                target.setdefault(field.name, []).append(value)
            else:
                # The first value counts, as in MLflow's server.
                target.setdefault(field.name, value)
    return fields


def _query_scalar(field: FieldDescriptor, key: str, text: str) -> Any:
    if field.type != FieldDescriptor.TYPE_BOOL:
        return text  # json_format parses numbers and enum names from strings
    if text.lower() not in ("true", "false"):
        raise invalid(f"Invalid boolean value {text!r} for parameter '{key}': use true or false.")
    return text.lower() == "true"


def to_message(
    message_class: type[Message], fields: dict[str, Any], path: Mapping[str, str]
) -> Message:
    """The request message from JSON fields and path fields; the path wins."""
    descriptor = message_class.DESCRIPTOR
    if not fields and _strings_only(descriptor, tuple(path)):
        # A GET by id: the message is its path's strings, as ParseDict would make it (which
        # is a tenth of such a call's cost); anything unusual takes the general way below.
        try:
            return message_class(**path)
        except (ValueError, TypeError):
            pass
    given = dict(fields) if path else fields
    for name, value in path.items():
        given.pop(descriptor.fields_by_name[name].json_name, None)
        given[name] = value
    if _plain(descriptor, given):
        try:
            return message_class(**given)
        except (ValueError, TypeError, OverflowError):
            pass  # out of range, not UTF-8, an unknown enum name: ParseDict words it
    fields = _known(descriptor, fields)
    for name, value in path.items():
        field = descriptor.fields_by_name[name]
        fields.pop(field.json_name, None)
        fields[name] = value
    try:
        return json_format.ParseDict(fields, message_class())
    except json_format.ParseError as e:
        raise invalid(f"Invalid request: {str(e).rstrip('.')}.") from None
    except RecursionError:
        raise invalid("Invalid request: the JSON is nested too deeply.") from None
    except OverflowError:
        # Struct keeps numbers as doubles: an integer of hundreds of digits does not fit.
        raise invalid(
            "Invalid request: a number is too large (JSON numbers here are doubles, at most "
            "about 1.8e308)."
        ) from None


# A request's JSON is "plain" when it names only the message's own fields by their proto
# names, with values of exactly their JSON types: strings, integers (not booleans), booleans,
# numbers, enum names, objects of nested messages and of Struct fields, lists of those. The
# message's constructor (C) then makes exactly what ParseDict (Python) would, in a third of
# the time: 93 to 30 us for a publishEvent body with its JSON parse, the hottest request
# (in-process, docs/benchmarks.md). Anything else (JSON names, unknown keys, nulls, enum
# numbers, int64 as strings, maps, bytes, other well-known types) takes ParseDict's way,
# which also words every refusal; so does whatever the constructor refuses.
_INTEGERS = (
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_SFIXED32,
    *_INT64,
)
# The JSON types (exactly: type(True) is bool, not int) a plain value of a field may have.
_PLAIN_TYPES: dict[int, tuple[type, ...]] = {
    FieldDescriptor.TYPE_STRING: (str,),
    FieldDescriptor.TYPE_ENUM: (str,),  # by name
    FieldDescriptor.TYPE_BOOL: (bool,),
    FieldDescriptor.TYPE_FLOAT: (int, float),
    FieldDescriptor.TYPE_DOUBLE: (int, float),
    **{kind: (int,) for kind in _INTEGERS},
}


@functools.cache
def _plain_fields(
    descriptor: Descriptor,
) -> dict[str, tuple[tuple[type, ...], Descriptor | None, bool]] | None:
    """Each field that can be plain, by proto name: its value's types, the message to check
    it against (None: not a nested message) and whether it is repeated. None for a message
    with a oneof (ParseDict refuses two members of one, a constructor keeps the last)."""
    if descriptor.oneofs:
        return None
    plain: dict[str, tuple[tuple[type, ...], Descriptor | None, bool]] = {}
    for field in descriptor.fields:
        if _is_map(field):
            continue
        if field.message_type is not None:
            if field.message_type.full_name == "google.protobuf.Struct":
                plain[field.name] = ((dict,), None, field.is_repeated)
            elif _descends(field):
                plain[field.name] = ((dict,), field.message_type, field.is_repeated)
        elif field.type in _PLAIN_TYPES:
            plain[field.name] = (_PLAIN_TYPES[field.type], None, field.is_repeated)
    return plain


def _plain(descriptor: Descriptor, fields: dict[str, Any]) -> bool:
    plain = _plain_fields(descriptor)
    if plain is None:
        return False
    for key, value in fields.items():
        known = plain.get(key)
        if known is None:
            return False
        types, nested, repeated = known
        if repeated and type(value) is not list:
            return False
        for item in value if repeated else (value,):
            if type(item) not in types or (nested is not None and not _plain(nested, item)):
                return False
    return True


@functools.cache
def _strings_only(descriptor: Descriptor, names: tuple[str, ...]) -> bool:
    return all(
        descriptor.fields_by_name[name].type == FieldDescriptor.TYPE_STRING
        and not descriptor.fields_by_name[name].is_repeated
        for name in names
    )


# ---- responses ---------------------------------------------------------------------------


def to_json(message: Message) -> bytes:
    """As MLflow's server renders it: proto field names, enums by name, unset fields left out,
    int64 as JSON numbers (json_format makes them strings), indented by two."""
    return indented(to_dict(message)).encode()


def indented(value: Any) -> str:
    """json.dumps(value, indent=2), the same text, for the JSON values responses hold: with
    an indent, json.dumps leaves its C encoder for a general one written in Python, which
    took longer than everything else in rendering a response."""
    chunks: list[str] = []
    _indent(value, "\n", chunks)
    return "".join(chunks)


def _indent(value: Any, newline: str, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = newline + "  "
        separator = "{" + inner
        for key, item in value.items():
            out.append(separator)
            out.append(_string(key) if isinstance(key, str) else json.dumps(str(key)))
            out.append(": ")
            _indent(item, inner, out)
            separator = "," + inner
        out.append(newline + "}")
    elif isinstance(value, list):
        if not value:
            out.append("[]")
            return
        inner = newline + "  "
        separator = "[" + inner
        for item in value:
            out.append(separator)
            _indent(item, inner, out)
            separator = "," + inner
        out.append(newline + "]")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif value is None:
        out.append("null")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    else:  # floats, and anything else json.dumps knows
        out.append(json.dumps(value))


def to_dict(message: Message) -> dict[str, Any]:
    """The message as MLflow's JSON object. Messages made only of strings, integers, bools,
    doubles, enums and such messages go through a converter compiled once per message type from its
    descriptor (json_format's reflection on every field of every response was a third of a
    GET's cost); any other message through json_format."""
    convert = compiled(message.DESCRIPTOR)
    if convert is not None:
        return convert(message)
    fields = json_format.MessageToDict(message, preserving_proto_field_name=True)
    _numbers(message.DESCRIPTOR, fields)
    return fields


Convert = Callable[[Message], dict[str, Any]]
_PLAIN = frozenset(
    {
        FieldDescriptor.TYPE_STRING,
        FieldDescriptor.TYPE_BOOL,
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_SFIXED32,
        *_INT64,
    }
)


@functools.cache
def compiled(descriptor: Descriptor) -> Convert | None:
    """A converter for `descriptor`'s messages, or None when one of its fields (at any depth)
    is of a kind left to json_format (32-bit floats, bytes, maps, well-known types)."""
    if descriptor in _compiling:
        return None  # a message type that contains itself: json_format handles it
    _compiling.add(descriptor)
    try:
        return _compile(descriptor)
    finally:
        _compiling.discard(descriptor)


_compiling: set[Descriptor] = set()


def _compile(descriptor: Descriptor) -> Convert | None:
    by_number: dict[int, Callable[[Any], Any]] = {}
    for field in descriptor.fields:
        one = _value_converter(field)
        if one is None:
            return None
        by_number[field.number] = (
            (lambda values, one=one: [one(v) for v in values]) if field.is_repeated else one
        )

    def convert(message: Message) -> dict[str, Any]:
        # ListFields: the set fields in field-number order, as json_format writes them.
        return {field.name: by_number[field.number](value) for field, value in message.ListFields()}

    return convert


def _double(value: float) -> float | str:
    """A double as json_format writes it: itself, or ProtoJSON's names for the three values
    JSON has no number for."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _value_converter(field: FieldDescriptor) -> Callable[[Any], Any] | None:
    if field.type in _PLAIN:
        return _same
    if field.type == FieldDescriptor.TYPE_DOUBLE:
        return _double
    if field.type == FieldDescriptor.TYPE_ENUM:
        names = {v.number: v.name for v in field.enum_type.values}
        # An unknown number is written as the number, as json_format does.
        return lambda number: names.get(number, number)
    if field.type == FieldDescriptor.TYPE_MESSAGE and _descends(field) and not _is_map(field):
        return compiled(field.message_type)
    return None


def _same(value: Any) -> Any:
    return value


def _numbers(descriptor: Descriptor, fields: dict[str, Any]) -> None:
    for field in descriptor.fields:
        if field.name not in fields:
            continue
        value = fields[field.name]
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            fields[field.name] = {k: _number(value_field, v) for k, v in value.items()}
        elif field.is_repeated:
            fields[field.name] = [_number(field, v) for v in value]
        else:
            fields[field.name] = _number(field, value)


def _number(field: FieldDescriptor, value: Any) -> Any:
    if field.type in _INT64:
        return int(value)
    if field.message_type is None:
        return value
    if field.message_type.full_name in _JSON_VALUES:
        return _integral(value)
    if _descends(field):
        _numbers(field.message_type, value)
    return value


def _integral(value: Any) -> Any:
    """Struct keeps every number as a double; a whole one goes back out as an integer, so
    integers sent in stay integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value

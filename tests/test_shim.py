"""The JSON shim's own behaviour: what it does with bad requests, the forms of request it
accepts, how it renders responses, /health and /openapi.json. A server of its own, so the
store can be checked to hold exactly what succeeded."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest

from mlflow_webhooks.generated import (
    databricks_pb2,
    webhook_delivery_pb2,
    webhooks_pb2,
    webhooks_pb2_grpc,
)
from mlflow_webhooks.generated import webhooks_pb2 as pb
from mlflow_webhooks.server.errors import Code
from mlflow_webhooks.server.shim import mapping
from tests.conftest import PERMISSIVE
from tests.support import ServerProcess, own_server, run_server

API = "/api/2.0/mlflow/webhooks"
VALID = {
    "name": "valid",
    "url": "https://example.com/hook",
    "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}],
}


@pytest.fixture(scope="module")
def shim_server(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("shim-server")
    proc = own_server(workdir)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
async def http(shim_server: ServerProcess) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        shim_server.http_url, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:
        yield session


@pytest.fixture(scope="module")
async def grpc_stub(
    shim_server: ServerProcess,
) -> AsyncIterator[webhooks_pb2_grpc.WebhookServiceStub]:
    async with grpc.aio.insecure_channel(shim_server.grpc_address) as channel:
        yield webhooks_pb2_grpc.WebhookServiceStub(channel)


async def stored_ids(stub: webhooks_pb2_grpc.WebhookServiceStub) -> set[str]:
    """Every webhook in the store, read over gRPC."""
    ids: list[str] = []
    token = ""
    for _ in range(100):
        page = await stub.listWebhooks(pb.ListWebhooks(max_results=1000, page_token=token))
        ids += [w.webhook_id for w in page.webhooks]
        token = page.next_page_token
        if not token:
            break
    assert len(ids) == len(set(ids))
    return set(ids)


async def send(
    http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> tuple[int, Any, aiohttp.ClientResponse]:
    if "data" in kwargs:  # a body is taken as JSON only (415 otherwise)
        kwargs.setdefault("headers", {"Content-Type": "application/json"})
    async with http.request(method, path, **kwargs) as response:
        raw = await response.read()
        assert response.content_type == "application/json", raw[:200]
        return response.status, json.loads(raw), response


def with_field(**fields: Any) -> bytes:
    return json.dumps({**VALID, **fields}).encode()


TWO_MIB = 2 * 1024 * 1024

# (id, method, path, body, expected status, error_code, a part of the message)
BAD_REQUESTS = [
    ("malformed-json", "POST", API, b'{"name": "x",', 400, "MALFORMED_REQUEST", "JSON"),
    ("json-array", "POST", API, b"[1, 2]", 400, "MALFORMED_REQUEST", "object"),
    ("json-string", "POST", API, b'"x"', 400, "MALFORMED_REQUEST", "object"),
    ("json-nan", "POST", API, b'{"name": NaN}', 400, "MALFORMED_REQUEST", "NaN"),
    ("not-utf8", "POST", API, b'{"name": "\xff\xfe"}', 400, "MALFORMED_REQUEST", "JSON"),
    ("deep-nesting", "POST", API, b"[" * 100_000 + b"]" * 100_000, 400, "MALFORMED_REQUEST", ""),
    (
        "huge-integer",
        "POST",
        API,
        b'{"status": ' + b"9" * 5000 + b"}",
        400,
        "MALFORMED_REQUEST",
        "",
    ),
    ("name-number", "POST", API, with_field(name=5), 400, "INVALID_PARAMETER_VALUE", "name"),
    ("name-list", "POST", API, with_field(name=["a"]), 400, "INVALID_PARAMETER_VALUE", "name"),
    (
        "events-object",
        "POST",
        API,
        with_field(events={"entity": "MODEL_VERSION"}),
        400,
        "INVALID_PARAMETER_VALUE",
        "events",
    ),
    (
        "event-string",
        "POST",
        API,
        with_field(events=["model_version.created"]),
        400,
        "INVALID_PARAMETER_VALUE",
        "events",
    ),
    (
        "entity-unknown-name",
        "POST",
        API,
        with_field(events=[{"entity": "MODEL", "action": "CREATED"}]),
        400,
        "INVALID_PARAMETER_VALUE",
        "entity",
    ),
    (
        "entity-lower-case",
        "POST",
        API,
        with_field(events=[{"entity": "model_version", "action": "created"}]),
        400,
        "INVALID_PARAMETER_VALUE",
        "entity",
    ),
    (
        "entity-number-out-of-range",
        "POST",
        API,
        with_field(events=[{"entity": 99, "action": 1}]),
        400,
        "INVALID_PARAMETER_VALUE",
        "entity",
    ),
    (
        "status-lower-case",
        "POST",
        API,
        with_field(status="disabled"),
        400,
        "INVALID_PARAMETER_VALUE",
        "status",
    ),
    ("status-bool", "POST", API, with_field(status=True), 400, "INVALID_PARAMETER_VALUE", "status"),
    (
        "unpaired-surrogate",
        "POST",
        API,
        b'{"name": "a\\ud800"}',
        400,
        "INVALID_PARAMETER_VALUE",
        "name",
    ),
    (
        "two-mib-field",
        "POST",
        API,
        with_field(description="d" * TWO_MIB),
        413,
        "RESOURCE_EXHAUSTED",
        "1048576",
    ),
    ("empty-body", "POST", API, b"", 400, "INVALID_PARAMETER_VALUE", "name"),
    ("empty-object", "POST", API, b"{}", 400, "INVALID_PARAMETER_VALUE", "name"),
    (
        "max-results-word",
        "GET",
        API + "?max_results=ten",
        None,
        400,
        "INVALID_PARAMETER_VALUE",
        "max_results",
    ),
    (
        "max-results-int32-overflow",
        "GET",
        API + "?max_results=4294967296",
        None,
        400,
        "INVALID_PARAMETER_VALUE",
        "max_results",
    ),
    (
        "max-results-out-of-range",
        "GET",
        API + "?max_results=5000",
        None,
        400,
        "INVALID_PARAMETER_VALUE",
        "max_results",
    ),
    (
        "bad-page-token",
        "GET",
        API + "?page_token=%7B%7D",
        None,
        400,
        "INVALID_PARAMETER_VALUE",
        "page_token",
    ),
    (
        "update-unknown-id",
        "PATCH",
        API + "/no-such-id",
        b'{"name": "x"}',
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "no-such-id",
    ),
    (
        "test-bad-event",
        "POST",
        API + "/no-such-id/test",
        b'{"event": {"entity": "NOPE"}}',
        400,
        "INVALID_PARAMETER_VALUE",
        "entity",
    ),
    (
        "unknown-path",
        "GET",
        "/api/2.0/mlflow/nothing-here",
        None,
        404,
        "ENDPOINT_NOT_FOUND",
        "/api/2.0/mlflow/nothing-here",
    ),
    ("unknown-version", "GET", "/api/3.0/mlflow/webhooks", None, 404, "ENDPOINT_NOT_FOUND", ""),
    ("wrong-method", "PUT", API, json.dumps(VALID).encode(), 405, "ENDPOINT_NOT_FOUND", "PUT"),
    ("wrong-method-on-id", "POST", API + "/some-id", b"{}", 405, "ENDPOINT_NOT_FOUND", "POST"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error_code", "mentions"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
async def test_bad_request_is_4xx_and_stores_nothing(
    http, grpc_stub, method, path, body, status, error_code, mentions
):
    before = await stored_ids(grpc_stub)
    got_status, reply, response = await send(
        http, method, path, data=body, headers={"Content-Type": "application/json"}
    )
    assert (got_status, reply["error_code"]) == (status, error_code), reply
    assert set(reply) == {"error_code", "message"}
    assert mentions in reply["message"] and reply["message"]
    if status == 405:
        allowed = {"GET", "POST"} if path == API else {"GET", "PATCH", "DELETE"}
        assert set(response.headers["Allow"].split(",")) == allowed
    assert await stored_ids(grpc_stub) == before


async def test_store_holds_exactly_what_succeeded(http, grpc_stub):
    before = await stored_ids(grpc_stub)
    made = set()
    for body in (
        with_field(name="plain"),
        # Enums by number, JSON names, unknown fields ignored.
        json.dumps(
            {**VALID, "name": "numbers", "status": 2, "events": [{"entity": 2, "action": "1"}]}
        ).encode(),
        with_field(name="extras", unknown_field={"nested": [1, 2]}, alsoUnknown=True),
    ):
        status, reply, _ = await send(http, "POST", API, data=body)
        assert status == 200, reply
        made.add(reply["webhook"]["webhook_id"])
    for body in (with_field(name="bad name"), with_field(url="ftp://example.com"), b"{"):
        status, reply, _ = await send(http, "POST", API, data=body)
        assert status == 400, reply
    assert await stored_ids(grpc_stub) == before | made


async def test_response_renders_like_mlflow(http):
    status, reply, _ = await send(
        http, "POST", API, data=with_field(name="render", description="d")
    )
    assert status == 200
    hook = reply["webhook"]
    # int64 timestamps are JSON numbers, enums are names, field names are proto names.
    assert isinstance(hook["creation_timestamp"], int)
    assert isinstance(hook["last_updated_timestamp"], int)
    assert hook["status"] == "ACTIVE"
    assert hook["events"] == [{"entity": "MODEL_VERSION", "action": "CREATED"}]
    assert set(hook) == {
        "webhook_id",
        "name",
        "description",
        "url",
        "events",
        "status",
        "creation_timestamp",
        "last_updated_timestamp",
    }
    # MLflow's server indents by two.
    raw = await (await http.get(f"{API}/{hook['webhook_id']}")).read()
    assert raw == json.dumps({"webhook": hook}, indent=2).encode()
    # Unset fields are left out: an empty response is an empty object.
    status, reply, _ = await send(http, "DELETE", f"{API}/{hook['webhook_id']}")
    assert (status, reply) == (200, {})


async def test_json_names_and_path_fields(http):
    status, reply, _ = await send(http, "POST", API, data=with_field(name="json-names"))
    hook_id = reply["webhook"]["webhook_id"]
    # The path's webhook_id wins over one in the body, in either spelling.
    status, reply, _ = await send(
        http,
        "PATCH",
        f"/ajax-api/2.0/mlflow/webhooks/{hook_id}",
        json={"webhookId": "someone-else", "name": "renamed"},
    )
    assert status == 200, reply
    assert reply["webhook"]["webhook_id"] == hook_id
    assert reply["webhook"]["name"] == "renamed"
    status, reply, _ = await send(http, "GET", f"/mlflow/webhooks/{hook_id}")
    assert reply["webhook"]["name"] == "renamed"
    # JSON names in the query string too.
    status, reply, _ = await send(http, "GET", API, params={"maxResults": "1"})
    assert status == 200 and len(reply["webhooks"]) == 1


async def test_list_query_parameters_page_through(http, grpc_stub):
    everything = await stored_ids(grpc_stub)
    for i in range(3):
        await send(http, "POST", API, data=with_field(name=f"paged-{i}"))
    everything = await stored_ids(grpc_stub)
    seen: list[str] = []
    params = {"max_results": "2"}
    for _ in range(len(everything)):
        status, reply, _ = await send(http, "GET", API, params=params)
        assert status == 200, reply
        assert 1 <= len(reply["webhooks"]) <= 2
        seen += [w["webhook_id"] for w in reply["webhooks"]]
        if "next_page_token" not in reply:
            break
        params = {"max_results": "2", "page_token": reply["next_page_token"]}
    assert len(seen) == len(set(seen)) and set(seen) == everything
    # Newest first: the three just made lead.
    status, reply, _ = await send(http, "GET", API, params={"max_results": "3"})
    assert [w["name"] for w in reply["webhooks"]] == ["paged-2", "paged-1", "paged-0"]


async def test_all_three_prefixes_serve_the_same(http):
    _, reply, _ = await send(http, "POST", "/mlflow/webhooks", data=with_field(name="bare"))
    hook_id = reply["webhook"]["webhook_id"]
    answers = [
        (await send(http, "GET", f"{prefix}/mlflow/webhooks/{hook_id}"))[:2]
        for prefix in ("/api/2.0", "/ajax-api/2.0", "")
    ]
    assert answers[0] == answers[1] == answers[2] == (200, reply)


async def test_health(http):
    status, reply, _ = await send(http, "GET", "/health")
    assert (status, reply) == (200, {"status": "serving"})


async def test_openapi_covers_every_route(http):
    status, doc, _ = await send(http, "GET", "/openapi.json")
    assert status == 200
    assert doc["openapi"].startswith("3.")
    for proto in (webhooks_pb2, webhook_delivery_pb2):
        for service in proto.DESCRIPTOR.services_by_name.values():
            for rpc in service.methods:
                for endpoint in rpc.GetOptions().Extensions[databricks_pb2.rpc].endpoints:
                    path = doc["paths"][f"/api/{endpoint.since.major}.0{endpoint.path}"]
                    operation = path[endpoint.method.lower()]
                    assert operation["operationId"] == rpc.name
                    assert {"200", "default"} <= set(operation["responses"])
    get_one = doc["paths"]["/api/2.0/mlflow/webhooks/{webhook_id}"]["get"]
    assert {"name": "webhook_id", "in": "path", "required": True} | {
        "schema": {"type": "string"}
    } in get_one["parameters"]
    listing = doc["paths"]["/api/2.0/mlflow/webhooks"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"max_results", "page_token"}
    create = doc["paths"]["/api/2.0/mlflow/webhooks"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"name", "url", "events"}
    schemas = doc["components"]["schemas"]
    assert schemas["mlflow.WebhookEntity"]["enum"] == list(webhooks_pb2.WebhookEntity.keys())
    assert schemas["mlflow.Webhook"]["properties"]["creation_timestamp"]["type"] == "integer"
    assert set(schemas["ErrorResponse"]["properties"]) == {"error_code", "message"}
    update = doc["paths"]["/api/2.0/mlflow/webhooks/{webhook_id}"]["patch"]
    update_body = update["requestBody"]["content"]["application/json"]["schema"]
    assert "webhook_id" not in update_body["properties"]


def test_query_fields_repeated_and_nested():
    """Query strings for GETs: a repeated field by repeating its key, nested fields dotted.
    The seed's GETs have neither, so the mapping is checked on its own here."""
    fields = mapping.query_fields(
        pb.TestWebhook.DESCRIPTOR,
        [
            ("webhookId", "w"),
            ("event.entity", "MODEL_VERSION"),
            ("event.action", "2"),
            ("event.nope", "x"),
            ("nope.entity", "x"),
        ],
    )
    request = mapping.to_message(pb.TestWebhook, fields, {})
    assert request == pb.TestWebhook(
        webhook_id="w", event=pb.WebhookEvent(entity=pb.MODEL_VERSION, action=pb.UPDATED)
    )
    repeated = mapping.query_fields(
        webhook_delivery_pb2.PublishEvent.Response.DESCRIPTOR,
        [("delivery_ids", "a"), ("event_id", "e"), ("deliveryIds", "b"), ("event_id", "f")],
    )
    # The first value of a singular field counts, as in MLflow's server.
    assert repeated == {"delivery_ids": ["a", "b"], "event_id": "e"}


def test_every_error_code_has_an_http_form():
    """A new server.errors.Code needs no shim change: every gRPC status name is mapped."""
    names = {code.name for code in grpc.StatusCode if code != grpc.StatusCode.OK}
    assert set(mapping.BY_GRPC_STATUS) == names
    assert {code.value for code in Code} <= names


async def test_max_request_bytes_from_the_environment(workdir):
    server = run_server(
        workdir,
        *PERMISSIVE,
        "--database-url",
        f"sqlite:///{workdir}/webhooks.db",
        env={"WEBHOOKS_MAX_REQUEST_BYTES": "2000"},
    )
    try:
        async with aiohttp.ClientSession(server.http_url) as http:
            status, reply, _ = await send(http, "POST", API, data=with_field(description="d" * 900))
            assert status == 200, reply
            status, reply, _ = await send(
                http, "POST", API, data=with_field(secret="s" * 1000, description="d" * 1000)
            )
            assert (status, reply["error_code"]) == (413, "RESOURCE_EXHAUSTED")
            assert "2000 bytes" in reply["message"]
    finally:
        server.stop()


def _filled(message: Any, depth: int = 0) -> Any:
    """`message` with every field set to something unlike its default, repeated fields twice,
    an enum also as a number the enum does not name."""
    from google.protobuf.descriptor import FieldDescriptor as F

    for field in message.DESCRIPTOR.fields:
        if field.type == F.TYPE_MESSAGE:
            if field.message_type.full_name == "google.protobuf.Struct":
                getattr(message, field.name).update({"n": 3, "x": [1.5, "a", None]})
                continue
            if depth > 3 or field.message_type.GetOptions().map_entry:
                continue
            if field.is_repeated:
                for _ in range(2):
                    _filled(getattr(message, field.name).add(), depth + 1)
            else:
                _filled(getattr(message, field.name), depth + 1)
            continue
        if field.type == F.TYPE_ENUM:
            values = [field.enum_type.values[-1].number, 99]
        elif field.type == F.TYPE_STRING:
            values = ['é "quoted"', ""]
        elif field.type == F.TYPE_BOOL:
            values = [True, False]
        elif field.type in (F.TYPE_FLOAT, F.TYPE_DOUBLE):
            values = [0.5, 2.0]
        elif field.type == F.TYPE_BYTES:
            values = [b"\x00\xff", b""]
        else:
            values = [2**40 if field.type in mapping._INT64 else 7, 0]
        if field.is_repeated:
            getattr(message, field.name).extend(values)
        else:
            setattr(message, field.name, values[0])
    return message


@pytest.mark.parametrize(
    "descriptor",
    [
        method.output_type
        for module in (webhooks_pb2, webhook_delivery_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ],
    ids=lambda d: d.full_name,
)
def test_compiled_responses_are_exactly_json_format_s(descriptor: Any) -> None:
    from google.protobuf import json_format, message_factory

    message = _filled(message_factory.GetMessageClass(descriptor)())
    assert mapping.compiled(descriptor) is not None
    expected = json_format.MessageToDict(message, preserving_proto_field_name=True)
    mapping._numbers(descriptor, expected)
    assert json.dumps(mapping.to_dict(message), indent=2) == json.dumps(expected, indent=2)


@pytest.mark.parametrize(
    "value",
    [
        {},
        [],
        {"a": [], "b": {}},
        [1, 2.5, None, True, False, 'x\u00e9"\\\n\t', {"k": [[]]}],
        {"n": -3, "inf": float("inf"), "nan": float("nan"), "e": 1e20, "big": 2**70},
        "plain",
        {"nested": {"deep": [{"x": 1}, {}], "s": "\u2028"}},
    ],
)
def test_indented_is_json_dumps_with_indent_2(value: Any) -> None:
    assert mapping.indented(value) == json.dumps(value, indent=2)


def test_a_get_by_id_makes_the_message_parse_dict_would() -> None:
    from google.protobuf import json_format

    path = {"webhook_id": "0f7c5e9a-4d47-4a0e-9d8e-0123456789ab"}
    made = mapping.to_message(pb.GetWebhook, {}, path)
    assert made == json_format.ParseDict(path, pb.GetWebhook())
    # What a protobuf string cannot hold still gets MLflow's 400, not a 500.
    with pytest.raises(mapping.Failure) as refused:
        mapping.to_message(pb.GetWebhook, {}, {"webhook_id": "\ud800"})
    assert refused.value.status == 400


REQUESTS = [
    method.input_type
    for module in (webhooks_pb2, webhook_delivery_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]


@pytest.mark.parametrize("descriptor", REQUESTS, ids=lambda d: d.full_name)
def test_requests_are_exactly_the_messages_parse_dict_makes(descriptor: Any) -> None:
    """Every request type, every field set, as JSON an MLflow client sends (int64 as
    numbers): the message made is ParseDict's, whichever way it is made."""
    from google.protobuf import json_format, message_factory

    message_class = message_factory.GetMessageClass(descriptor)
    fields = json_format.MessageToDict(_filled(message_class()), preserving_proto_field_name=True)
    mapping._numbers(descriptor, fields)
    expected = json_format.ParseDict(fields, message_class())
    assert mapping.to_message(message_class, fields, {}) == expected


def _made(message_class: Any, body: dict[str, Any], path: dict[str, str]) -> Any:
    try:
        return mapping.to_message(message_class, body, path)
    except mapping.Failure as refused:
        return (refused.status, refused.error_code, refused.message)


PUBLISH = {"event": {"entity": "MODEL_VERSION", "action": "CREATED"}, "data": {"name": "m"}}
PLAIN_OR_NOT = [
    (webhook_delivery_pb2.PublishEvent, PUBLISH, {}),
    (webhook_delivery_pb2.PublishEvent, {"event": {}, "data": {}}, {}),  # present, empty
    (webhook_delivery_pb2.PublishEvent, {**PUBLISH, "idempotency_key": "k-1"}, {}),
    (webhook_delivery_pb2.PublishEvent, {"data": {"a": [1, {"b": None}], "x": 2**70}}, {}),
    (webhook_delivery_pb2.PublishEvent, {"data": {"a": 10**400}}, {}),
    (webhook_delivery_pb2.PublishEvent, {"event": {"entity": "NOPE"}}, {}),
    (webhook_delivery_pb2.PublishEvent, {"event": {"entity": True}}, {}),
    (webhook_delivery_pb2.PublishEvent, {"event": {"entity": 1}}, {}),
    (webhook_delivery_pb2.PublishEvent, {"event": None, "data": {}}, {}),
    (webhook_delivery_pb2.PublishEvent, {"idempotency_key": "\ud800"}, {}),
    (webhook_delivery_pb2.PublishEvent, {"idempotencyKey": "k"}, {}),
    (webhook_delivery_pb2.PublishEvent, {**PUBLISH, "unknown": 1}, {}),
    (webhook_delivery_pb2.PublishEvent, {"data": [1]}, {}),
    (pb.ListWebhooks, {"max_results": 5}, {}),
    (pb.ListWebhooks, {"max_results": True}, {}),
    (pb.ListWebhooks, {"max_results": 2**40}, {}),
    (pb.ListWebhooks, {"max_results": "5"}, {}),
    (pb.ListWebhooks, {"max_results": 5.0}, {}),
    (pb.CreateWebhook, {"name": "n", "events": [PUBLISH["event"], {"entity": "PROMPT"}]}, {}),
    (pb.CreateWebhook, {"name": "n", "events": PUBLISH["event"]}, {}),
    (pb.CreateWebhook, {"name": "n", "events": [None]}, {}),
    (pb.CreateWebhook, {"name": "n", "secret": None, "status": "ACTIVE"}, {}),
    (pb.UpdateWebhook, {"webhook_id": "body", "name": "n"}, {"webhook_id": "path"}),
    (pb.UpdateWebhook, {"webhookId": "body", "name": "n"}, {"webhook_id": "path"}),
]


@pytest.mark.parametrize(("message_class", "body", "path"), PLAIN_OR_NOT)
def test_plain_requests_made_directly_are_what_parse_dict_makes(
    message_class: Any, body: dict[str, Any], path: dict[str, str], monkeypatch: Any
) -> None:
    """A request made by the message's constructor (plain JSON) is the message, or the
    refusal, that ParseDict's way makes of the same body."""
    direct = _made(message_class, body, path)
    monkeypatch.setattr(mapping, "_plain", lambda *_: False)
    assert direct == _made(message_class, body, path)


def test_the_hot_requests_are_plain() -> None:
    """The bodies MLflow's clients and the bridge send take the direct way."""
    assert mapping._plain(webhook_delivery_pb2.PublishEvent.DESCRIPTOR, PLAIN_OR_NOT[2][1])
    create = {"name": "n", "url": "https://x.example/h", "events": [PUBLISH["event"]]}
    assert mapping._plain(pb.CreateWebhook.DESCRIPTOR, {**create, "description": "d"})


@pytest.mark.parametrize("value", [0.25, 3.0, 1e300, -0.0, math.inf, -math.inf, math.nan])
def test_compiled_doubles_are_exactly_json_format_s(value: float) -> None:
    """Doubles, the three JSON has no number for included, come out as json_format's."""
    from google.protobuf import json_format

    from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb

    message = dpb.WebhookSettings(timeout_seconds=value)
    message.retry_schedule.delays_seconds.extend([value, 1.5])
    assert mapping.compiled(message.DESCRIPTOR) is not None
    expected = json_format.MessageToDict(message, preserving_proto_field_name=True)
    assert json.dumps(mapping.to_dict(message)) == json.dumps(expected)

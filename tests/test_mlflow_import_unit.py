"""The pure parts of `webhooksctl import-mlflow`: reading MLflow's webhook JSON, MLflow's
auth variables, and deciding what is in the service already. The import itself runs against
real servers in tests/test_mlflow_import.py."""

from __future__ import annotations

import base64

import pytest

from mlflow_webhooks.clients.python import mlflow_import as mi
from mlflow_webhooks.clients.python.mlflow_rest import (
    MlflowError,
    MlflowWebhook,
    auth_header,
    base_url,
    explain,
    request_headers,
)
from mlflow_webhooks.generated import webhooks_pb2 as pb


def mlflow_hook(name: str = "deploy", url: str = "https://ci.example.com/h", **kw) -> MlflowWebhook:
    data = {
        "webhook_id": kw.pop("webhook_id", f"id-{name}"),
        "name": name,
        "url": url,
        "events": kw.pop("events", [{"entity": "MODEL_VERSION", "action": "CREATED"}]),
        **kw,
    }
    return MlflowWebhook.from_json(data)


def service_hook(name: str, url: str, *events: tuple[int, int], webhook_id: str) -> pb.Webhook:
    return pb.Webhook(
        webhook_id=webhook_id,
        name=name,
        url=url,
        events=[pb.WebhookEvent(entity=e, action=a) for e, a in events],
    )


def test_from_json_reads_mlflow_defaults() -> None:
    # MLflow leaves fields at their default out: no description, and status ACTIVE.
    hook = mlflow_hook(events=[{"entity": "model_version_alias", "action": "created"}])
    assert hook.status == "ACTIVE"
    assert hook.description == ""
    assert hook.events == (("MODEL_VERSION_ALIAS", "CREATED"),)
    assert mlflow_hook(status="DISABLED", description="d").status == "DISABLED"


def test_from_json_without_a_field_is_a_clear_error() -> None:
    with pytest.raises(MlflowError, match="without 'url'"):
        MlflowWebhook.from_json({"webhook_id": "1", "name": "n", "events": []})


def test_keys_ignore_event_order_and_duplicates() -> None:
    ours = mlflow_hook(
        events=[
            {"entity": "MODEL_VERSION_TAG", "action": "SET"},
            {"entity": "MODEL_VERSION", "action": "CREATED"},
            {"entity": "MODEL_VERSION", "action": "CREATED"},
        ]
    )
    theirs = service_hook(
        "deploy",
        "https://ci.example.com/h",
        (pb.MODEL_VERSION, pb.CREATED),
        (pb.MODEL_VERSION_TAG, pb.SET),
        webhook_id="w1",
    )
    assert mi.mlflow_key(ours) == mi.service_key(theirs)


def test_plan_finds_what_the_service_holds_by_name_url_and_events() -> None:
    existing = [
        service_hook(
            "deploy", "https://ci.example.com/h", (pb.MODEL_VERSION, pb.CREATED), webhook_id="w1"
        ),
        # Same name and URL, other events: a different webhook.
        service_hook(
            "audit", "https://a.example.com/h", (pb.REGISTERED_MODEL, pb.CREATED), webhook_id="w2"
        ),
    ]
    outcomes = mi.plan(
        [
            mlflow_hook("deploy"),
            mlflow_hook("audit", "https://a.example.com/h"),
            mlflow_hook("new"),
        ],
        existing,
    )
    assert [(o.source.name, o.result, o.webhook_id) for o in outcomes] == [
        ("deploy", mi.EXISTS, "w1"),
        ("audit", mi.WOULD_CREATE, ""),
        ("new", mi.WOULD_CREATE, ""),
    ]
    assert not any(o.needs_secret for o in outcomes)


def test_to_events_names_an_event_this_client_does_not_know() -> None:
    hook = mlflow_hook(events=[{"entity": "EXPERIMENT", "action": "CREATED"}])
    with pytest.raises(ValueError, match=r"experiment\.created"):
        mi.to_events(hook)


def test_auth_header_as_mlflow_sends_it() -> None:
    assert auth_header({}) is None
    assert auth_header({"MLFLOW_TRACKING_TOKEN": "t0k"}) == "Bearer t0k"
    basic = auth_header(
        {
            "MLFLOW_TRACKING_USERNAME": "ana",
            "MLFLOW_TRACKING_PASSWORD": "pw:x",
            "MLFLOW_TRACKING_TOKEN": "t0k",  # username and password win, as in MLflow
        }
    )
    assert basic == "Basic " + base64.b64encode(b"ana:pw:x").decode()
    # A username alone is not enough for Basic: the token is used.
    assert auth_header({"MLFLOW_TRACKING_USERNAME": "ana", "MLFLOW_TRACKING_TOKEN": "t"}) == (
        "Bearer t"
    )


def test_request_headers_add_the_workspace() -> None:
    assert request_headers({}) == {}
    assert request_headers({"MLFLOW_WORKSPACE": " team-a ", "MLFLOW_TRACKING_TOKEN": "t"}) == {
        "Authorization": "Bearer t",
        "X-MLFLOW-WORKSPACE": "team-a",
    }


@pytest.mark.parametrize(
    "uri", ["file:///tmp/mlruns", "sqlite:///mlflow.db", "databricks", "http://", "127.0.0.1:5000"]
)
def test_base_url_takes_only_http_servers(uri: str) -> None:
    with pytest.raises(MlflowError, match="http:// or https://"):
        base_url(uri)


def test_base_url_keeps_a_path_prefix_and_refuses_credentials() -> None:
    assert base_url("https://mlflow.example.com/team-a/") == "https://mlflow.example.com/team-a"
    with pytest.raises(MlflowError, match="MLFLOW_TRACKING_USERNAME"):
        base_url("http://ana:pw@mlflow.example.com")


def test_explain_gives_mlflow_message_and_a_hint() -> None:
    assert "MLFLOW_TRACKING_TOKEN" in explain(401, None, "http://m")
    assert "MLflow 3.3 or newer" in explain(404, None, "http://m")
    said = explain(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such"}, "x")
    assert said == "HTTP 404, RESOURCE_DOES_NOT_EXIST: no such"
    assert explain(502, None, "x") == "HTTP 502 without MLflow's error JSON"

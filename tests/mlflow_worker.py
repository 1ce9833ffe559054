"""Runs MlflowClient calls for tests/test_mlflow_client.py in a process of its own.

MLflow's generated protos and ours both define mlflow/webhooks.proto, databricks.proto and
scalapb/scalapb.proto, and protobuf allows one of each per process: the client cannot live in
the pytest process, which has ours loaded. One JSON line in, one JSON line out:
`{"op": "create_webhook", "args": {...}}` -> `{"ok": result}` or `{"error": {...}}`.
Events given as {"entity": ..., "action": ...} objects become WebhookEvent objects; strings
stay strings, so both forms of the client's API are exercised."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

# A failing call must come back at once, not after MLflow's retries with backoff.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")

from mlflow import MlflowClient
from mlflow.entities.webhook import WebhookEvent
from mlflow.exceptions import MlflowException
from mlflow.utils.proto_json_utils import message_to_json


def event(value: Any) -> Any:
    return WebhookEvent(value["entity"], value["action"]) if isinstance(value, dict) else value


def result(value: Any) -> Any:
    if value is None or isinstance(value, str | int | bool):
        return value
    if hasattr(value, "token") and isinstance(value, list):  # PagedList
        return {"items": [result(v) for v in value], "token": value.token}
    if hasattr(value, "to_proto"):
        fields = json.loads(message_to_json(value.to_proto()))
        if hasattr(value, "events"):
            fields["event_strings"] = [str(e) for e in value.events]
        if hasattr(value, "secret"):
            fields["secret_attribute"] = value.secret
        return fields
    return repr(value)


def main() -> None:
    client = MlflowClient(tracking_uri=sys.argv[1], registry_uri=sys.argv[1])
    for line in sys.stdin:
        request = json.loads(line)
        args = dict(request["args"])
        try:
            if "events" in args and args["events"] is not None:
                args["events"] = [event(e) for e in args["events"]]
            if "event" in args:
                args["event"] = event(args["event"])
            answer: dict[str, Any] = {"ok": result(getattr(client, request["op"])(**args))}
        except MlflowException as e:
            answer = {"error": {"error_code": e.error_code, "message": e.message}}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()

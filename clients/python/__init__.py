"""The Python client of the webhooks service and the `webhooksctl` operator tool."""

from mlflow_webhooks.clients.python.client import (
    WebhooksClient,
    WebhooksError,
    event_name,
    parse_event,
    to_json,
)

__all__ = ["WebhooksClient", "WebhooksError", "event_name", "parse_event", "to_json"]

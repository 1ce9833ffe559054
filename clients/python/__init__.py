"""The Python client of the webhooks service and the `webhooksctl` operator tool."""

from clients.python.client import (
    WebhooksClient,
    WebhooksError,
    event_name,
    parse_event,
    to_json,
)

__all__ = ["WebhooksClient", "WebhooksError", "event_name", "parse_event", "to_json"]

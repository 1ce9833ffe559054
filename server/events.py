"""The events the service knows: valid (entity, action) pairs, their `data` fields, and
MLflow's example payload for each (what testWebhook sends)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow_webhooks.generated import webhooks_pb2 as pb

Entity = int
Action = int
Event = tuple[Entity, Action]


@dataclass(frozen=True)
class Field:
    name: str
    # JSON types the value may take: "string", "object", "number", "integer".
    json_type: str
    nullable: bool = False


@dataclass(frozen=True)
class EventSpec:
    fields: tuple[Field, ...]
    example: dict[str, Any]


_NAME = Field("name", "string")
_VERSION = Field("version", "string")
_TAGS = Field("tags", "object")
_KEY = Field("key", "string")
_VALUE = Field("value", "string")
_ALIAS = Field("alias", "string")
_DESCRIPTION = Field("description", "string", nullable=True)

_MODEL = "example_model"
_PROMPT = "example_prompt"
_TAG = {"example_key": "example_value"}

E, A = pb.WebhookEntity, pb.WebhookAction
EVENTS: dict[Event, EventSpec] = {
    (E.REGISTERED_MODEL, A.CREATED): EventSpec(
        (_NAME, _TAGS, _DESCRIPTION),
        {"name": _MODEL, "tags": _TAG, "description": "An example registered model"},
    ),
    (E.MODEL_VERSION, A.CREATED): EventSpec(
        (
            _NAME,
            _VERSION,
            Field("source", "string"),
            Field("run_id", "string", True),
            _TAGS,
            _DESCRIPTION,
        ),
        {
            "name": _MODEL,
            "version": "1",
            "source": "models:/123",
            "run_id": "abcd1234abcd5678",
            "tags": _TAG,
            "description": "An example model version",
        },
    ),
    (E.MODEL_VERSION_TAG, A.SET): EventSpec(
        (_NAME, _VERSION, _KEY, _VALUE),
        {"name": _MODEL, "version": "1", "key": "example_key", "value": "example_value"},
    ),
    (E.MODEL_VERSION_TAG, A.DELETED): EventSpec(
        (_NAME, _VERSION, _KEY), {"name": _MODEL, "version": "1", "key": "example_key"}
    ),
    (E.MODEL_VERSION_ALIAS, A.CREATED): EventSpec(
        (_NAME, _ALIAS, _VERSION), {"name": _MODEL, "alias": "example_alias", "version": "1"}
    ),
    (E.MODEL_VERSION_ALIAS, A.DELETED): EventSpec(
        (_NAME, _ALIAS), {"name": _MODEL, "alias": "example_alias"}
    ),
    (E.PROMPT, A.CREATED): EventSpec(
        (_NAME, _TAGS, _DESCRIPTION),
        {"name": _PROMPT, "tags": _TAG, "description": "An example prompt"},
    ),
    (E.PROMPT_VERSION, A.CREATED): EventSpec(
        (_NAME, _VERSION, Field("template", "string"), _TAGS, _DESCRIPTION),
        {
            "name": _PROMPT,
            "version": "1",
            "template": "Hello {{name}}!",
            "tags": _TAG,
            "description": "An example prompt version",
        },
    ),
    (E.PROMPT_TAG, A.SET): EventSpec(
        (_NAME, _KEY, _VALUE), {"name": _PROMPT, "key": "example_key", "value": "example_value"}
    ),
    (E.PROMPT_TAG, A.DELETED): EventSpec((_NAME, _KEY), {"name": _PROMPT, "key": "example_key"}),
    (E.PROMPT_VERSION_TAG, A.SET): EventSpec(
        (_NAME, _VERSION, _KEY, _VALUE),
        {"name": _PROMPT, "version": "1", "key": "example_key", "value": "example_value"},
    ),
    (E.PROMPT_VERSION_TAG, A.DELETED): EventSpec(
        (_NAME, _VERSION, _KEY), {"name": _PROMPT, "version": "1", "key": "example_key"}
    ),
    (E.PROMPT_ALIAS, A.CREATED): EventSpec(
        (_NAME, _ALIAS, _VERSION), {"name": _PROMPT, "alias": "example_alias", "version": "1"}
    ),
    (E.PROMPT_ALIAS, A.DELETED): EventSpec(
        (_NAME, _ALIAS), {"name": _PROMPT, "alias": "example_alias"}
    ),
    (E.BUDGET_POLICY, A.EXCEEDED): EventSpec(
        (
            Field("budget_policy_id", "string"),
            Field("budget_unit", "string"),
            Field("budget_amount", "number"),
            Field("current_spend", "number"),
            Field("duration_unit", "string"),
            Field("duration_value", "integer"),
            Field("target_scope", "string"),
            Field("workspace", "string"),
            Field("target_value", "string", nullable=True),
            Field("window_start", "integer"),
        ),
        {
            "budget_policy_id": "bp-abc123",
            "budget_unit": "USD",
            "budget_amount": 100.0,
            "current_spend": 105.5,
            "duration_unit": "MONTHS",
            "duration_value": 1,
            "target_scope": "ENDPOINT",
            "workspace": "default",
            "target_value": "ep-abc123",
            "window_start": 1704067200000,
        },
    ),
}


def entity_name(entity: Entity) -> str:
    """The lower-case name MLflow uses on the wire and in messages ("model_version")."""
    return pb.WebhookEntity.Name(entity).lower()


def action_name(action: Action) -> str:
    return pb.WebhookAction.Name(action).lower()


def valid_actions(entity: Entity) -> list[str]:
    return [action_name(a) for (e, a) in EVENTS if e == entity]

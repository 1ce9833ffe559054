"""Copies the webhooks of a plain MLflow server into the service (`webhooksctl
import-mlflow`), so a team can move to it without losing or doubling deliveries.

A webhook already in the service with the same name, URL and events is not copied again, so
running the import twice makes no duplicates, and a run that failed half-way can simply be
run again. With `disable_source` an MLflow webhook is disabled only once its copy is in the
service: until then MLflow keeps delivering it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import grpc

from mlflow_webhooks.clients.python.client import WebhooksClient, WebhooksError
from mlflow_webhooks.clients.python.mlflow_rest import (
    PAGE_SIZE,
    MlflowError,
    MlflowRest,
    MlflowWebhook,
)
from mlflow_webhooks.generated import webhooks_pb2 as pb

# What each MLflow webhook came to.
CREATED = "created"
WOULD_CREATE = "would create"  # --dry-run
EXISTS = "exists"  # an earlier import (or someone) put the same webhook in the service
FAILED = "failed"
NOT_ATTEMPTED = "not attempted"  # the service stopped answering before its turn
RESULTS = (CREATED, WOULD_CREATE, EXISTS, FAILED, NOT_ATTEMPTED)

# What became of the original in MLflow.
KEPT = "kept"
DISABLED = "disabled"
WOULD_DISABLE = "would disable"
WAS_DISABLED = "was disabled"

# Errors that say nothing about the webhook at hand: the next calls would fail the same way.
_SERVICE_WIDE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNIMPLEMENTED,
}

Key = tuple[str, str, tuple[tuple[str, str], ...]]


def mlflow_key(w: MlflowWebhook) -> Key:
    return (w.name, w.url, tuple(sorted(set(w.events))))


def service_key(w: pb.Webhook) -> Key:
    events = {(pb.WebhookEntity.Name(e.entity), pb.WebhookAction.Name(e.action)) for e in w.events}
    return (w.name, w.url, tuple(sorted(events)))


@dataclass
class Outcome:
    source: MlflowWebhook
    result: str
    webhook_id: str = ""  # the service's webhook, created now or found
    source_action: str = KEPT
    error: str = ""

    @property
    def needs_secret(self) -> bool:
        """MLflow never returns a secret, so a copy made now is unsigned until it is set."""
        return self.result == CREATED


def to_events(w: MlflowWebhook) -> list[pb.WebhookEvent]:
    try:
        return [
            pb.WebhookEvent(
                entity=pb.WebhookEntity.Value(entity), action=pb.WebhookAction.Value(action)
            )
            for entity, action in w.events
        ]
    except ValueError:
        raise ValueError(
            f"its events {', '.join(f'{e}.{a}'.lower() for e, a in w.events)} include one this "
            "webhooksctl does not know"
        ) from None


def plan(sources: Iterable[MlflowWebhook], existing: Iterable[pb.Webhook]) -> list[Outcome]:
    """Which MLflow webhooks are in the service already (EXISTS, with the id found) and
    which are to be created (WOULD_CREATE)."""
    found = {service_key(w): w.webhook_id for w in existing}
    return [
        Outcome(s, EXISTS, webhook_id=found[mlflow_key(s)])
        if mlflow_key(s) in found
        else Outcome(s, WOULD_CREATE)
        for s in sources
    ]


def _create(client: WebhooksClient, outcome: Outcome) -> None:
    source = outcome.source
    try:
        events = to_events(source)
    except ValueError as e:
        outcome.result, outcome.error = FAILED, str(e)
        return
    webhook = client.create(
        source.name,
        source.url,
        events,
        description=source.description or None,
        status=source.status,
    )
    outcome.result, outcome.webhook_id = CREATED, webhook.webhook_id


def _disable(mlflow: MlflowRest, outcome: Outcome, dry_run: bool) -> None:
    if outcome.source.status == "DISABLED":
        outcome.source_action = WAS_DISABLED
    elif dry_run:
        outcome.source_action = WOULD_DISABLE
    else:
        try:
            mlflow.disable(outcome.source.webhook_id)
        except MlflowError as e:
            outcome.error = str(e)
            return
        outcome.source_action = DISABLED


def run(
    mlflow: MlflowRest,
    client: WebhooksClient,
    *,
    disable_source: bool = False,
    dry_run: bool = False,
    page_size: int = PAGE_SIZE,
) -> list[Outcome]:
    """Imports every webhook of the MLflow server; one Outcome per MLflow webhook.

    Raises MlflowError when MLflow cannot be listed (nothing was changed then) and
    WebhooksError when the service cannot be listed."""
    if mlflow.is_bridge():
        raise MlflowError(
            f"{mlflow.base} runs the webhooks bridge: its webhooks API is this service's "
            "own. Point --mlflow-uri at an MLflow server without the bridge (the same "
            "backend store, started without --app-name webhooks-bridge)"
        )
    sources = list(mlflow.webhooks(page_size))
    outcomes = plan(sources, client.iter_webhooks(1000))
    if any(o.webhook_id == o.source.webhook_id for o in outcomes):
        raise MlflowError(
            f"{mlflow.base} answers with this service's own webhooks (the same ids): it is the "
            "service's JSON shim or forwards to it. Point --mlflow-uri at the MLflow server "
            "that stores the webhooks to move"
        )
    # Copies made (or, in a dry run, to be made) in this run: two identical MLflow webhooks
    # become one copy, as they would have been found in the service on a second run.
    copies: dict[Key, str] = {}
    stopped = ""
    for outcome in outcomes:
        if stopped:
            outcome.result, outcome.error = NOT_ATTEMPTED, stopped
            continue
        key = mlflow_key(outcome.source)
        if outcome.result == WOULD_CREATE and key in copies:
            outcome.result, outcome.webhook_id = EXISTS, copies[key]
        elif outcome.result == WOULD_CREATE and not dry_run:
            try:
                _create(client, outcome)
            except WebhooksError as e:
                outcome.result, outcome.error = FAILED, f"{e.code.name}: {e.message}"
                if e.code in _SERVICE_WIDE:
                    stopped = f"not attempted after {e.code.name} from the service"
        if outcome.result in (CREATED, WOULD_CREATE):
            copies[key] = outcome.webhook_id
        if disable_source and outcome.result in (CREATED, EXISTS, WOULD_CREATE):
            _disable(mlflow, outcome, dry_run)
    return outcomes


def failed(outcomes: Iterable[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.error]

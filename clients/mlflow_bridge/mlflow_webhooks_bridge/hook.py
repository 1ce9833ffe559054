"""Where the bridge meets MLflow: the function MLflow's server calls to fire an event.

MLflow's handlers build each event's payload (after the registry write, with `source` and
`run_id` resolved, prompts told apart from models by their tags) and pass it to
`mlflow.webhooks.delivery.deliver_webhook`, which each firing module imports under its own
name. Replacing that name in those modules hands the bridge MLflow's own event and payload at
the moment MLflow fires it, in the thread that answers the request.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from types import ModuleType
from typing import Any

# Registry writes (models, versions, tags, aliases, prompts): without it there is no bridge.
REQUIRED = ("mlflow.server.handlers",)
# The AI gateway's budget_policy.exceeded; MLflow releases before the gateway's budgets lack it.
OPTIONAL = ("mlflow.gateway.budget",)

Sink = Callable[[str, str, dict[str, Any]], None]


class HookError(Exception):
    """MLflow's internals are not what the bridge hooks; the message is one line."""


def _mlflow_version() -> str:
    try:
        from mlflow.version import VERSION
    except ImportError:
        return "unknown"
    return VERSION


def _fail(what: str) -> HookError:
    return HookError(
        f"MLflow {_mlflow_version()} does not have {what}, which the bridge hooks; "
        "it is tested on MLflow 3.17.2 (needs >= 3.3)"
    )


def firing_modules() -> list[ModuleType]:
    """The modules whose `deliver_webhook` the bridge replaces; raises HookError when the
    required ones are missing."""
    try:
        from mlflow.webhooks import delivery
    except ImportError:
        raise _fail("mlflow.webhooks.delivery") from None
    if not callable(getattr(delivery, "deliver_webhook", None)):
        raise _fail("mlflow.webhooks.delivery.deliver_webhook")
    modules = []
    for name in REQUIRED + OPTIONAL:
        try:
            module = importlib.import_module(name)
        except ImportError:
            if name in REQUIRED:
                raise _fail(name) from None
            continue
        if callable(getattr(module, "deliver_webhook", None)):
            modules.append(module)
        elif name in REQUIRED:
            raise _fail(f"{name}.deliver_webhook")
    return modules


def check_server_app() -> None:
    """The bridge serves MLflow's own FastAPI app (uvicorn's), with its routes in front."""
    if importlib.util.find_spec("mlflow.server.fastapi_app") is None:
        raise _fail("mlflow.server.fastapi_app")


def install(sink: Sink, tee: bool) -> None:
    """Every event MLflow fires goes to `sink(entity, action, payload)` first (entity and
    action as MLflow names them, lower-case); with `tee`, MLflow's own delivery runs after."""
    from mlflow.webhooks.delivery import deliver_webhook as mlflow_delivery

    def deliver_webhook(*, event: Any, payload: Any, store: Any) -> None:
        # No try: an event that cannot be spooled must not be answered as if it were.
        sink(event.entity.value, event.action.value, dict(payload))
        if tee:
            mlflow_delivery(event=event, payload=payload, store=store)

    for module in firing_modules():
        module.deliver_webhook = deliver_webhook  # type: ignore[attr-defined]

"""Runs in the MLflow venv with the bridge on PYTHONPATH (tests/test_mlflow_bridge.py).

Fires budget_policy.exceeded through MLflow's own AI-gateway code
(mlflow.gateway.budget.fire_budget_exceeded_webhooks builds the payload from a budget window;
an exceeded budget cannot be reached for real here: it needs a paid LLM provider's costs), with
the bridge's hook installed in each mode in turn. MLflow's own HTTP delivery is replaced by a
recorder before the hook is installed, so "tee" and "replace" show whether it ran. Prints
{mode: {"sink": [[entity, action, data], ...], "native": [[entity, action], ...]}}.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from mlflow.entities.gateway_budget_policy import (
    BudgetAction,
    BudgetDuration,
    BudgetDurationUnit,
    BudgetTargetScope,
    BudgetUnit,
    GatewayBudgetPolicy,
)
from mlflow.gateway import budget
from mlflow.gateway.budget_tracker import BudgetWindow
from mlflow.webhooks import delivery

native: list[list[str]] = []


def recorded_delivery(*, event: Any, payload: Any, store: Any) -> None:
    del payload, store
    native.append([event.entity.value, event.action.value])


delivery.deliver_webhook = recorded_delivery

from mlflow_webhooks_bridge import hook  # noqa: E402 (after MLflow's delivery is replaced)

policy = GatewayBudgetPolicy(
    budget_policy_id="bp-123",
    budget_unit=BudgetUnit.USD,
    budget_amount=100.0,
    duration=BudgetDuration(unit=BudgetDurationUnit.DAYS, value=1),
    target_scope=BudgetTargetScope.GLOBAL,
    budget_action=BudgetAction.ALERT,
    created_at=0,
    last_updated_at=0,
)
start = datetime(2026, 11, 30, tzinfo=UTC)
window = BudgetWindow(policy, start, start.replace(hour=23), cumulative_spend=123.5)
results = {}
for mode in ("replace", "tee"):
    sink: list[list[Any]] = []
    native.clear()
    hook.install(
        lambda entity, action, data, sink=sink: sink.append([entity, action, data]), mode == "tee"
    )
    budget.fire_budget_exceeded_webhooks([window], None, None)
    results[mode] = {"sink": sink, "native": list(native)}
print(json.dumps(results))

"""Schemathesis against the shim's own /openapi.json on a server of its own: whatever it sends
to any operation, the answer is never a 5xx, and every answer matches the document."""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import PERMISSIVE
from tests.support import run_server

MAX_EXAMPLES = 25
VALID = {
    "name": "seed",
    "url": "http://127.0.0.1:9/refused",
    "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}],
    "description": "made before fuzzing",
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def openapi_server(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("openapi-server")
    # No deliveries leave this server for long: one short attempt, no retries.
    proc = run_server(
        workdir,
        *PERMISSIVE,
        "--database-url",
        f"sqlite:///{workdir}/webhooks.db",
        "--delivery-timeout",
        "1",
        "--retry-schedule",
        "",
    )
    yield proc
    proc.stop()


def seed(base_url: str) -> list[str]:
    """Webhooks that the generated cases may hit by id, so answers with content get checked
    too, not only errors. The URL refuses connections at once, so testWebhook is quick."""
    ids = []
    for i in range(3):
        response = requests.post(
            f"{base_url}/api/2.0/mlflow/webhooks", json={**VALID, "name": f"seed-{i}"}, timeout=10
        )
        assert response.status_code == 200, response.text
        ids.append(response.json()["webhook"]["webhook_id"])
    return ids


def strategy(operation, mode: GenerationMode, base_url: str) -> st.SearchStrategy:
    generated = operation.as_strategy(generation_mode=mode)
    if mode != GenerationMode.POSITIVE:
        return generated
    if "{webhook_id}" in operation.path:
        known = [
            operation.as_strategy(generation_mode=mode, path_parameters={"webhook_id": i})
            for i in seed(base_url)
        ]
        return st.one_of(generated, *known)
    if operation.method.upper() == "POST" and operation.path.endswith("/mlflow/webhooks"):
        return st.one_of(generated, operation.as_strategy(generation_mode=mode, body=VALID))
    return generated


def takes_input(operation) -> bool:
    raw = operation.definition.raw
    return bool(raw.get("parameters") or raw.get("requestBody"))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors_and_responses_match_the_schema(openapi_server, mode):
    base_url = openapi_server.http_url
    seed(base_url)
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", timeout=10)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6

    for operation in operations:
        if mode == GenerationMode.NEGATIVE and not takes_input(operation):
            continue  # nothing to get wrong (listEventTypes): no negative case exists

        @given(case=strategy(operation, mode, base_url))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=5000,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case) -> None:
            case.call_and_validate(checks=CHECKS, timeout=10)

        check()

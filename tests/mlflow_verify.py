"""Verifies deliveries as a receiver following MLflow's own recipe does, in a process of its
own: MLflow's protos and ours cannot share one (see tests/mlflow_worker.py).

MLflow ships no verification helper. Its recipe, in its webhooks docs
(https://mlflow.org/docs/latest/ml/webhooks, `verify_mlflow_signature`) and in its own test
receiver (mlflow/mlflow, tests/webhooks/app.py, `verify_webhook_signature`): the
X-MLflow-Signature header must start with "v1,", and everything after that must equal,
compared in constant time, the base64 HMAC-SHA256 of "{delivery_id}.{timestamp}.{payload}"
under the secret. The HMAC here is computed by MLflow's own signer
(mlflow.webhooks.delivery._generate_hmac_signature) and the headers are found by MLflow's
own names for them (mlflow.webhooks.constants).

Standard input: a JSON list of {"secret", "headers", "body"}; standard output: a JSON list
of booleans, whether each verifies."""

from __future__ import annotations

import hmac
import json
import sys

from mlflow.webhooks.constants import (
    WEBHOOK_DELIVERY_ID_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_SIGNATURE_VERSION,
    WEBHOOK_TIMESTAMP_HEADER,
)
from mlflow.webhooks.delivery import _generate_hmac_signature


def verifies(secret: str, headers: dict[str, str], body: str) -> bool:
    lower = {k.lower(): v for k, v in headers.items()}
    signature = lower.get(WEBHOOK_SIGNATURE_HEADER.lower(), "")
    delivery_id = lower.get(WEBHOOK_DELIVERY_ID_HEADER.lower(), "")
    timestamp = lower.get(WEBHOOK_TIMESTAMP_HEADER.lower(), "")
    prefix = f"{WEBHOOK_SIGNATURE_VERSION},"
    if not signature.startswith(prefix):
        return False
    expected = _generate_hmac_signature(secret, delivery_id, timestamp, body)
    return hmac.compare_digest(expected.removeprefix(prefix), signature.removeprefix(prefix))


if __name__ == "__main__":
    cases = json.load(sys.stdin)
    json.dump([verifies(c["secret"], c["headers"], c["body"]) for c in cases], sys.stdout)

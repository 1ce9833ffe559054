"""The bridge's settings from the MLflow server's environment, in-process (one real refusal
by `mlflow server` is in test_mlflow_bridge.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow_webhooks_bridge import config


def test_defaults() -> None:
    settings = config.load({"MLFLOW_WEBHOOKS_URL": "http://127.0.0.1:8080/"})
    assert settings.service_url == "http://127.0.0.1:8080"
    assert settings.token is None
    assert settings.mode == "replace"
    assert settings.spool_dir == Path("mlflow-webhooks-spool").absolute()


def test_everything_set() -> None:
    settings = config.load(
        {
            "MLFLOW_WEBHOOKS_URL": "https://gw.example.com/webhooks",
            "MLFLOW_WEBHOOKS_TOKEN": " t0ken ",
            "MLFLOW_WEBHOOKS_SPOOL_DIR": "/var/spool/mlflow",
            "MLFLOW_WEBHOOKS_MODE": "TEE",
        }
    )
    assert settings == config.Settings(
        "https://gw.example.com/webhooks", "t0ken", Path("/var/spool/mlflow"), "tee"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "MLFLOW_WEBHOOKS_URL is not set"),
        ({"MLFLOW_WEBHOOKS_URL": "  "}, "MLFLOW_WEBHOOKS_URL is not set"),
        ({"MLFLOW_WEBHOOKS_URL": "ftp://x"}, "must be an http:// or https:// URL"),
        ({"MLFLOW_WEBHOOKS_URL": "http://"}, "must be an http:// or https:// URL with a host"),
        ({"MLFLOW_WEBHOOKS_URL": "http://h/?a=1"}, "must not have a query or a fragment"),
        (
            {"MLFLOW_WEBHOOKS_URL": "http://h", "MLFLOW_WEBHOOKS_MODE": "both"},
            "MLFLOW_WEBHOOKS_MODE must be 'replace' or 'tee', got 'both'",
        ),
    ],
)
def test_refusals_say_what_to_set(env: dict[str, str], message: str) -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.load(env)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)

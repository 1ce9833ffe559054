"""The bridge's settings, from the environment of the MLflow server."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MODES = ("replace", "tee")


class ConfigError(Exception):
    """A setting that stops the bridge from starting; its message is one line saying what to
    set."""


@dataclass(frozen=True)
class Settings:
    service_url: str  # the service's HTTP base URL, without a trailing slash
    token: str | None
    spool_dir: Path
    mode: str  # "replace": MLflow's own delivery does not run; "tee": both run


def load(env: Mapping[str, str] = os.environ) -> Settings:
    url = env.get("MLFLOW_WEBHOOKS_URL", "").strip()
    if not url:
        raise ConfigError(
            "MLFLOW_WEBHOOKS_URL is not set: set it to the webhooks service's HTTP address, "
            "e.g. http://127.0.0.1:8080"
        )
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(
            f"MLFLOW_WEBHOOKS_URL must be an http:// or https:// URL with a host, got {url!r:.80}"
        )
    if parsed.query or parsed.fragment:
        raise ConfigError("MLFLOW_WEBHOOKS_URL must not have a query or a fragment")
    mode = env.get("MLFLOW_WEBHOOKS_MODE", "replace").strip().lower() or "replace"
    if mode not in MODES:
        raise ConfigError(f"MLFLOW_WEBHOOKS_MODE must be 'replace' or 'tee', got {mode!r:.40}")
    spool = env.get("MLFLOW_WEBHOOKS_SPOOL_DIR", "").strip() or "mlflow-webhooks-spool"
    return Settings(
        service_url=url.rstrip("/"),
        token=env.get("MLFLOW_WEBHOOKS_TOKEN", "").strip() or None,
        spool_dir=Path(spool).absolute(),
        mode=mode,
    )

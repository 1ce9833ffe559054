"""`mlflow server --app-name webhooks-bridge`: MLflow's own server app with the bridge in it.

MLflow's CLI imports this module (to see whether the entry point is a factory) before it
starts uvicorn, so the checks that can stop the bridge run at import: a misconfigured server
fails once, with one line, instead of uvicorn restarting workers that fail. `create_app` then
runs in each uvicorn worker: its own spool file, its own sender, MLflow's app with the
bridge's routes in front.
"""

from __future__ import annotations

import os
from typing import Any

from mlflow_webhooks_bridge import config, hook, spool
from mlflow_webhooks_bridge.publisher import Publisher
from mlflow_webhooks_bridge.routes import routes


def _checked() -> config.Settings:
    try:
        settings = config.load()
        hook.firing_modules()
        hook.check_server_app()
        settings.spool_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(settings.spool_dir, os.W_OK | os.X_OK):
            raise config.ConfigError(f"the spool directory {settings.spool_dir} is not writable")
    except (config.ConfigError, hook.HookError, OSError) as e:
        raise SystemExit(f"mlflow-webhooks-bridge: {e}") from None
    return settings


SETTINGS = _checked()


def create_app() -> Any:
    from mlflow.server import handlers
    from mlflow.server.fastapi_app import app

    if os.environ.get("_MLFLOW_SGI_NAME", "uvicorn") != "uvicorn":
        raise SystemExit(
            "mlflow-webhooks-bridge: runs under MLflow's default server (uvicorn); "
            "drop --gunicorn-opts / --waitress-opts"
        )
    writer = spool.SpoolWriter(SETTINGS.spool_dir)
    publisher = Publisher(SETTINGS.service_url, SETTINGS.token, SETTINGS.spool_dir)

    def sink(entity: str, action: str, data: dict[str, Any]) -> None:
        writer.append(spool.new_record(entity, action, data))
        publisher.wake.set()

    hook.install(sink, tee=SETTINGS.mode == "tee")
    publisher.start()
    static_prefix = handlers._add_static_prefix("")
    app.router.routes[0:0] = routes(SETTINGS, static_prefix)
    return app

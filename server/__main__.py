"""`webhooks-server` and `python -m server`; `webhooks-server backup PATH` and
`copy-database TARGET_URL` copy the database (server/backup.py)."""

from __future__ import annotations

import sys

from mlflow_webhooks.server import app, backup, config, supervisor


def main() -> int:
    if sys.argv[1:2] == ["backup"]:
        return backup.main(sys.argv[2:])
    if sys.argv[1:2] == ["copy-database"]:
        return backup.copy_main(sys.argv[2:])
    try:
        cfg = config.parse()
    except config.ConfigError as e:
        print(f"webhooks-server: {e}", file=sys.stderr)
        return 2
    return supervisor.run(cfg) if cfg.workers > 1 else app.run(cfg)


if __name__ == "__main__":
    sys.exit(main())

"""`webhooks-server` and `python -m server`."""

from __future__ import annotations

import sys

from server import app, config, supervisor


def main() -> int:
    try:
        cfg = config.parse()
    except config.ConfigError as e:
        print(f"webhooks-server: {e}", file=sys.stderr)
        return 2
    return supervisor.run(cfg) if cfg.workers > 1 else app.run(cfg)


if __name__ == "__main__":
    sys.exit(main())

"""Flags and environment variables, read once into a frozen Config (CONTRACT section 2)."""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from yarl import URL

from mlflow_webhooks.server import egress
from mlflow_webhooks.server.delivery.settings import Limits

DEFAULT_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


class ConfigError(ValueError):
    """A flag or environment variable has a value the server cannot use."""


@dataclass(frozen=True)
class Config:
    grpc_address: str = "127.0.0.1:50051"
    http_address: str = "127.0.0.1:8080"
    database_url: str = "sqlite:///webhooks.db"
    allowed_schemes: tuple[str, ...] = ("https",)
    allow_private_urls: bool = False
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    delivery_timeout: float = 15.0
    secret_key: str | None = None
    max_request_bytes: int = 1024 * 1024
    workers: int = 1
    auth_token: str | None = None
    auth_token_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    log_format: str = "text"
    access_log: bool = True
    # The longest a call waits on the database: PostgreSQL's lock and statement timeouts,
    # SQLite's busy timeout, and this process's own queue for the write lock.
    db_timeout: float = 10.0
    retention_days: int = 30  # 0 keeps every delivery
    egress_allow: tuple[str, ...] = ()  # CIDRs, addresses, host names, *.suffix
    # http://[user:password@]host:port; left out of repr: it may hold a password.
    egress_proxy: str | None = field(default=None, repr=False)
    egress_proxy_bypass: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()  # Host names the shim answers besides loopback ones
    max_connections: int | None = None  # None: a cap below the open-files limit, at start
    # The bounds of webhooks' own delivery settings. Plain fields, as the supervisor hands
    # a Config to its workers as flat JSON.
    max_retries: int = 20
    max_retry_window: float = 7 * 24 * 3600.0
    max_delivery_timeout: float = 60.0
    max_webhook_concurrency: int = 32

    @property
    def limits(self) -> Limits:
        return Limits(
            self.max_retries,
            self.max_retry_window,
            self.max_delivery_timeout,
            self.max_webhook_concurrency,
        )


def _split_address(value: str, flag: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ConfigError(f"{flag} must be HOST:PORT (port 0 picks a free one), got {value!r}")
    return value


def _schemes(value: str) -> tuple[str, ...]:
    schemes = tuple(s.strip().lower() for s in value.split(",") if s.strip())
    if not schemes or any(s not in ("http", "https") for s in schemes):
        raise ConfigError(
            f"--allowed-schemes takes a comma-separated list of http/https, got {value!r}"
        )
    return schemes


def _schedule(value: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(s) for s in value.split(",") if s.strip())
    except ValueError:
        raise ConfigError(
            f"--retry-schedule takes comma-separated seconds, got {value!r}"
        ) from None
    if any(not 0 <= d < math.inf for d in delays):
        raise ConfigError(f"--retry-schedule delays must not be negative, got {value!r}")
    return delays


def _positive(value: str, flag: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 < number < math.inf:  # also refuses nan
        raise ConfigError(f"{flag} takes a positive number of seconds, got {value!r}")
    return number


def _count(value: str, flag: str, unit: str) -> int:
    if not (value.strip().isascii() and value.strip().isdigit()) or int(value) <= 0:
        raise ConfigError(f"{flag} takes a positive number of {unit}, got {value!r}")
    return int(value)


def _days(value: str) -> int:
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        raise ConfigError(
            f"--retention-days takes a whole number of days (0 keeps everything), got {value!r}"
        )
    return int(text)


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(e.strip() for e in (value or "").split(",") if e.strip())


def _egress_allow(value: str | None) -> tuple[str, ...]:
    entries = _list(value)
    for entry in entries:
        try:
            egress.parse_entry(entry)
        except ValueError as e:
            raise ConfigError(f"--egress-allow: {e}") from None
    return entries


def _egress_proxy(value: str | None) -> str | None:
    if not value:
        return None
    try:
        proxy = URL(value)
        _ = proxy.port
    except ValueError:
        proxy = None
    if proxy is None or proxy.scheme != "http" or not proxy.raw_host or proxy.path not in ("", "/"):
        # Shown without its password: the message goes to the terminal and to logs.
        shown = proxy.with_password(None if proxy.password is None else "***") if proxy else "?"
        raise ConfigError(
            "--egress-proxy takes http://[user:password@]HOST:PORT (an HTTP proxy that "
            f"tunnels https with CONNECT), got {str(shown)!r}"
        )
    return value


def _egress_bypass(value: str | None) -> tuple[str, ...]:
    entries = _list(value)
    try:
        egress.Bypass.of(entries)
    except ValueError as e:
        raise ConfigError(f"--egress-proxy-bypass: {e}") from None
    return entries


def _host_list(value: str) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in value.split(",") if n.strip())
    for name in names:
        bare = name.removeprefix("*.")
        if name != "*" and (not bare or any(c in bare for c in "/:*@[] ")):
            raise ConfigError(
                "--allowed-hosts takes comma-separated host names without ports "
                f"(a name, *.suffix, or * for any); {name!r} is not one, in {value!r}"
            )
    return names


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def version() -> str:
    """The installed distribution's version (`make` installs the clone in editable mode)."""
    try:
        return importlib.metadata.version("mlflow-webhooks-service")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def parse(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> Config:
    """Builds the Config from flags, falling back to WEBHOOKS_* variables, then to defaults."""
    env = dict(os.environ if environ is None else environ)
    defaults = Config()
    parser = argparse.ArgumentParser(
        prog="webhooks-server", description="MLflow Model Registry webhooks service"
    )

    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")

    def flag(name: str, env_name: str, default: object, help_text: str) -> None:
        shown = "none" if default is None else default
        parser.add_argument(
            name,
            default=env.get(env_name, default),
            help=f"{help_text} [{env_name}; default: {shown}]",
        )

    flag("--grpc-address", "WEBHOOKS_GRPC_ADDRESS", defaults.grpc_address, "gRPC HOST:PORT")
    flag("--http-address", "WEBHOOKS_HTTP_ADDRESS", defaults.http_address, "JSON shim HOST:PORT")
    flag("--database-url", "WEBHOOKS_DATABASE_URL", defaults.database_url, "playhouse.db_url URL")
    flag("--allowed-schemes", "WEBHOOKS_ALLOWED_SCHEMES", "https", "URL schemes webhooks may use")
    flag(
        "--retry-schedule",
        "WEBHOOKS_RETRY_SCHEDULE",
        ",".join(f"{d:g}" for d in DEFAULT_RETRY_SCHEDULE),
        "seconds before each retry",
    )
    flag("--delivery-timeout", "WEBHOOKS_DELIVERY_TIMEOUT", "15", "seconds per delivery attempt")
    flag(
        "--max-request-bytes",
        "WEBHOOKS_MAX_REQUEST_BYTES",
        str(defaults.max_request_bytes),
        "largest JSON request body the HTTP shim reads",
    )
    flag("--workers", "WEBHOOKS_WORKERS", "1", "server processes sharing the ports")
    flag("--auth-token", "WEBHOOKS_AUTH_TOKEN", None, "bearer token callers must send")
    flag(
        "--auth-token-file",
        "WEBHOOKS_AUTH_TOKEN_FILE",
        None,
        "file of accepted tokens, one a line, re-read on SIGHUP",
    )
    flag("--tls-cert", "WEBHOOKS_TLS_CERT", None, "PEM certificate chain: serve TLS")
    flag("--tls-key", "WEBHOOKS_TLS_KEY", None, "PEM private key of --tls-cert")
    flag("--log-format", "WEBHOOKS_LOG_FORMAT", "text", "text or json")
    flag(
        "--access-log",
        "WEBHOOKS_ACCESS_LOG",
        "on",
        "on or off: the log line of every call and of every delivery attempt",
    )
    flag(
        "--db-timeout",
        "WEBHOOKS_DB_TIMEOUT",
        f"{defaults.db_timeout:g}",
        "seconds a call waits on the database (locks, statements) before UNAVAILABLE",
    )
    flag(
        "--retention-days",
        "WEBHOOKS_RETENTION_DAYS",
        str(defaults.retention_days),
        "days finished deliveries are kept (0: for ever)",
    )
    flag(
        "--egress-allow",
        "WEBHOOKS_EGRESS_ALLOW",
        None,
        "CIDRs, addresses and host names (exact or *.suffix) deliveries may reach although "
        "private; link-local and metadata addresses only when named exactly",
    )
    flag(
        "--egress-proxy",
        "WEBHOOKS_EGRESS_PROXY",
        None,
        "http://[user:password@]HOST:PORT: every delivery goes through this proxy (CONNECT "
        "for https)",
    )
    flag(
        "--egress-proxy-bypass",
        "WEBHOOKS_EGRESS_PROXY_BYPASS",
        None,
        "hosts sent to directly, NO_PROXY style (name and its subdomains, address, CIDR, *)",
    )
    flag(
        "--allowed-hosts",
        "WEBHOOKS_ALLOWED_HOSTS",
        "",
        "Host names the HTTP shim answers besides loopback ones (name, *.suffix, *); "
        "default: loopback names only when bound to loopback, else any",
    )
    flag(
        "--max-connections",
        "WEBHOOKS_MAX_CONNECTIONS",
        None,
        "most HTTP connections open at once; default: half of the open-files limit less 100 "
        "(one accept burst), at most 10000",
    )
    parser.add_argument(
        "--allow-private-urls",
        action="store_true",
        default=_truthy(env.get("WEBHOOKS_ALLOW_PRIVATE_URLS")),
        help="allow loopback and private addresses, and make no DNS look-up at create and "
        "update [WEBHOOKS_ALLOW_PRIVATE_URLS=true; default: off]",
    )
    flag(
        "--max-retries",
        "WEBHOOKS_MAX_RETRIES",
        str(defaults.max_retries),
        "most retries a webhook's own retry schedule may have",
    )
    flag(
        "--max-retry-window",
        "WEBHOOKS_MAX_RETRY_WINDOW",
        f"{defaults.max_retry_window:g}",
        "longest total, in seconds, of a webhook's own retry schedule",
    )
    flag(
        "--max-delivery-timeout",
        "WEBHOOKS_MAX_DELIVERY_TIMEOUT",
        f"{defaults.max_delivery_timeout:g}",
        "longest timeout, in seconds, a webhook's settings may give its attempts",
    )
    flag(
        "--max-webhook-concurrency",
        "WEBHOOKS_MAX_WEBHOOK_CONCURRENCY",
        str(defaults.max_webhook_concurrency),
        "highest maximum concurrency a webhook's settings may give it (per process); it also "
        "caps the server's default for webhooks without their own, 32",
    )
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ConfigError("--tls-cert and --tls-key go together: give both, or neither")
    if args.log_format not in ("text", "json"):
        raise ConfigError(f"--log-format is text or json, got {args.log_format!r}")
    if args.access_log not in ("on", "off"):
        raise ConfigError(f"--access-log is on or off, got {args.access_log!r}")
    if args.allow_private_urls and args.egress_allow:
        raise ConfigError(
            "--egress-allow and --allow-private-urls do not go together: --allow-private-urls "
            "already allows every address; keep --egress-allow to allow only those it names"
        )
    if args.egress_proxy_bypass and not args.egress_proxy:
        raise ConfigError("--egress-proxy-bypass needs --egress-proxy")
    return Config(
        grpc_address=_split_address(args.grpc_address, "--grpc-address"),
        http_address=_split_address(args.http_address, "--http-address"),
        database_url=args.database_url,
        allowed_schemes=_schemes(args.allowed_schemes),
        allow_private_urls=args.allow_private_urls,
        retry_schedule=_schedule(args.retry_schedule),
        delivery_timeout=_positive(args.delivery_timeout, "--delivery-timeout"),
        secret_key=env.get("WEBHOOKS_SECRET_KEY") or None,
        max_request_bytes=_count(args.max_request_bytes, "--max-request-bytes", "bytes"),
        workers=_count(args.workers, "--workers", "processes"),
        auth_token=args.auth_token or None,
        auth_token_file=args.auth_token_file or None,
        tls_cert=args.tls_cert or None,
        tls_key=args.tls_key or None,
        log_format=args.log_format,
        access_log=args.access_log == "on",
        db_timeout=_positive(args.db_timeout, "--db-timeout"),
        retention_days=_days(args.retention_days),
        egress_allow=_egress_allow(args.egress_allow),
        egress_proxy=_egress_proxy(args.egress_proxy),
        egress_proxy_bypass=_egress_bypass(args.egress_proxy_bypass),
        allowed_hosts=_host_list(args.allowed_hosts),
        max_connections=(
            _count(args.max_connections, "--max-connections", "connections")
            if args.max_connections
            else None
        ),
        max_retries=_count(args.max_retries, "--max-retries", "retries"),
        max_retry_window=_positive(args.max_retry_window, "--max-retry-window"),
        max_delivery_timeout=_positive(args.max_delivery_timeout, "--max-delivery-timeout"),
        max_webhook_concurrency=_count(
            args.max_webhook_concurrency, "--max-webhook-concurrency", "deliveries"
        ),
    )

"""server.config.parse: flags, WEBHOOKS_* fallbacks, the flag winning, and a ConfigError
naming the flag for every value the server cannot use."""

from __future__ import annotations

import importlib.metadata

import pytest

from mlflow_webhooks.server.config import DEFAULT_RETRY_SCHEDULE, Config, ConfigError, parse
from mlflow_webhooks.server.delivery.settings import Limits


def test_defaults_with_nothing_set() -> None:
    config = parse([], {})
    assert config == Config()
    assert config.grpc_address == "127.0.0.1:50051"
    assert config.http_address == "127.0.0.1:8080"
    assert config.database_url == "sqlite:///webhooks.db"
    assert config.allowed_schemes == ("https",)
    assert config.allow_private_urls is False
    assert config.retry_schedule == DEFAULT_RETRY_SCHEDULE
    assert config.retry_schedule == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert config.delivery_timeout == 15.0
    assert config.secret_key is None
    assert config.max_request_bytes == 1024 * 1024
    assert config.workers == 1
    assert config.retention_days == 30


def test_retention_days() -> None:
    assert parse(["--retention-days", "0"], {}).retention_days == 0  # keeps everything
    assert parse(["--retention-days", "7"], {}).retention_days == 7
    assert parse([], {"WEBHOOKS_RETENTION_DAYS": "90"}).retention_days == 90
    flag_wins = parse(["--retention-days", "1"], {"WEBHOOKS_RETENTION_DAYS": "90"})
    assert flag_wins.retention_days == 1


def test_every_flag() -> None:
    config = parse(
        [
            "--grpc-address",
            "0.0.0.0:6000",
            "--http-address",
            "[::1]:0",
            "--database-url",
            "sqlite:////tmp/x.db",
            "--allowed-schemes",
            "http,https",
            "--allow-private-urls",
            "--retry-schedule",
            "1,2.5,10",
            "--delivery-timeout",
            "0.5",
            "--max-request-bytes",
            "2048",
            "--workers",
            "3",
        ],
        {},
    )
    assert config.grpc_address == "0.0.0.0:6000"
    assert config.http_address == "[::1]:0"
    assert config.database_url == "sqlite:////tmp/x.db"
    assert config.allowed_schemes == ("http", "https")
    assert config.allow_private_urls is True
    assert config.retry_schedule == (1.0, 2.5, 10.0)
    assert config.delivery_timeout == 0.5
    assert config.max_request_bytes == 2048
    assert config.workers == 3


ENV = {
    "WEBHOOKS_GRPC_ADDRESS": "127.0.0.1:7001",
    "WEBHOOKS_HTTP_ADDRESS": "127.0.0.1:7002",
    "WEBHOOKS_DATABASE_URL": "sqlite:///env.db",
    "WEBHOOKS_ALLOWED_SCHEMES": "http",
    "WEBHOOKS_ALLOW_PRIVATE_URLS": "true",
    "WEBHOOKS_RETRY_SCHEDULE": "3,4",
    "WEBHOOKS_DELIVERY_TIMEOUT": "7",
    "WEBHOOKS_SECRET_KEY": "a-key-from-the-environment",
    "WEBHOOKS_MAX_REQUEST_BYTES": "4096",
    "WEBHOOKS_WORKERS": "2",
}


def test_environment_fallbacks() -> None:
    config = parse([], ENV)
    assert config.grpc_address == "127.0.0.1:7001"
    assert config.http_address == "127.0.0.1:7002"
    assert config.database_url == "sqlite:///env.db"
    assert config.allowed_schemes == ("http",)
    assert config.allow_private_urls is True
    assert config.retry_schedule == (3.0, 4.0)
    assert config.delivery_timeout == 7.0
    assert config.secret_key == "a-key-from-the-environment"
    assert config.max_request_bytes == 4096
    assert config.workers == 2


def test_flags_win_over_environment() -> None:
    config = parse(
        [
            "--grpc-address",
            "127.0.0.1:8001",
            "--http-address",
            "127.0.0.1:8002",
            "--database-url",
            "sqlite:///flag.db",
            "--allowed-schemes",
            "https",
            "--retry-schedule",
            "9",
            "--delivery-timeout",
            "1.5",
            "--max-request-bytes",
            "100",
            "--workers",
            "4",
        ],
        ENV,
    )
    assert config.grpc_address == "127.0.0.1:8001"
    assert config.http_address == "127.0.0.1:8002"
    assert config.database_url == "sqlite:///flag.db"
    assert config.allowed_schemes == ("https",)
    assert config.retry_schedule == (9.0,)
    assert config.delivery_timeout == 1.5
    assert config.max_request_bytes == 100
    assert config.workers == 4


def test_environment_is_read_from_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOKS_DELIVERY_TIMEOUT", "4")
    monkeypatch.setenv("WEBHOOKS_ALLOW_PRIVATE_URLS", "1")
    config = parse([])
    assert config.delivery_timeout == 4.0
    assert config.allow_private_urls is True


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes", "on", " True "])
def test_allow_private_urls_truthy_values(value: str) -> None:
    assert parse([], {"WEBHOOKS_ALLOW_PRIVATE_URLS": value}).allow_private_urls is True


@pytest.mark.parametrize("value", ["", "false", "0", "no", "off", "nope"])
def test_allow_private_urls_falsy_values(value: str) -> None:
    assert parse([], {"WEBHOOKS_ALLOW_PRIVATE_URLS": value}).allow_private_urls is False


def test_allowed_schemes_normalised() -> None:
    assert parse(["--allowed-schemes", " HTTPS , http "], {}).allowed_schemes == (
        "https",
        "http",
    )


def test_empty_retry_schedule_means_no_retries() -> None:
    assert parse(["--retry-schedule", ""], {}).retry_schedule == ()


def test_empty_secret_key_is_none() -> None:
    assert parse([], {"WEBHOOKS_SECRET_KEY": ""}).secret_key is None


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--grpc-address", "50051"),
        ("--grpc-address", ":50051"),
        ("--grpc-address", "127.0.0.1:"),
        ("--grpc-address", "127.0.0.1:port"),
        ("--grpc-address", "127.0.0.1:65536"),
        ("--grpc-address", "127.0.0.1:-1"),
        ("--http-address", "localhost"),
        ("--http-address", "127.0.0.1:99999"),
        ("--allowed-schemes", "ftp"),
        ("--allowed-schemes", "https,ftp"),
        ("--allowed-schemes", ""),
        ("--allowed-schemes", " , "),
        ("--retry-schedule", "5,soon"),
        ("--retry-schedule", "5,-1"),
        ("--delivery-timeout", "0"),
        ("--delivery-timeout", "-3"),
        ("--delivery-timeout", "fast"),
        ("--delivery-timeout", ""),
        ("--delivery-timeout", "nan"),
        ("--delivery-timeout", "inf"),
        ("--retry-schedule", "5,nan"),
        ("--retry-schedule", "inf"),
        ("--max-request-bytes", "0"),
        ("--max-request-bytes", "-5"),
        ("--max-request-bytes", "1.5"),
        ("--max-request-bytes", "lots"),
        ("--max-request-bytes", "\u00b2"),
        ("--workers", "0"),
        ("--workers", "two"),
        ("--workers", ""),
        ("--workers", "\u00b2"),
        ("--retention-days", "-1"),
        ("--retention-days", "1.5"),
        ("--retention-days", "month"),
        ("--retention-days", "\u00b2"),
        ("--grpc-address", "127.0.0.1:\u00b2"),
        ("--http-address", "127.0.0.1:\u00b9\u00b2"),
        ("--max-connections", "0"),
        ("--max-connections", "many"),
        ("--max-connections", "\u00b2"),
        ("--allowed-hosts", "hooks.internal:8080"),
        ("--allowed-hosts", "http://hooks.internal"),
        ("--allowed-hosts", "a.example,b*c"),
        ("--allowed-hosts", "*."),
        ("--max-retries", "0"),
        ("--max-retries", "many"),
        ("--max-retry-window", "-1"),
        ("--max-retry-window", "inf"),
        ("--max-delivery-timeout", "0"),
        ("--max-delivery-timeout", "nan"),
        ("--max-webhook-concurrency", "0"),
        ("--max-webhook-concurrency", "1.5"),
    ],
)
def test_bad_flag_value_names_the_flag(flag: str, value: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse([flag, value], {})
    text = str(e.value)
    assert flag in text
    assert repr(value) in text


@pytest.mark.parametrize(
    ("env_name", "flag", "value"),
    [
        ("WEBHOOKS_GRPC_ADDRESS", "--grpc-address", "nowhere"),
        ("WEBHOOKS_HTTP_ADDRESS", "--http-address", "host:http"),
        ("WEBHOOKS_ALLOWED_SCHEMES", "--allowed-schemes", "gopher"),
        ("WEBHOOKS_RETRY_SCHEDULE", "--retry-schedule", "x"),
        ("WEBHOOKS_DELIVERY_TIMEOUT", "--delivery-timeout", "-1"),
        ("WEBHOOKS_MAX_REQUEST_BYTES", "--max-request-bytes", "0"),
        ("WEBHOOKS_WORKERS", "--workers", "none"),
        ("WEBHOOKS_RETENTION_DAYS", "--retention-days", "forever"),
    ],
)
def test_bad_environment_value_names_the_flag(env_name: str, flag: str, value: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse([], {env_name: value})
    assert flag in str(e.value)
    assert repr(value) in str(e.value)


def test_good_flag_overrides_bad_environment() -> None:
    config = parse(["--delivery-timeout", "3"], {"WEBHOOKS_DELIVERY_TIMEOUT": "bad"})
    assert config.delivery_timeout == 3.0


def test_unknown_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        parse(["--no-such-flag"], {})
    assert e.value.code == 2
    assert "--no-such-flag" in capsys.readouterr().err


def test_help_shows_each_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(["--help"], {})
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for default in [
        "default: 127.0.0.1:50051",
        "default: 127.0.0.1:8080",
        "default: sqlite:///webhooks.db",
        "default: https",
        "default: 5,300,1800,7200,18000,36000,36000",
        "default: 15",
        "default: 1048576",
        "default: text",
    ]:
        assert default in out, default


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        parse(["--version"], {})
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == (
        f"webhooks-server {importlib.metadata.version('mlflow-webhooks-service')}"
    )


def test_help_names_each_environment_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        parse(["--help"], {})
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in [
        "WEBHOOKS_GRPC_ADDRESS",
        "WEBHOOKS_HTTP_ADDRESS",
        "WEBHOOKS_DATABASE_URL",
        "WEBHOOKS_ALLOWED_SCHEMES",
        "WEBHOOKS_ALLOW_PRIVATE_URLS",
        "WEBHOOKS_RETRY_SCHEDULE",
        "WEBHOOKS_DELIVERY_TIMEOUT",
        "WEBHOOKS_MAX_REQUEST_BYTES",
        "WEBHOOKS_WORKERS",
        "WEBHOOKS_AUTH_TOKEN",
        "WEBHOOKS_AUTH_TOKEN_FILE",
        "WEBHOOKS_TLS_CERT",
        "WEBHOOKS_TLS_KEY",
    ]:
        assert name in out


def test_config_is_frozen() -> None:
    config = parse([], {})
    with pytest.raises(AttributeError):
        config.delivery_timeout = 1.0  # type: ignore[misc]


def test_security_and_logging_defaults() -> None:
    config = parse([], {})
    assert config.auth_token is None
    assert config.auth_token_file is None
    assert (config.tls_cert, config.tls_key) == (None, None)
    assert config.log_format == "text"


def test_security_and_logging_flags() -> None:
    config = parse(
        [
            "--auth-token",
            "t0ken",
            "--auth-token-file",
            "/etc/tokens",
            "--tls-cert",
            "cert.pem",
            "--tls-key",
            "key.pem",
            "--log-format",
            "json",
        ],
        {},
    )
    assert config.auth_token == "t0ken"
    assert config.auth_token_file == "/etc/tokens"
    assert (config.tls_cert, config.tls_key) == ("cert.pem", "key.pem")
    assert config.log_format == "json"


SECURITY_ENV = {
    "WEBHOOKS_AUTH_TOKEN": "env-token",
    "WEBHOOKS_AUTH_TOKEN_FILE": "env-tokens.txt",
    "WEBHOOKS_TLS_CERT": "env-cert.pem",
    "WEBHOOKS_TLS_KEY": "env-key.pem",
    "WEBHOOKS_LOG_FORMAT": "json",
}


def test_security_and_logging_environment() -> None:
    config = parse([], SECURITY_ENV)
    assert config.auth_token == "env-token"
    assert config.auth_token_file == "env-tokens.txt"
    assert (config.tls_cert, config.tls_key) == ("env-cert.pem", "env-key.pem")
    assert config.log_format == "json"


def test_security_flags_win_over_environment() -> None:
    config = parse(
        ["--auth-token", "flag-token", "--tls-cert", "c", "--tls-key", "k", "--log-format", "text"],
        SECURITY_ENV,
    )
    assert config.auth_token == "flag-token"
    assert (config.tls_cert, config.tls_key) == ("c", "k")
    assert config.log_format == "text"


@pytest.mark.parametrize(
    "argv", [["--tls-cert", "cert.pem"], ["--tls-key", "key.pem"]], ids=["cert-only", "key-only"]
)
def test_tls_cert_and_key_go_together(argv: list[str]) -> None:
    with pytest.raises(ConfigError) as e:
        parse(argv, {})
    assert "--tls-cert" in str(e.value)
    assert "--tls-key" in str(e.value)


def test_tls_half_from_environment_refused() -> None:
    with pytest.raises(ConfigError):
        parse([], {"WEBHOOKS_TLS_CERT": "cert.pem"})


@pytest.mark.parametrize("value", ["xml", "JSONL", ""])
def test_bad_log_format(value: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse(["--log-format", value], {})
    assert "--log-format" in str(e.value)
    assert repr(value) in str(e.value)


def test_access_log_is_on_unless_turned_off() -> None:
    assert parse([], {}).access_log is True
    assert parse(["--access-log", "off"], {}).access_log is False
    assert parse([], {"WEBHOOKS_ACCESS_LOG": "off"}).access_log is False
    assert parse(["--access-log", "on"], {"WEBHOOKS_ACCESS_LOG": "off"}).access_log is True


@pytest.mark.parametrize("value", ["yes", "OFF", ""])
def test_bad_access_log(value: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse(["--access-log", value], {})
    assert "--access-log is on or off" in str(e.value)
    assert repr(value) in str(e.value)


def test_db_timeout_default_flag_and_environment() -> None:
    assert parse([], {}).db_timeout == 10.0
    assert parse([], {"WEBHOOKS_DB_TIMEOUT": "2.5"}).db_timeout == 2.5
    assert parse(["--db-timeout", "0.5"], {"WEBHOOKS_DB_TIMEOUT": "7"}).db_timeout == 0.5


@pytest.mark.parametrize("value", ["0", "-1", "soon", "", "nan", "inf"])
def test_bad_db_timeout_names_the_flag(value: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse([], {"WEBHOOKS_DB_TIMEOUT": value})
    assert "--db-timeout" in str(e.value)
    assert repr(value) in str(e.value)


# -- egress ------------------------------------------------------------------------------


def test_egress_flags_and_env() -> None:
    config = parse(
        [
            "--egress-allow",
            "10.0.0.0/8, *.corp.example",
            "--egress-proxy",
            "http://u:pw@proxy.internal:4750",
            "--egress-proxy-bypass",
            ".corp.example,10.0.0.0/8",
        ],
        {},
    )
    assert config.egress_allow == ("10.0.0.0/8", "*.corp.example")
    assert config.egress_proxy == "http://u:pw@proxy.internal:4750"
    assert config.egress_proxy_bypass == (".corp.example", "10.0.0.0/8")
    assert "pw" not in repr(config)  # a repr in a log must not show the proxy's password
    env = {"WEBHOOKS_EGRESS_ALLOW": "127.0.0.2", "WEBHOOKS_EGRESS_PROXY": "http://p:3128"}
    assert parse([], env).egress_allow == ("127.0.0.2",)
    assert parse([], env).egress_proxy == "http://p:3128"
    assert parse([], {}).egress_allow == () and parse([], {}).egress_proxy is None


@pytest.mark.parametrize(
    "argv,says",
    [
        (["--egress-allow", "10.0.0.1/8"], "host bits"),
        (["--egress-allow", "not a host"], "--egress-allow"),
        (["--egress-proxy", "https://p:3128"], "--egress-proxy takes http://"),
        (["--egress-proxy", "http://p:3128/path"], "--egress-proxy takes http://"),
        (["--egress-proxy", "socks5://p:1080"], "--egress-proxy takes http://"),
        (["--egress-proxy-bypass", "a.example"], "needs --egress-proxy"),
        (["--egress-proxy", "http://p:1", "--egress-proxy-bypass", "a b"], "bypass"),
        (["--allow-private-urls", "--egress-allow", "10.0.0.1"], "do not go together"),
    ],
)
def test_bad_egress_flags(argv: list[str], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse(argv, {})


def test_a_bad_proxy_url_is_shown_without_its_password() -> None:
    with pytest.raises(ConfigError) as e:
        parse(["--egress-proxy", "https://u:s3cret-pw@p:3128"], {})
    assert "s3cret-pw" not in str(e.value) and "***" in str(e.value)


def test_allowed_hosts_and_max_connections() -> None:
    assert parse([], {}).allowed_hosts == ()
    assert parse([], {}).max_connections is None  # a cap made from the open-files limit
    config = parse(
        ["--allowed-hosts", " Hooks.Internal, *.corp.example ,", "--max-connections", "64"], {}
    )
    assert config.allowed_hosts == ("hooks.internal", "*.corp.example")
    assert config.max_connections == 64
    config = parse([], {"WEBHOOKS_ALLOWED_HOSTS": "*", "WEBHOOKS_MAX_CONNECTIONS": "9"})
    assert (config.allowed_hosts, config.max_connections) == (("*",), 9)
    assert parse(["--max-connections", "5"], {"WEBHOOKS_MAX_CONNECTIONS": "9"}).max_connections == 5


def test_limits_of_webhooks_delivery_settings() -> None:
    assert parse([], {}).limits == Limits(20, 604800.0, 60.0, 32)
    config = parse(
        [
            "--max-retries",
            "5",
            "--max-retry-window",
            "3600",
            "--max-delivery-timeout",
            "30",
            "--max-webhook-concurrency",
            "4",
        ],
        {},
    )
    assert config.limits == Limits(5, 3600.0, 30.0, 4)
    environ = {
        "WEBHOOKS_MAX_RETRIES": "3",
        "WEBHOOKS_MAX_RETRY_WINDOW": "60",
        "WEBHOOKS_MAX_DELIVERY_TIMEOUT": "2.5",
        "WEBHOOKS_MAX_WEBHOOK_CONCURRENCY": "16",
    }
    assert parse([], environ).limits == Limits(3, 60.0, 2.5, 16)
    assert parse(["--max-retries", "7"], environ).limits.max_retries == 7  # the flag wins

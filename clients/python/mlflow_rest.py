"""The webhooks API of an MLflow tracking server over plain HTTP, for `webhooksctl
import-mlflow`: listing its webhooks and disabling one. The service's own client stays gRPC;
this module speaks MLflow's REST API, and authenticates the way MLflow's client does."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

WEBHOOKS_PATH = "/api/2.0/mlflow/webhooks"
# Answered only by an MLflow server that runs the bridge (contract section 9).
BRIDGE_STATUS_PATH = "/webhooks-bridge/status"
PAGE_SIZE = 100
# MLflow's client sends MLFLOW_WORKSPACE in this header: with workspaces on, a server lists
# and changes only that workspace's webhooks.
WORKSPACE_HEADER = "X-MLFLOW-WORKSPACE"


class MlflowError(Exception):
    """A call to the MLflow server failed; the message says what and how to fix it."""


@dataclass(frozen=True)
class MlflowWebhook:
    """A webhook as MLflow stores it. MLflow never returns the secret."""

    webhook_id: str
    name: str
    url: str
    events: tuple[tuple[str, str], ...]  # (ENTITY, ACTION) as MLflow names them
    status: str  # ACTIVE or DISABLED
    description: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MlflowWebhook:
        try:
            events = tuple(
                (str(e["entity"]).upper(), str(e["action"]).upper()) for e in data["events"]
            )
            return cls(
                webhook_id=str(data["webhook_id"]),
                name=str(data["name"]),
                url=str(data["url"]),
                events=events,
                # MLflow leaves a field at its default out of the JSON; its default is ACTIVE.
                status=str(data.get("status") or "ACTIVE").upper(),
                description=str(data.get("description") or ""),
            )
        except (KeyError, TypeError) as e:
            raise MlflowError(f"MLflow answered a webhook without {e}: {data!r:.200}") from None


def auth_header(env: Mapping[str, str]) -> str | None:
    """The Authorization header MLflow's client sends for these variables: Basic when both
    MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD are set (they win, as in MLflow),
    else Bearer MLFLOW_TRACKING_TOKEN, else none."""
    username = env.get("MLFLOW_TRACKING_USERNAME")
    password = env.get("MLFLOW_TRACKING_PASSWORD")
    if username and password:
        pair = base64.standard_b64encode(f"{username}:{password}".encode()).decode()
        return f"Basic {pair}"
    token = env.get("MLFLOW_TRACKING_TOKEN")
    return f"Bearer {token}" if token else None


def request_headers(env: Mapping[str, str]) -> dict[str, str]:
    """Every header MLflow's client would add for these variables."""
    headers = {}
    auth = auth_header(env)
    if auth:
        headers["Authorization"] = auth
    workspace = env.get("MLFLOW_WORKSPACE", "").strip()
    if workspace:
        headers[WORKSPACE_HEADER] = workspace
    return headers


def tls_context(env: Mapping[str, str]) -> ssl.SSLContext:
    """MLflow's TLS variables: MLFLOW_TRACKING_INSECURE_TLS=true skips verification,
    MLFLOW_TRACKING_SERVER_CERT_PATH is the CA bundle to verify against,
    MLFLOW_TRACKING_CLIENT_CERT_PATH a client certificate (PEM with its key)."""
    if env.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        context = ssl._create_unverified_context()  # noqa: S323 (the operator asked for it)
    else:
        context = ssl.create_default_context(cafile=env.get("MLFLOW_TRACKING_SERVER_CERT_PATH"))
    client_cert = env.get("MLFLOW_TRACKING_CLIENT_CERT_PATH")
    if client_cert:
        context.load_cert_chain(client_cert)
    return context


def base_url(uri: str) -> str:
    """The tracking URI as MLflow's client takes it: http(s), the API paths below it."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MlflowError(
            f"--mlflow-uri must be the http:// or https:// address of an MLflow tracking "
            f"server, got {uri!r}"
        )
    if parts.username or parts.password:
        raise MlflowError(
            "--mlflow-uri must not hold credentials: set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN"
        )
    return uri.rstrip("/")


class MlflowRest:
    """The few calls of MLflow's REST API that the import needs."""

    def __init__(self, uri: str, env: Mapping[str, str], timeout: float) -> None:
        self.base = base_url(uri)
        self.timeout = timeout
        self._headers = request_headers(env)
        try:
            self._tls = tls_context(env) if self.base.startswith("https:") else None
        except (OSError, ssl.SSLError) as e:
            raise MlflowError(f"cannot set up TLS from MLflow's variables: {e}") from None

    def _call(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> tuple[int, Any]:
        """The status and the JSON body (None when not JSON) of one call. A refused
        connection or a timeout raises MlflowError; an HTTP error status is returned."""
        headers = {"Accept": "application/json", **self._headers}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(  # noqa: S310 (base_url allows only http and https)
            self.base + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=self.timeout, context=self._tls
            ) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise MlflowError(f"cannot reach MLflow at {self.base}: {reason}") from None
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, None

    def _checked(
        self, method: str, path: str, what: str, body: Mapping[str, Any] | None = None
    ) -> Any:
        status, answer = self._call(method, path, body)
        if status == 200 and isinstance(answer, dict):
            return answer
        raise MlflowError(f"{what}: {explain(status, answer, self.base)}")

    def is_bridge(self) -> bool:
        """True when the server runs the webhooks bridge, whose webhooks API is this
        service's own: importing from it would copy the service into itself."""
        status, answer = self._call("GET", BRIDGE_STATUS_PATH)
        return status == 200 and isinstance(answer, dict) and "spooled" in answer

    def webhooks(self, page_size: int = PAGE_SIZE) -> Iterator[MlflowWebhook]:
        """Every webhook, across all pages."""
        token = ""
        seen: set[str] = set()
        while True:
            query = {"max_results": page_size, **({"page_token": token} if token else {})}
            page = self._checked(
                "GET", f"{WEBHOOKS_PATH}?{urlencode(query)}", "listing MLflow's webhooks"
            )
            for item in page.get("webhooks", []):
                yield MlflowWebhook.from_json(item)
            token = page.get("next_page_token") or ""
            if not token:
                return
            if token in seen:
                raise MlflowError("MLflow answered the same next_page_token twice")
            seen.add(token)

    def disable(self, webhook_id: str) -> None:
        self._checked(
            "PATCH",
            f"{WEBHOOKS_PATH}/{quote(webhook_id, safe='')}",
            f"disabling webhook {webhook_id} in MLflow",
            {"status": "DISABLED"},
        )


def explain(status: int, answer: Any, base: str) -> str:
    """MLflow's own error message where it sent one, with a hint for the usual causes."""
    message = ""
    if isinstance(answer, dict) and (answer.get("error_code") or answer.get("message")):
        message = str(answer.get("error_code") or "ERROR")
        message += f": {answer['message']}" if answer.get("message") else " (no message)"
    if status in (401, 403):
        hint = "set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        said = f", {message}" if message else ""
        return f"MLflow refused the credentials (HTTP {status}{said}); {hint}"
    if status == 404 and not message:
        return (
            f"{base} has no webhooks API (HTTP 404): is it an MLflow tracking server, "
            "MLflow 3.3 or newer?"
        )
    return f"HTTP {status}" + (f", {message}" if message else " without MLflow's error JSON")

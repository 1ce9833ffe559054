"""webhooksctl: the operator's command line for every RPC of the webhooks service.

Exit status: 0 on success, 1 when the server answers an error or cannot be reached (or,
for import-mlflow, when MLflow does, or any webhook was not imported), 2 for bad arguments
(argparse's own convention, kept for the checks made here too)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from mlflow_webhooks.clients.python import mlflow_import
from mlflow_webhooks.clients.python.client import (
    DEFAULT_TIMEOUT,
    WebhooksClient,
    WebhooksError,
    delivery_status,
    event_name,
    parse_event,
    to_json,
    webhook_status,
)
from mlflow_webhooks.clients.python.mlflow_rest import MlflowError, MlflowRest, base_url
from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
from mlflow_webhooks.generated import webhooks_pb2 as pb

PROG = "webhooksctl"


# Output


def _time(millis: int) -> str:
    moment = datetime.fromtimestamp(millis / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _pairs(pairs: Sequence[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k.ljust(width)}  {v}".rstrip() for k, v in pairs)


def _events(events: Sequence[pb.WebhookEvent]) -> str:
    return ",".join(event_name(e) for e in events)


def _webhook_status(webhook: pb.Webhook) -> str:
    return pb.WebhookStatus.Name(webhook.status) if webhook.HasField("status") else ""


def _webhook_pairs(w: pb.Webhook) -> str:
    return _pairs(
        [
            ("webhook_id", w.webhook_id),
            ("name", w.name),
            ("url", w.url),
            ("events", _events(w.events)),
            ("status", _webhook_status(w)),
            ("description", w.description),
            ("created", _time(w.creation_timestamp)),
            ("updated", _time(w.last_updated_timestamp)),
        ]
    )


def _webhook_table(webhooks: Sequence[pb.Webhook]) -> str:
    rows = [[w.webhook_id, w.name, _webhook_status(w), _events(w.events), w.url] for w in webhooks]
    return _table(["WEBHOOK_ID", "NAME", "STATUS", "EVENTS", "URL"], rows)


def _delivery_status(d: dpb.Delivery) -> str:
    return dpb.DeliveryStatus.Name(d.status)


ERROR_SHOWN = 60  # characters of an attempt's error in a table; `delivery ID` shows it all


def _short(text: str) -> str:
    return text if len(text) <= ERROR_SHOWN else text[: ERROR_SHOWN - 1] + "…"


def _delivery_table(deliveries: Sequence[dpb.Delivery]) -> str:
    """One line per delivery with its latest attempt, so that one retrying against a 500
    reads as such, not as one never tried."""
    rows = []
    for d in deliveries:
        last = d.last_attempt if d.HasField("last_attempt") else None
        rows.append(
            [
                d.delivery_id,
                d.webhook_id,
                event_name(d.event),
                _delivery_status(d),
                str(d.attempt_count),
                _time(last.timestamp) if last else "-",
                str(last.response_status) if last and last.HasField("response_status") else "-",
                _short(last.error) if last and last.error else "-",
                _time(d.next_attempt_timestamp) if d.HasField("next_attempt_timestamp") else "-",
                _time(d.creation_timestamp),
            ]
        )
    headers = ["DELIVERY_ID", "WEBHOOK_ID", "EVENT", "STATUS", "ATTEMPTS", "LAST_ATTEMPT"]
    headers += ["HTTP", "ERROR", "NEXT_ATTEMPT", "CREATED"]
    return _table(headers, rows)


def _delivery_detail(d: dpb.Delivery) -> str:
    pairs = [
        ("delivery_id", d.delivery_id),
        ("event_id", d.event_id),
        ("webhook_id", d.webhook_id),
        ("event", event_name(d.event)),
        ("status", _delivery_status(d)),
        ("test", "yes" if d.test else "no"),
        ("created", _time(d.creation_timestamp)),
    ]
    if d.HasField("next_attempt_timestamp"):
        pairs.append(("next_attempt", _time(d.next_attempt_timestamp)))
    text = _pairs(pairs)
    if d.attempts:
        rows = [
            [
                str(a.number),
                _time(a.timestamp),
                f"{a.duration_ms}ms",
                str(a.response_status) if a.HasField("response_status") else "-",
                a.error or "",
            ]
            for a in d.attempts
        ]
        text += "\n\n" + _table(["ATTEMPT", "SENT", "DURATION", "STATUS", "ERROR"], rows)
    return text


def _test_result(r: pb.WebhookTestResult) -> str:
    pairs = [("success", "yes" if r.success else "no")]
    if r.HasField("response_status"):
        pairs.append(("response_status", str(r.response_status)))
    if r.HasField("response_body"):
        pairs.append(("response_body", r.response_body))
    if r.HasField("error_message"):
        pairs.append(("error_message", r.error_message))
    return _pairs(pairs)


# Commands: each returns what to print as a table and what to print with --json.

Result = tuple[str, dict[str, Any]]


class CommandFailed(Exception):
    """The command did part of its work: its output is printed, then `errors` on standard
    error, and the exit status is 1."""

    def __init__(self, result: Result, errors: list[str]) -> None:
        super().__init__(errors[-1])
        self.result = result
        self.errors = errors


def _webhook_result(w: pb.Webhook) -> Result:
    return _webhook_pairs(w), {"webhook": to_json(w)}


def cmd_create(client: WebhooksClient, args: argparse.Namespace) -> Result:
    return _webhook_result(
        client.create(
            args.name,
            args.url,
            args.events,
            description=args.description,
            secret=args.secret,
            status=args.status,
        )
    )


def cmd_list(client: WebhooksClient, args: argparse.Namespace) -> Result:
    webhooks = list(client.iter_webhooks(args.page_size))
    return _webhook_table(webhooks), {"webhooks": [to_json(w) for w in webhooks]}


def cmd_get(client: WebhooksClient, args: argparse.Namespace) -> Result:
    return _webhook_result(client.get(args.webhook_id))


def cmd_update(client: WebhooksClient, args: argparse.Namespace) -> Result:
    return _webhook_result(
        client.update(
            args.webhook_id,
            name=args.name,
            url=args.url,
            events=args.events,
            description=args.description,
            secret=args.secret,
            status=args.status,
        )
    )


def cmd_delete(client: WebhooksClient, args: argparse.Namespace) -> Result:
    client.delete(args.webhook_id)
    return f"deleted webhook {args.webhook_id}", {}


def cmd_test(client: WebhooksClient, args: argparse.Namespace) -> Result:
    result = client.test(args.webhook_id, args.event)
    return _test_result(result), {"result": to_json(result)}


def cmd_publish(client: WebhooksClient, args: argparse.Namespace) -> Result:
    response = client.publish(args.event, args.data, args.idempotency_key)
    text = _pairs(
        [
            ("event_id", response.event_id),
            ("delivery_ids", ",".join(response.delivery_ids) or "(no subscribed webhook)"),
        ]
    )
    return text, to_json(response)


def cmd_deliveries(client: WebhooksClient, args: argparse.Namespace) -> Result:
    deliveries = list(
        client.deliveries(
            webhook_id=args.webhook_id,
            event_id=args.event_id,
            status=args.status,
            event=args.event,
            since=args.since,
            until=args.until,
            page_size=args.page_size,
        )
    )
    return _delivery_table(deliveries), {"deliveries": [to_json(d) for d in deliveries]}


def cmd_delivery(client: WebhooksClient, args: argparse.Namespace) -> Result:
    d = client.delivery(args.delivery_id)
    return _delivery_detail(d), {"delivery": to_json(d)}


def cmd_redeliver(client: WebhooksClient, args: argparse.Namespace) -> Result:
    if args.failed:
        return _redeliver_failed(client, args)
    d = client.redeliver(args.delivery_id)
    return _delivery_detail(d), {"delivery": to_json(d)}


def _redeliver_failed(client: WebhooksClient, args: argparse.Namespace) -> Result:
    """Every FAILED delivery of the webhook since the time, batch after batch (each batch is
    bounded on the server), with the totals."""
    sent = succeeded = 0
    ids: list[str] = []
    for batch in client.redeliver_failed(args.webhook, args.since):
        sent += batch.redelivered
        succeeded += batch.succeeded
        ids += batch.delivery_ids
    text = _pairs(
        [
            ("redelivered", str(sent)),
            ("succeeded", str(succeeded)),
            ("failed", str(sent - succeeded)),
            ("delivery_ids", ",".join(ids) or "(no failed delivery since then)"),
        ]
    )
    return text, {"redelivered": sent, "succeeded": succeeded, "delivery_ids": ids}


def _filter_result(f: dpb.WebhookFilter) -> Result:
    parts = [("names", f.names), ("aliases", f.aliases), ("tag_keys", f.tag_keys)]
    given = [(part, ",".join(entries)) for part, entries in parts if entries]
    text = _pairs(given) if given else "no filter: every event of the webhook's types"
    return text, {"filter": to_json(f)}


def cmd_filter(client: WebhooksClient, args: argparse.Namespace) -> Result:
    changes = (args.names, args.aliases, args.tag_keys)
    if not args.clear and all(c is None for c in changes):
        return _filter_result(client.get_filter(args.webhook_id))
    return _filter_result(
        client.set_filter(
            args.webhook_id,
            names=args.names or (),
            aliases=args.aliases or (),
            tag_keys=args.tag_keys or (),
        )
    )


def cmd_settings(client: WebhooksClient, args: argparse.Namespace) -> Result:
    changes = (args.retry_schedule, args.delivery_timeout, args.max_concurrency, args.ordered)
    if all(c is None for c in changes):
        settings = client.get_settings(args.webhook_id)
    else:
        settings = client.set_settings(
            args.webhook_id,
            retry_schedule=args.retry_schedule,
            timeout=args.delivery_timeout,
            max_concurrency=args.max_concurrency,
            ordered=args.ordered,
        )
    schedule = settings.retry_schedule.delays_seconds
    text = _pairs(
        [
            (
                "retry_schedule",
                ",".join(f"{d:g}" for d in schedule)
                if settings.HasField("retry_schedule")
                else "the server's (--retry-schedule)",
            ),
            (
                "timeout",
                f"{settings.timeout_seconds:g}s"
                if settings.HasField("timeout_seconds")
                else "the server's (--delivery-timeout)",
            ),
            (
                "max_concurrency",
                str(settings.max_concurrency)
                if settings.HasField("max_concurrency")
                else "the server's (32, or --max-webhook-concurrency if lower)",
            ),
            (
                "ordered",
                "yes: one at a time, in publish order" if settings.ordered else "no",
            ),
        ]
    )
    return text, {"settings": to_json(settings)}


def _or_default(parse: Callable[[str], Any], unset: Any) -> Callable[[str], Any]:
    """An argument type that reads `default` as the value that puts a setting back to the
    server's."""

    def read(value: str) -> Any:
        if value.strip() == "default":
            return unset
        try:
            return parse(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a valid value") from None

    return read


def _delays(value: str) -> list[float]:
    return [float(d) for d in value.split(",") if d.strip()]


def cmd_rotate_secret(client: WebhooksClient, args: argparse.Namespace) -> Result:
    response = client.rotate_secret(
        args.webhook_id, args.secret, overlap_seconds=args.overlap_seconds
    )
    pairs = [("webhook_id", response.webhook.webhook_id)]
    if response.HasField("secret"):
        pairs.append(("secret", f"{response.secret}   (generated: shown this once)"))
    if response.HasField("previous_secret_expires_timestamp"):
        until = _time(response.previous_secret_expires_timestamp)
        pairs.append(("old_secret_signs_until", until))
    else:
        pairs.append(("old_secret_signs_until", "(no overlap: only the new secret signs)"))
    return _pairs(pairs), to_json(response)


def cmd_events(client: WebhooksClient, args: argparse.Namespace) -> Result:
    types = client.event_types()
    rows = [[t.name, ",".join(t.data_fields)] for t in types]
    return _table(["EVENT", "DATA_FIELDS"], rows), {"event_types": [to_json(t) for t in types]}


def _import_json(o: mlflow_import.Outcome) -> dict[str, Any]:
    w = o.source
    out: dict[str, Any] = {
        "mlflow_webhook_id": w.webhook_id,
        "name": w.name,
        "url": w.url,
        "events": [{"entity": e, "action": a} for e, a in w.events],
        "mlflow_status": w.status,
        "result": o.result.replace(" ", "_"),
        "in_mlflow": o.source_action.replace(" ", "_"),
        "needs_secret": o.needs_secret,
    }
    if o.webhook_id:
        out["webhook_id"] = o.webhook_id
    if o.error:
        out["error"] = o.error
    return out


_SUMMARY_WORDS = {mlflow_import.EXISTS: "already in the service"}


def _import_summary(outcomes: Sequence[mlflow_import.Outcome], dry_run: bool) -> tuple[str, dict]:
    """One line for people, and the same counts for --json."""
    counts = {"webhooks": len(outcomes)}
    for what in mlflow_import.RESULTS:
        counts[what] = sum(o.result == what for o in outcomes)
    for what in (mlflow_import.DISABLED, mlflow_import.WOULD_DISABLE):
        counts[f"{what} in MLflow"] = sum(o.source_action == what for o in outcomes)
    # An error on a webhook that was copied: MLflow refused to disable the original.
    counts["not disabled in MLflow"] = sum(
        bool(o.error) and o.result != mlflow_import.FAILED for o in outcomes
    )
    said = ", ".join(
        f"{n} {_SUMMARY_WORDS.get(k, k)}" for k, n in counts.items() if n and k != "webhooks"
    )
    line = f"{len(outcomes)} webhooks in MLflow" + (f": {said}" if said else "")
    if dry_run:
        line = f"dry run, nothing changed: {line}"
    return line, {k.replace(" ", "_").lower(): n for k, n in counts.items()}


def cmd_import_mlflow(client: WebhooksClient, args: argparse.Namespace) -> Result:
    mlflow = MlflowRest(args.mlflow_uri, os.environ, args.timeout)
    outcomes = mlflow_import.run(
        mlflow,
        client,
        disable_source=args.disable_source,
        dry_run=args.dry_run,
        page_size=args.page_size,
    )
    rows = [
        [o.source.webhook_id, o.source.name, o.source.status, o.result, o.webhook_id or "-"]
        + ([o.source_action] if args.disable_source else [])
        for o in outcomes
    ]
    headers = ["MLFLOW_ID", "NAME", "MLFLOW_STATUS", "RESULT", "WEBHOOK_ID"]
    text = _table(headers + (["IN_MLFLOW"] if args.disable_source else []), rows)
    secrets = [o for o in outcomes if o.needs_secret]
    if secrets:
        text += (
            "\n\nMLflow never returns secrets: these copies sign nothing until their secret "
            "is set again (where the MLflow webhook had one):\n"
            + "\n".join(
                f"  {PROG} update {o.webhook_id} --secret …   # {o.source.name}" for o in secrets
            )
        )
    summary, counts = _import_summary(outcomes, args.dry_run)
    text += "\n\n" + summary
    result = text, {"webhooks": [_import_json(o) for o in outcomes], "summary": counts}
    errors = [
        f"{PROG}: MLflow webhook {o.source.webhook_id} ({o.source.name}): {o.error}"
        for o in mlflow_import.failed(outcomes)
    ]
    if errors:
        raise CommandFailed(result, [*errors, f"{PROG}: import-mlflow: {summary}"])
    return result


# Argument types: a ValueError or ArgumentTypeError becomes argparse's exit-2 usage error.


def _event_arg(value: str) -> pb.WebhookEvent:
    try:
        return parse_event(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _events_arg(value: str) -> list[pb.WebhookEvent]:
    return [_event_arg(v) for v in value.split(",") if v.strip()]


def _checked(check: Callable[[str], int]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        try:
            check(value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return value.upper()

    return parse


def _json_object(value: str) -> dict[str, Any]:
    try:
        data = json.loads(value)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"--data is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise argparse.ArgumentTypeError("--data must be a JSON object")
    return data


UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def moment(value: str, now: float | None = None) -> int:
    """A time as Unix milliseconds: an ISO-8601 date or time (UTC unless it says otherwise),
    a span back from now (`90m`, `24h`, `7d`), or Unix milliseconds as they are."""
    text = value.strip()
    if text.isascii() and text.isdigit():
        return int(text)
    if text[:-1].isascii() and text[:-1].isdigit() and text[-1:].lower() in UNITS:
        current = datetime.now(UTC).timestamp() if now is None else now
        return int((current - int(text[:-1]) * UNITS[text[-1:].lower()]) * 1000)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid time {value!r}: give an ISO-8601 time (2026-01-31T12:00:00Z), a span "
            "back from now (90m, 24h, 7d) or Unix milliseconds"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _overlap(value: str) -> int:
    """A span as whole seconds: `0`, `3600`, `90m`, `24h`, `7d`."""
    text = value.strip()
    unit = UNITS.get(text[-1:].lower(), 0) if text else 0
    number = text[:-1] if unit else text
    if not (number.isascii() and number.isdigit()):
        raise argparse.ArgumentTypeError(
            f"--overlap takes seconds or a span such as 90m, 24h or 7d, got {value!r}"
        )
    return int(number) * (unit or 1)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"--timeout takes a positive number, got {value!r}")
    return seconds


def _mlflow_uri(value: str) -> str:
    try:
        return base_url(value)
    except MlflowError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _page_size(value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        size = 0
    if not 1 <= size <= 1000:
        raise argparse.ArgumentTypeError(f"--page-size takes 1 to 1000, got {value!r}")
    return size


def _flatten(groups: list[list[pb.WebhookEvent]] | None) -> list[pb.WebhookEvent] | None:
    return None if groups is None else [e for group in groups for e in group]


def _webhook_fields(p: argparse.ArgumentParser, creating: bool) -> None:
    p.add_argument("--name", required=creating, help="1 to 63 of [a-z0-9._-]")
    p.add_argument("--url", required=creating, help="where deliveries are POSTed")
    p.add_argument(
        "--event",
        dest="events",
        action="append",
        type=_events_arg,
        required=creating,
        metavar="EVENT",
        help="entity.action, e.g. model_version.created; repeat or comma-separate"
        + ("" if creating else "; replaces the subscribed events"),
    )
    p.add_argument("--description")
    p.add_argument(
        "--secret",
        help="HMAC signing secret" + ("" if creating else "; an empty string turns signing off"),
    )
    p.add_argument("--status", type=_checked(webhook_status), help="ACTIVE or DISABLED")


def _global_options(p: argparse.ArgumentParser, defaults: bool) -> None:
    """Added to the top parser with defaults, and to each command without, so that
    `webhooksctl --json list` and `webhooksctl list --json` both work."""
    env = os.environ

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    p.add_argument(
        "--address",
        default=default(env.get("WEBHOOKS_ADDRESS") or "127.0.0.1:50051"),
        help="gRPC HOST:PORT of the server [WEBHOOKS_ADDRESS, default 127.0.0.1:50051]",
    )
    p.add_argument(
        "--token",
        default=default(env.get("WEBHOOKS_AUTH_TOKEN") or None),
        help="bearer token [WEBHOOKS_AUTH_TOKEN]",
    )
    p.add_argument(
        "--cacert",
        default=default(env.get("WEBHOOKS_CACERT") or None),
        metavar="FILE",
        help="PEM CA certificates; connects with TLS when given [WEBHOOKS_CACERT]",
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=default(DEFAULT_TIMEOUT),
        metavar="SECONDS",
        help=f"deadline of each call (default {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print the response message as JSON, as the JSON shim does",
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog=PROG, description="Operate the MLflow webhooks service.")
    _global_options(top, defaults=True)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, defaults=False)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[..., Result], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        p.set_defaults(func=func)
        return p

    _webhook_fields(command("create", cmd_create, "create a webhook"), creating=True)
    p = command("list", cmd_list, "list every webhook, newest first")
    p.add_argument("--page-size", type=_page_size, help="webhooks fetched per call")
    command("get", cmd_get, "show a webhook").add_argument("webhook_id")
    p = command("update", cmd_update, "change the given fields of a webhook")
    p.add_argument("webhook_id")
    _webhook_fields(p, creating=False)
    command("delete", cmd_delete, "delete a webhook").add_argument("webhook_id")
    p = command("test", cmd_test, "send an example payload to a webhook now")
    p.add_argument("webhook_id")
    p.add_argument("--event", type=_event_arg, help="default: the webhook's first event")
    p = command("publish", cmd_publish, "publish an event to the subscribed webhooks")
    p.add_argument("event", type=_event_arg, help="entity.action, e.g. model_version.created")
    p.add_argument(
        "--data", type=_json_object, required=True, help="the event's data (JSON object)"
    )
    p.add_argument(
        "--idempotency-key",
        help="the same event again within 24 hours answers the first ids; another event with "
        "it is refused",
    )
    p = command("deliveries", cmd_deliveries, "list deliveries, newest first")
    p.add_argument("--webhook-id")
    p.add_argument("--event-id")
    p.add_argument(
        "--status", type=_checked(delivery_status), help="PENDING, SUCCEEDED, FAILED, CANCELLED"
    )
    p.add_argument("--event", type=_event_arg, help="entity.action, e.g. model_version.created")
    p.add_argument("--since", type=moment, help="created at or after: ISO-8601, 24h, 7d or ms")
    p.add_argument("--until", type=moment, help="created before: ISO-8601, 24h, 7d or ms")
    p.add_argument("--page-size", type=_page_size, help="deliveries fetched per call")
    command("delivery", cmd_delivery, "show a delivery and its attempts").add_argument(
        "delivery_id"
    )
    p = command(
        "redeliver",
        cmd_redeliver,
        "send a delivery again now, or with --failed every failed delivery of a webhook since "
        "a time",
    )
    p.add_argument("delivery_id", nargs="?")
    p.add_argument(
        "--failed", action="store_true", help="every FAILED delivery of --webhook since --since"
    )
    p.add_argument("--webhook", metavar="WEBHOOK_ID", help="with --failed")
    p.add_argument("--since", type=moment, help="with --failed: ISO-8601, 24h, 7d or ms")
    p = command(
        "filter",
        cmd_filter,
        "show a webhook's filter, or set it: the given parts replace the whole filter",
    )
    p.add_argument("webhook_id")
    p.add_argument(
        "--name",
        dest="names",
        action="append",
        metavar="GLOB",
        help="model or prompt name pattern, e.g. 'fraud-*'; repeat for several",
    )
    p.add_argument(
        "--alias", dest="aliases", action="append", help="alias name; repeat for several"
    )
    p.add_argument(
        "--tag-key", dest="tag_keys", action="append", help="tag key; repeat for several"
    )
    p.add_argument(
        "--clear", action="store_true", help="remove the filter: every event of its types"
    )
    p = command(
        "settings",
        cmd_settings,
        "show a webhook's delivery settings, or change those given (the others are kept)",
    )
    p.add_argument("webhook_id")
    p.add_argument(
        "--retry-schedule",
        type=_or_default(_delays, []),
        metavar="SECONDS,...|default",
        help="seconds before each retry, e.g. 10,60,600; default: the server's",
    )
    p.add_argument(
        "--delivery-timeout",
        type=_or_default(float, 0.0),
        metavar="SECONDS|default",
        help="seconds allowed for one attempt; default: the server's",
    )
    p.add_argument(
        "--max-concurrency",
        type=_or_default(int, 0),
        metavar="N|default",
        help="most attempts in flight at once, per server process; default: the server's "
        "(32, or its --max-webhook-concurrency if lower)",
    )
    order = p.add_mutually_exclusive_group()
    order.add_argument(
        "--ordered",
        action="store_const",
        const=True,
        help="one delivery at a time, in publish order (docs/delivery.md)",
    )
    order.add_argument(
        "--unordered",
        dest="ordered",
        action="store_const",
        const=False,
        help="deliveries side by side again (the default)",
    )
    p = command(
        "rotate-secret",
        cmd_rotate_secret,
        "replace a webhook's signing secret; the old one signs deliveries too during the overlap",
    )
    p.add_argument("webhook_id")
    p.add_argument(
        "--secret",
        help="the new secret (default: one is generated and printed, this once)",
    )
    p.add_argument(
        "--overlap",
        dest="overlap_seconds",
        type=_overlap,
        metavar="SPAN",
        help="how long the old secret signs too: seconds or 90m, 24h, 7d; 0 to 7d (default 24h)",
    )
    command("events", cmd_events, "list the events webhooks may subscribe to")
    p = command(
        "import-mlflow",
        cmd_import_mlflow,
        "copy the webhooks of a plain MLflow server into the service",
    )
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or None
    p.add_argument(
        "--mlflow-uri",
        type=_mlflow_uri,
        default=tracking_uri,
        required=tracking_uri is None,
        metavar="URI",
        help="the MLflow tracking server, without the bridge [MLFLOW_TRACKING_URI]",
    )
    p.add_argument(
        "--disable-source",
        action="store_true",
        help="disable each MLflow webhook once its copy is in the service",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    p.add_argument(
        "--page-size",
        type=_page_size,
        default=100,
        help="webhooks fetched from MLflow per call (default 100)",
    )
    return top


def _check_redeliver(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """redeliver takes a delivery id, or --failed with --webhook and --since: not both."""
    if args.command != "redeliver":
        return
    if args.failed:
        if args.delivery_id:
            p.error("redeliver: give a delivery id or --failed, not both")
        if not args.webhook or args.since is None:
            p.error("redeliver --failed needs --webhook WEBHOOK_ID and --since TIME")
    elif not args.delivery_id:
        p.error("redeliver: give a delivery id, or --failed --webhook ID --since TIME")
    elif args.webhook or args.since is not None:
        p.error("redeliver: --webhook and --since go with --failed")


def _check_filter(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.command == "filter" and args.clear and (args.names or args.aliases or args.tag_keys):
        p.error("filter: --clear removes the filter; give it alone, or the parts to set")


def main(argv: Sequence[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    _check_redeliver(cli, args)
    _check_filter(cli, args)
    if hasattr(args, "events"):
        args.events = _flatten(args.events)
    root_certificates = None
    if args.cacert:
        try:
            with open(args.cacert, "rb") as f:
                root_certificates = f.read()
        except OSError as e:
            print(f"{PROG}: cannot read --cacert {args.cacert}: {e.strerror}", file=sys.stderr)
            return 2
    try:
        with WebhooksClient(args.address, args.token, root_certificates, args.timeout) as client:
            text, data = args.func(client, args)
    except WebhooksError as e:
        print(f"{PROG}: {e.code.name}: {e.message}", file=sys.stderr)
        return 1
    except MlflowError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except CommandFailed as e:
        _print(args, *e.result)
        print("\n".join(e.errors), file=sys.stderr)
        return 1
    _print(args, text, data)
    return 0


def _print(args: argparse.Namespace, text: str, data: dict[str, Any]) -> None:
    try:
        if args.json:
            print(json.dumps(data, indent=2), flush=True)
        elif text:
            print(text, flush=True)
    except BrokenPipeError:
        # The reader (`| head`) left early: the call itself succeeded. Point stdout at
        # /dev/null so that the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())

"""What reaches logs and metrics from what a caller sends, in-process: request ids, metric
labels, text log fields and the log throttle. tests/test_security.py checks a real server's
log and /metrics."""

from __future__ import annotations

import io
import logging

import pytest

from mlflow_webhooks.server import observe


@pytest.mark.parametrize("presented", ["a", "req-1", "trace.7_B-x", "0" * 128])
def test_plain_request_ids_are_kept(presented: str) -> None:
    assert observe.request_id(presented) == presented


@pytest.mark.parametrize(
    "presented",
    [
        None,
        "",
        "abc code=OK peer=10.0.0.1",
        "a b",
        "a=b",
        'a"b',
        "a\nb",
        "é",
        "0" * 129,
        "a/b",
    ],
)
def test_other_request_ids_are_replaced(presented: str | None) -> None:
    made = observe.request_id(presented)
    assert made != presented
    assert len(made) == 32 and int(made, 16) >= 0


@pytest.mark.parametrize(
    ("verb", "route", "label"),
    [
        (
            "GET",
            "/api/2.0/mlflow/webhooks/{webhook_id}",
            "GET /api/2.0/mlflow/webhooks/{webhook_id}",
        ),
        ("PROPFIND", "/api/2.0/mlflow/webhooks", "OTHER /api/2.0/mlflow/webhooks"),
        ("POST", None, "POST unmatched"),
        ("MADEUP1", None, "OTHER unmatched"),
    ],
)
def test_rest_labels_come_from_a_fixed_set(verb: str, route: str | None, label: str) -> None:
    assert observe.rest_method(verb, route) == label


def text_line(**fields: object) -> str:
    record = logging.LogRecord("webhooks.calls", logging.INFO, __file__, 1, "call", None, None)
    record.fields = fields
    return observe._TextFormatter("%(message)s").format(record)


def test_text_log_fields_cannot_be_forged() -> None:
    line = text_line(error="receiver answered code=OK peer=10.0.0.1", host="example.com")
    assert line == 'call error="receiver answered code=OK peer=10.0.0.1" host=example.com'
    assert text_line(error='a "quoted" \\ value') == r'call error="a \"quoted\" \\ value"'
    assert text_line(status=None, attempt=2) == "call attempt=2"


def test_throttle_lets_one_line_through_per_period_and_counts_the_rest() -> None:
    now = [100.0]
    throttle = observe.Throttle(every=10, clock=lambda: now[0])
    assert throttle("accept") == 0
    assert throttle("accept") is None
    assert throttle("accept") is None
    assert throttle("bad request") == 0  # each kind on its own
    now[0] += 10
    assert throttle("accept") == 2
    assert throttle("accept") is None


def test_access_log_lines_quote_free_text() -> None:
    stream = io.StringIO()
    access = observe.AccessLog("text", stream)
    access.write("webhooks.deliveries", "delivery attempt", {"host": "h", "error": "x code=OK"})
    access.flush()
    assert stream.getvalue().endswith(' delivery attempt host=h error="x code=OK"\n')

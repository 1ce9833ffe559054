"""Section 11: what webhook filters cost per event. One event to 1,000 webhooks that each
have a filter it matches, beside the same event to 1,000 webhooks without one, each set on a
server of its own, to the same receiver, run by run in turn."""

from __future__ import annotations

import json
import time

import grpc

from bench import load
from bench.common import Context, start_server
from bench.delivery import checked, reset, subscribe, wait_arrivals
from bench.machine import median
from bench.procs import Child
from bench.report import Row

FILTERS = "11. Filters"


def add_filters(address: str) -> int:
    """Gives every webhook on the server a filter of its own that the bench's event matches:
    two name patterns (the second matches) and two tag keys (the first matches), so each is
    parsed once and every publish matches each of them for real. Answers how many."""
    from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
    from mlflow_webhooks.generated import webhook_delivery_pb2_grpc as dpb_grpc
    from mlflow_webhooks.generated import webhooks_pb2 as pb
    from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc

    name, key = load.DATA["name"], load.DATA["key"]
    with grpc.insecure_channel(address) as channel:
        hooks = pb_grpc.WebhookServiceStub(channel)
        deliveries = dpb_grpc.WebhookDeliveryServiceStub(channel)
        count, token = 0, ""
        while True:
            page = hooks.listWebhooks(pb.ListWebhooks(max_results=1000, page_token=token))
            for i, webhook in enumerate(page.webhooks, start=count):
                spec = dpb.WebhookFilter(
                    names=[f"team-{i}-*", f"{name[:2]}*"], tag_keys=[key, f"owner-{i}"]
                )
                request = dpb.SetWebhookFilter(webhook_id=webhook.webhook_id, filter=spec)
                deliveries.setWebhookFilter(request)
            count += len(page.webhooks)
            token = page.next_page_token
            if not token:
                return count


def filter_cost(ctx: Context) -> None:
    """(a) publish to last arrival and (b) the publish call itself, filtered against not."""
    s = ctx.settings
    count = s.filter_webhooks
    receiver = Child.of("receiver", ctx.subdir("filters"))
    filtered = start_server(ctx.subdir("filters-filtered"))
    plain = start_server(ctx.subdir("filters-plain"))
    hook = receiver.http_url + load.HOOK_PATH
    arrived: dict[str, list[float]] = {"filtered": [], "plain": []}
    published: dict[str, list[float]] = {"filtered": [], "plain": []}
    try:
        for server in (filtered, plain):
            subscribe(server.grpc_address, hook, count)
        if add_filters(filtered.grpc_address) != count:
            raise RuntimeError("not every webhook got its filter")
        # One publish each first: the filters are parsed and cached, connections opened.
        for server in (filtered, plain):
            reset(receiver)
            checked(ctx.run(load.publish_burst, server.grpc_address, 1, 1), "warm-up")
            wait_arrivals(receiver, count)
        for _ in range(s.runs):
            for kind, server in (("filtered", filtered), ("plain", plain)):
                reset(receiver)
                burst = ctx.run(load.publish_burst, server.grpc_address, 1, 1)
                checked(burst, f"publishing ({kind})")
                published[kind].append(burst.seconds * 1000)
                arrived[kind].append(wait_arrivals(receiver, count)["last"] - burst.started)
    finally:
        filtered.stop()
        plain.stop()
        receiver.stop()
    ctx.add(
        Row(
            FILTERS,
            f"(a) one event to {count:,} webhooks each with a filter, all arrived",
            "s",
            arrived["filtered"],
            arrived["plain"],
            f"the same {count:,} without filters",
        )
    )
    call = ctx.add(
        Row(
            FILTERS,
            f"(b) the publish call, {count:,} filtered subscribers",
            "ms",
            published["filtered"],
            published["plain"],
            f"{count:,} subscribers without filters",
        )
    )
    matched, plain_match = match_times(count, s.runs)
    ctx.add(
        Row(
            FILTERS,
            f"(c) matching one event against {count:,} subscribers' filters (in-process)",
            "us",
            matched,
            plain_match,
            f"{count:,} subscribers without filters",
        )
    )
    per_webhook = (call.figure - (call.ceiling or 0.0)) * 1000 / count
    ctx.note(
        FILTERS,
        f"{count:,} signed webhooks on one receiver on each of two servers (one process each, "
        "SQLite); on one, every webhook has a filter of its own (two name globs, two tag keys) "
        "that the published event matches, so both deliver the same "
        f"{count:,} POSTs and the difference is the filters' cost. Runs alternate between the "
        "two servers after one warm-up publish each. (a): from the publish call to the "
        "receiver's last arrival. (b): the publish call alone, in which each event is matched "
        f"against its subscribers' filters: {per_webhook:+.1f} us per filtered subscriber "
        "(median difference / subscribers). On this shared machine (a) and (b) vary from run "
        "to run by more than the filters cost, so their ratios say only that filters do not "
        "change fan-out's time; (c) measures the filters' own cost. (c): the store's "
        "matching step alone "
        f"(`server/store/store.py` `_matching`), the same {count:,} filters, timed in this "
        f"process over {MATCH_REPEATS} repeats per run, the median repeat; the ceiling is the "
        "same step for subscribers without filters, which returns them all untouched. Before "
        "each filter's name globs were compiled into one expression (fnmatchcase per "
        "pattern), (c) was 6.0-7.2 ms on this machine (2026-12-01, load about 6).",
    )


MATCH_REPEATS = 50


def match_times(count: int, runs: int) -> tuple[list[float], list[float]]:
    """Microseconds to match the bench's event against `count` filters like add_filters'
    (parsed, as the store keeps them), and against `count` subscribers without filters."""
    from mlflow_webhooks.server import filters
    from mlflow_webhooks.server.store.store import _matching

    name, key = load.DATA["name"], load.DATA["key"]
    data = json.dumps(load.DATA)
    with_filters = [
        (
            str(i),
            filters.Filter(names=(f"team-{i}-*", f"{name[:2]}*"), tag_keys=(key, f"owner-{i}")),
        )
        for i in range(count)
    ]
    without = [(str(i), filters.NO_FILTER) for i in range(count)]
    if len(_matching(with_filters, data)) != count:
        raise RuntimeError("the bench's filters do not all match its event")

    def timed(subscribers: list[tuple[str, filters.Filter]]) -> float:
        took = []
        for _ in range(MATCH_REPEATS):
            started = time.perf_counter()
            _matching(subscribers, data)
            took.append((time.perf_counter() - started) * 1e6)
        return median(took)

    return [timed(with_filters) for _ in range(runs)], [timed(without) for _ in range(runs)]

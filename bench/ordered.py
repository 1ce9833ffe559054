"""Section 10: ordered delivery. One webhook on the bench's receiver, first unordered, then
ordered (setWebhookSettings), each beside a bare POST loop to the same receiver at the
concurrency it may use: the worker's per-webhook limit unordered, one at a time ordered."""

from __future__ import annotations

import grpc

from bench import load
from bench.common import Context, start_server
from bench.delivery import checked, reset, subscribe, wait_arrivals
from bench.machine import median
from bench.procs import Child
from bench.report import Row
from mlflow_webhooks.server.delivery.settings import DEFAULT_MAX_CONCURRENCY

ORDERED = "10. Ordered delivery"
# The dispatcher's per-webhook limit: what one unordered webhook may use.
PER_WEBHOOK = DEFAULT_MAX_CONCURRENCY


def set_ordered(address: str, ordered: bool) -> None:
    """Sets the `ordered` setting of every webhook the server has (the bench makes one)."""
    from mlflow_webhooks.generated import webhook_delivery_pb2 as dpb
    from mlflow_webhooks.generated import webhook_delivery_pb2_grpc as dpb_grpc
    from mlflow_webhooks.generated import webhooks_pb2 as pb
    from mlflow_webhooks.generated import webhooks_pb2_grpc as pb_grpc

    with grpc.insecure_channel(address) as channel:
        hooks = pb_grpc.WebhookServiceStub(channel).listWebhooks(pb.ListWebhooks()).webhooks
        stub = dpb_grpc.WebhookDeliveryServiceStub(channel)
        for hook in hooks:
            settings = dpb.WebhookSettings(ordered=ordered)
            stub.setWebhookSettings(
                dpb.SetWebhookSettings(webhook_id=hook.webhook_id, settings=settings)
            )


def ordered_delivery(ctx: Context) -> None:
    """Deliveries/s to one webhook, unordered and ordered, each beside its bare loop."""
    s = ctx.settings
    count = s.ordered_events
    workdir = ctx.subdir("ordered")
    receiver = Child.of("receiver", workdir)
    server = start_server(workdir)
    hook = receiver.http_url + load.HOOK_PATH
    rates: dict[bool, list[float]] = {False: [], True: []}
    ceilings: dict[bool, list[float]] = {False: [], True: []}
    publish_seconds: dict[bool, list[float]] = {False: [], True: []}
    try:
        subscribe(server.grpc_address, hook, 1)
        for _ in range(s.runs):
            for ordered in (False, True):
                set_ordered(server.grpc_address, ordered)
                reset(receiver)
                burst = checked(
                    ctx.run(load.publish_burst, server.grpc_address, count, s.concurrency),
                    "publishing",
                )
                stats = wait_arrivals(receiver, count)
                rates[ordered].append(count / (stats["last"] - burst.started))
                publish_seconds[ordered].append(burst.seconds)
                reset(receiver)
                in_flight = 1 if ordered else PER_WEBHOOK
                bare = checked(ctx.run(load.post_burst, hook, count, in_flight), "bare loop")
                stats = wait_arrivals(receiver, count)
                ceilings[ordered].append(count / (stats["last"] - bare.started))
    finally:
        server.stop()
        receiver.stop()
    ctx.add(
        Row(
            ORDERED,
            "deliveries/s to ONE unordered webhook",
            "deliveries/s",
            rates[False],
            ceilings[False],
            f"bare aiohttp POST loop, {PER_WEBHOOK} in flight",
        )
    )
    ctx.add(
        Row(
            ORDERED,
            "deliveries/s to ONE ordered webhook",
            "deliveries/s",
            rates[True],
            ceilings[True],
            "bare aiohttp POST loop, 1 in flight",
        )
    )
    ctx.add(
        Row(
            ORDERED,
            "deliveries/s, ordered vs unordered, the same webhook",
            "deliveries/s",
            rates[True],
            rates[False],
            "unordered",
        )
    )
    ctx.note(
        ORDERED,
        f"One signed webhook on the receiver; {count:,} events published over gRPC by "
        f"{s.concurrency} concurrent callers in a load process, as fast as the group commit "
        "stores them, first with the webhook unordered, then ordered (setWebhookSettings), in "
        "each run; the figure is deliveries / (the receiver's last arrival - the first "
        f"publish). Publishing took a median {median(publish_seconds[False]):.2f} s "
        f"(unordered) and {median(publish_seconds[True]):.2f} s (ordered): a figure near "
        f"{count:,} / that time was bounded by publishing, not by delivery. Ceilings: as many "
        "POSTs of the same body from an aiohttp client process to the same receiver, timed "
        "the same way, at the concurrency the webhook may use: "
        f"{PER_WEBHOOK} in flight (the worker's per-webhook limit) unordered, 1 ordered. An "
        "ordered webhook's next delivery gets its turn, and is claimed, in the transaction "
        "that writes the result of the one before, so each costs a receiver answer and that "
        "transaction, one after the other.",
    )

"""What profiling found behind the figures (py-spy record --gil on this 2-core machine, and
server CPU per call, which the machine's noise disturbs less than rates). Written by hand,
dated: rerun the profiles when the server changes."""

from __future__ import annotations

PROFILED = "2026-11-28"

# Why a figure misses its target, by the start of its row's "section name".
MISSED: dict[str, str] = {
    "1. gRPC getWebhook": (
        "the server spends 0.86-1.0 ms of CPU per call against 0.27 ms for the no-op, and it "
        "saturates one core (the GIL) while the load process takes the other. Measured by "
        "switching each part off in a scratch copy (server CPU per call, then calls/s and "
        "share of the no-op): as is 0.91-0.96 ms, ~1,220/s, 31%; without the per-call INFO "
        "log line 0.77-0.79 ms, 35%; with the read run on the event loop instead of the "
        "8-thread database pool 0.57-0.58 ms, 46%; both 0.51 ms, ~2,200/s, 55-57%. The hop "
        "to the pool and back (a concurrent Future, a self-pipe wake-up, GIL hand-offs) "
        "costs ~0.35 ms, more than the read itself (0.10 ms since its SQL is made once; "
        "0.31 ms before); the pool's size (1, 2, 4 or 8 threads) does not change it. The "
        "interceptor wrapper costs ~0.025 ms (measured on the no-op). So 50% needs point "
        "reads on the loop thread for SQLite (WAL readers do not wait for writers; not for "
        "PostgreSQL, whose reads wait on the network) and a cheaper or sampled call log: "
        "both are design choices of their owners (README: every store call runs in the "
        "pool), not made here."
    ),
    "2. REST GET one webhook": (
        "the shim spends 0.66-0.79 ms of CPU per request against 0.05-0.07 ms for a bare aiohttp "
        "handler answering a constant: it maps the query into a protobuf message "
        "(json_format.ParseDict), calls the servicer, maps the answer back "
        "(json_format.MessageToDict + json.dumps: ~20% of the server's GIL time), and pays "
        "the same database-pool hop and per-call log line as gRPC. A bare handler is ten "
        "times cheaper than that, so 50% would need a shim that skips the protobuf JSON "
        "mapping on its hot GETs."
    ),
    "3. Delivery (a)": (
        "the server spends about 0.66 ms of CPU per delivery (its share of publishing "
        "included) against 0.08 ms per POST for the bare loop's client. Per delivery it "
        "inserts the row (in the publish transaction), claims it (a write transaction, a "
        "join read and a Fernet decrypt of the secret), rebuilds the JSON body "
        "(json.loads + dumps), signs it, sends it with aiohttp (~23% of the server's GIL "
        "time: about all the bare loop spends), logs and counts it (an INFO line and "
        "Prometheus metrics per attempt: ~8%), and records the result in a batch. Left after "
        "the fixes below: peewee composing the claim, publish and record statements (~12%, "
        "the event's Model.create alone ~6%), the per-row decrypt (~3%), the body rebuild "
        "(~4%). 50% of a bare "
        "aiohttp loop means ~0.15 ms per delivery, which per-delivery rows in SQLite through "
        "peewee cannot reach."
    ),
}

FIXED: list[str] = [
    "List pages cost O(page number): the keyset condition `ts < ? OR (ts = ? AND id < ?)` "
    "made SQLite scan the (creation_timestamp, id) index from the newest row (8-17 ms for "
    "page 500 of 100,000 in SQLite alone). Now a row-value comparison, a range search "
    "(0.1 ms): page 500 went from 2.05x page 1 to 1.01x.",
    "A publish that committed while the worker's claim ran was not seen until the next "
    "publish or the 0.5 s poll (the wake-up was cleared after the claim): p99 "
    "publish-to-first-attempt at 200 events/s went from 58-142 ms to 23-45 ms.",
    "The threads of one process waited for SQLite's write lock in its busy handler (sleeps "
    "of up to 100 ms) instead of a lock of their own, and each batch of results wrote one "
    "UPDATE per delivery instead of one per distinct result. With these two and a third "
    "change, freeing a delivery slot when its attempt ends instead of at the next 20 ms "
    "batch write, sustained deliveries went from about 1,100-1,200 to 1,300-1,500 per "
    "second and server CPU per delivery from 0.69 to 0.60 ms (medians of 3 runs, same code "
    "otherwise). The third was taken back: with --workers N the process receiving the "
    "publishes then claimed nearly every delivery before the other workers' polls saw any "
    "(tests/test_scale_out.py failed about one run in five), so the table shows the first "
    "two only.",
    "Store.get_webhook composed its two SELECTs with peewee on every call; now made once: "
    "0.31 to 0.10 ms per read, getWebhook from 1.2-1.35 to about 1.0 ms of server CPU.",
]

NOTES: list[str] = [
    "Start-up (~1 s) is mostly imports (~0.36 s warm, more cold): peewee's playhouse pulls in "
    "psycopg and registers its types even on SQLite (~75 ms), aiohttp's connector builds an "
    "SSL context at import.",
    "listWebhooks (no target) costs 4-9 ms of server CPU per page of 100 (it varied from run "
    "to run), 2 ms of it in the store whatever the table's size: peewee builds 100 row "
    "objects and reads their events with an IN query (sorted in a temporary B-tree), and "
    "every row's secret is decrypted though a list never returns it; then 100 messages are "
    "built.",
]

"""What profiling found behind the figures (py-spy record --gil on this 2-core machine, and
server CPU per call, which the machine's noise disturbs less than rates). Written by hand,
dated: rerun the profiles when the server changes."""

from __future__ import annotations

PROFILED = "2026-11-30"

# Why a figure misses its target, by the start of its row's "section name".
MISSED: dict[str, str] = {
    "0. Headline events/s delivered": (
        "the server spent 0.61-0.95 ms of CPU per event, publishing and delivering it, when "
        "issue 12's changes were profiled, and 1.34 ms (1.58 with --workers 2) in the full "
        "run of 2026-11-30 20:45 on main with the day's later changes (not profiled again); "
        "1.36-1.45 ms before issue 12. At the figure's rate it takes about one core while "
        "the load process and the receiver share the other. Where the GIL's time went "
        "(py-spy --gil over a run at 895 events/s): 19% of the samples under the hop to the "
        "database threads and back (ThreadPoolExecutor.submit, future chaining, the loop's "
        "self-pipe wake-ups), though a hop measured alone costs 30-40 us of CPU and the "
        "pipeline makes 0.3 per event (770 worker rounds and 220 publish batches for 3,300 "
        "events), so the GIL changing hands between the loop and those threads, rather than "
        "the hop's own work, is the likelier cost; the event loop itself (selectors, task "
        "steps) 17%; the "
        "delivery POST through aiohttp's client 18%, about what the bare loop's client spends "
        "per POST; the publishEvent servicer and core (Struct to dict, validation, the body "
        "made once, the group commit) 11%; aiohttp serving the POST 10%; the JSON body into a "
        "PublishEvent message (json_format.ParseDict of the Struct) 9%; the SQL in the pool "
        "thread 7% (35% before the group commit and the written-out statements); the worker's "
        "rounds on the loop 5%; the call and attempt log lines and metrics 3.5%. Besides, one "
        "webhook gets at most 8 attempts in flight per worker (docs/delivery.md: so that one "
        "slow receiver cannot take every slot), each slot held until the round that records "
        "its result, where the ceiling keeps 64 POSTs in flight. Half the bare loop needs "
        "about 0.2 ms of server CPU per event; aiohttp alone takes 0.05-0.07 ms to serve a "
        "request (section 2's ceiling) and 0.08-0.13 ms to make one (section 3's), before any "
        "JSON, protobuf, SQL or logging, so this design in Python stays well short of it. "
        "With --workers 2 on SQLite the two processes' transactions take turns on one "
        "file lock, through SQLite's busy handler (sleeps of 1-100 ms) rather than the "
        "in-process lock one worker's threads share, so a second worker does not add: "
        "PostgreSQL is the database for several workers and replicas (section 7)."
    ),
    "3. Delivery (b) publish to first attempt, p99": (
        "measured on 2026-11-30 at a load average of 12-16 on this 2-core machine, the tail "
        "is the machine's: in back-to-back runs the bare POST loop's own p99 was 139-462 ms, "
        "ours 362-503 ms (p50 3-6 ms), and the code before issue 12 fell behind the 200 "
        "events/s altogether (p50 1.96 s, p99 4.9 s). Inside the server the publish call took "
        "p99 62 ms and the POST p99 27 ms, creation to first attempt p99 169 ms; the rest is "
        "the time before our handler ran at all, a process waiting for a core."
    ),
    "0. Headline REST publish p99": (
        "16 publishers each calling again as soon as they are answered make the mean latency "
        "16 / the publish rate (Little's law): 18-23 ms at 700-900 events/s before any "
        "spread, so a p99 of 20 ms needs the throughput above, well over 1,000 events/s. The "
        "time is queueing on the one event loop, busy with the work listed for the figure "
        "above; the group commit itself waits at most 2 ms for company, and only when "
        "publishes come together."
    ),
    "1. gRPC getWebhook": (
        "the server spent 0.41-0.46 ms of CPU per call in runs during the day and 0.66 ms "
        "in the full run of 20:45 (0.91 before issue 12's changes) "
        "against 0.27-0.29 ms for the no-op servicer. Two thirds of the GIL's time is in "
        "grpc.aio's own Cython machinery, the part the no-op pays too; our code is ~15%: the "
        "interceptor, the read (now on the event loop, one written-out statement), the "
        "message, the log line and metrics."
    ),
    "2. REST GET one webhook": (
        "the shim spends 0.20-0.25 ms of CPU per request (0.72 before issue 12's changes) "
        "against 0.05-0.07 ms for a bare aiohttp handler answering a constant. Left after "
        "the fixes below: aiohttp's request handling and our middlewares (errors, "
        "observe), the read on the event loop, the response converted and written "
        "(31 us, 95 before), the log line and metrics. The bare handler does none of it, so "
        "30% means about 0.2 ms per request, which this machine's noise puts on either side."
    ),
    "3. Delivery (a)": (
        "the server spent about 0.41 ms of CPU per delivery when profiled and 0.56 ms in the "
        "full run of 20:45 (0.61 before issue 12's changes) against 0.08-0.13 ms per POST "
        "for the bare loop's client: per delivery it "
        "has its row inserted (in the publish's group commit), claimed and its result "
        "written (one transaction per worker round for every result that came in), the "
        "stored body signed and sent with aiohttp (about what the bare loop spends), the "
        "attempt logged and counted; the publishes over gRPC share the same core."
    ),
}

FIXED: list[str] = [
    "(2026-12-01) Matching an event against its subscribers' filters called fnmatchcase "
    "once per name pattern, each call looking its pattern up in fnmatch's cache: 6.0-7.2 ms "
    "per event over 1,000 filters of two patterns (section 11 (c), in-process). Now each "
    "filter's patterns are one regular expression, compiled once per filter: 1.4-2.2 ms, "
    "measured minutes apart at a load of about 6.",
    "(2026-11-30) The worker's claim skipped busy webhooks with `NOT IN`, walking every "
    "due row of a backlogged webhook in next-attempt order while holding the write lock: "
    "with 100,000 rows due for one busy webhook a claim took 58-87 ms on SQLite and 56-68 "
    "ms on PostgreSQL (`python -m bench.claim`, on a 2-core machine loaded by other test "
    "runs). Now it reads a window of twice its free slots in that order and, only when "
    "busy or full webhooks' rows fill the window, takes each webhook's oldest due rows "
    "through a (status, webhook_id, next_attempt_timestamp) index, one seek per webhook "
    "with pending rows: 0.6-0.8 ms on SQLite (0.4-0.5 ms with no backlog) and 8-15 ms on "
    "PostgreSQL (6-14 ms with no backlog, same load; there the plan is an index seek per "
    "webhook, under 0.2 ms of execution, and the rest is round trips and the loaded "
    "machine). On PostgreSQL the rows are read unlocked and only the chosen ones locked "
    "(SKIP LOCKED), so rows a claim passes over stay free for other replicas. Both "
    "versions measured back to back at a load of about 3: 46.4 to 0.77 ms on SQLite (0.40 "
    "and 0.47 ms with no backlog), 41.8 to 7.4 ms on PostgreSQL (4.2 and 4.1 ms with no "
    "backlog).",
    "(2026-11-30) Every publish was its own write transaction, queued behind the worker's "
    "claims and result writes, and the worker wrote results on a 20 ms timer while a slot "
    "stayed taken until its result was written: with ONE webhook its 8 slots each waited up "
    "to 20 ms, capping it at ~250-350 events/s. Now concurrent publishes share one "
    "transaction (server/group_commit.py) and the worker writes all results that came in "
    "and claims for the slots they free in one transaction per round, as soon as there are "
    "results: the pipeline figure went from 243 to 672 events/s and REST publish p99 from "
    "65 to 27 ms (one run each, same machine, same hour).",
    "(2026-11-30) peewee composing the publish, claim, lease, outgoing and result "
    "statements took 17% of the GIL's time in the pipeline, several times running them; they "
    "are written out now (Store._sql). Server CPU per pipeline event: 1.36-1.45 to "
    "0.85-1.03 ms. The delivery body is built once at publish and stored (no json.loads + "
    "dumps per attempt), and each secret token is decrypted once.",
    "(2026-11-30) The per-call and per-attempt lines went through the logging module (a "
    "LogRecord, the caller's frame, a lock and a flushed write each): 26-39 us per text line. "
    "Now formatted in observe.AccessLog and written once per event-loop iteration: 10-18 us "
    "when an iteration writes one line, 6-7 us at eight; --access-log off drops them.",
    "(2026-11-30) Point reads of SQLite run on the event loop (the hop to the pool cost more "
    "than the read) and getWebhook's read is one written-out statement read as tuples "
    "(peewee's row objects were a third of a REST GET): server CPU per REST GET 0.72 to "
    "~0.33 ms, per gRPC getWebhook 0.91 to ~0.41 ms.",
    "(2026-11-30) The shim's responses went through json_format's reflection and then "
    "json.dumps(indent=2), which leaves the C encoder for one in Python: now converters "
    "compiled once per response type from the descriptors and a writer of the same "
    "indented text (GetWebhook.Response 95 to 31 us), and a GET by id makes its request "
    "message directly: REST GET 0.33 to 0.20-0.25 ms of server CPU.",
    "(2026-11-28) List pages cost O(page number): the keyset condition `ts < ? OR (ts = ? AND "
    "id < ?)` made SQLite scan the (creation_timestamp, id) index from the newest row (8-17 ms "
    "for page 500 of 100,000 in SQLite alone). Now a row-value comparison, a range search "
    "(0.1 ms): page 500 went from 2.05x page 1 to 1.01x.",
    "(2026-11-28) A publish that committed while the worker's claim ran was not seen until "
    "the next publish or the 0.5 s poll (the wake-up was cleared after the claim): p99 "
    "publish-to-first-attempt at 200 events/s went from 58-142 ms to 23-45 ms.",
    "(2026-11-28) The threads of one process waited for SQLite's write lock in its busy "
    "handler (sleeps of up to 100 ms) instead of a lock of their own, and each batch of "
    "results wrote one UPDATE per delivery instead of one per distinct result: sustained "
    "deliveries went from about 1,100-1,200 to 1,300-1,500 per second.",
]

NOTES: list[str] = [
    "uvloop (0.23.0) was measured and not adopted: server CPU per call, alternating runs, "
    "without and with it: REST GET 0.245 and 0.251 ms against 0.274 and 0.259 ms; gRPC "
    "getWebhook 0.429 and 0.434 ms against 0.383 and 0.426 ms. Not faster for aiohttp here, "
    "so not both.",
    "No in-process webhook cache: deliveries no longer read the webhook apart from their "
    "claim's join, secrets are decrypted once per token, and getWebhook's read costs less "
    "than keeping a cache right across --workers N and replicas would.",
    "Start-up (~1 s) is mostly imports (~0.36 s warm, more cold): peewee's playhouse pulls in "
    "psycopg and registers its types even on SQLite (~75 ms), aiohttp's connector builds an "
    "SSL context at import.",
    "listWebhooks (no target) cost ~3 ms of server CPU per page of 100 in a noisy run (4-9 "
    "ms before its secrets were decrypted once per token): peewee builds 100 row objects and "
    "reads their events with an IN query, then 100 messages are built.",
]

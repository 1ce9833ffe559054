"""What profiling found behind the figures (py-spy record --gil on this 2-core machine, and
server CPU per call, which the machine's noise disturbs less than rates). Written by hand,
dated: rerun the profiles when the server changes."""

from __future__ import annotations

PROFILED = "2026-12-01"

# Why a figure misses its target, by the start of its row's "section name".
MISSED: dict[str, str] = {
    "0. Headline events/s delivered": (
        "after the changes below, with py-spy --gil over this pipeline on a 2-core AMD EPYC "
        "whose bare loop made 9,000-14,000 POSTs/s as the host's load varied: one server "
        "process spent 0.40-0.49 ms of CPU per event in the quietest runs and up to 0.65 ms "
        "in busier ones (0.72 ms on the same machine before the changes, at its quietest), "
        "and delivered 1,800-2,450 events/s with all of one core. Where the GIL's time went: "
        "the delivery POST (signing, aiohttp's client, the outcome) 39%, serving the publish "
        "(aiohttp's server, our middlewares, the shim, the servicer and core) 29%, the event "
        "loop's own work 18%, SQLite (the publishes' group commit and the worker's rounds, "
        "both on the loop now) 11%, log lines and metrics about 2%: no one part left whose "
        "removal would double the rate. The floor is measured in the same run: the row "
        "'through a bare aiohttp forwarder' sends the same publishes to a process that only "
        "answers each one and POSTs its body on to the same receiver, and even that stays "
        "under half the bare loop (0.35-0.46 in the runs of 2026-12-01), because the two "
        "cores also carry the 16 publishers and the receiver. So 0.5 is beyond this stack "
        "on this machine whatever the server does; the gap between the forwarder's ratio and "
        "ours is our work per event (parsing and validating, storing, claiming, signing, "
        "recording and logging), about 0.3 ms of CPU on top of the forwarder's. With "
        "--workers 2 on SQLite the processes take turns on one file lock, and each drops its "
        "page cache whenever the other has written: a batch write that finds the lock taken "
        "goes to the write thread, which waits in SQLite's busy handler (sleeps of 1-100 ms; "
        "polling the lock every 2 ms, or retrying on the loop every 0.5-4 ms, measured no "
        "better), so the second process costs more CPU per event (0.60-0.95 ms in all) than "
        "it adds. PostgreSQL is the database for several workers and replicas (section 7)."
    ),
    "3. Delivery (b) publish to first attempt, p99": (
        "on 2026-11-30, at a load average of 12-16 on this 2-core machine, the tail "
        "is the machine's: in back-to-back runs the bare POST loop's own p99 was 139-462 ms, "
        "ours 362-503 ms (p50 3-6 ms), and the code before issue 12 fell behind the 200 "
        "events/s altogether (p50 1.96 s, p99 4.9 s). Inside the server the publish call took "
        "p99 62 ms and the POST p99 27 ms, creation to first attempt p99 169 ms; the rest is "
        "the time before our handler ran at all, a process waiting for a core."
    ),
    "0. Headline REST publish p99": (
        "with one process the p99 was 13-19 ms once the event loop no longer stopped for "
        "full garbage collections (below): 16 publishers calling again as soon as they are "
        "answered make the mean latency 16 / the rate (Little's law), 7-9 ms at 1,800-2,300 "
        "events/s. With --workers 2 on SQLite the two processes take turns on the database's "
        "one write lock: a group commit that finds the other process holding it waits on the "
        "write thread in SQLite's busy handler, which sleeps 1, 2, 5, 10 ms and longer "
        "between tries. Retrying it on the event loop every 0.5-4 ms instead, for up to 50 "
        "ms, measured no better (p99 19-28 ms against 20-32 ms, alternating runs). "
        "PostgreSQL is the database for several workers and replicas (section 7)."
    ),
    "1. gRPC getWebhook": (
        "on 2026-11-30 the server spent 0.41-0.46 ms of CPU per call in runs during the "
        "day and 0.66 ms in the full run of 20:45 (0.91 before issue 12's changes) "
        "against 0.27-0.29 ms for the no-op servicer. Two thirds of the GIL's time is in "
        "grpc.aio's own Cython machinery, the part the no-op pays too; our code is ~15%: the "
        "interceptor, the read (now on the event loop, one written-out statement), the "
        "message, the log line and metrics."
    ),
    "2. REST GET one webhook": (
        "on 2026-11-30 the shim spent 0.20-0.25 ms of CPU per request (0.72 before issue "
        "12's changes) "
        "against 0.05-0.07 ms for a bare aiohttp handler answering a constant. Left after "
        "the fixes below: aiohttp's request handling and our middlewares (errors, "
        "observe), the read on the event loop, the response converted and written "
        "(31 us, 95 before), the log line and metrics. The bare handler does none of it, so "
        "30% means about 0.2 ms per request, which this machine's noise puts on either side."
    ),
    "3. Delivery (a)": (
        "on 2026-12-01 the server spent 0.29-0.34 ms of CPU per delivery, publishing "
        "included, against 0.08 ms per POST for the bare loop's client, with all of one core: "
        "so the ratio sits at the target's edge and the host's noise puts it on either side "
        "(0.25-0.30 in the day's runs). Where the GIL's time went (py-spy --gil): the delivery "
        "POST through aiohttp's client, with its signatures and outcome, 46%; asyncio "
        "resuming tasks, a task per delivery, most of the rest; the worker's rounds on the "
        "loop 10%; the publishes' group commit 4%; log lines and metrics 3%. A global limit "
        "of 128 in flight instead of 64 measured no better (alternating runs)."
    ),
}

FIXED: list[str] = [
    "(2026-12-01) One webhook had at most 8 attempts in flight per process, each slot held "
    "until the round that writes its result, so the single-webhook pipeline waited on its "
    "slots and wrote small batches: on a quiet machine 1,368 events/s at 8, 1,698 at 16, "
    "1,978 at 32 and 2,030 at 64 (server CPU per event 0.72, 0.57, 0.48 and 0.47 ms). The "
    "default is 32 now (never above --max-webhook-concurrency), reached by a slow start "
    "(4, 8, 16, 32 as answers come back fast; docs/delivery.md) so a small receiver is "
    "not sent 32 at once unasked.",
    "(2026-12-01) SQLite's batched writes (a group commit's publishes, the worker's round) "
    "went to the write thread and back, and waking that thread while the loop held the GIL "
    "was 10-14% of the GIL's time (ThreadPoolExecutor.submit). They now commit on the "
    "event loop when the write lock is free at that instant (Store.run_at_once) and queue "
    "on the thread as before when it is not; their connection leaves checkpoints, which "
    "sync the file, to the write thread. Alternating runs on a quiet machine, at 32 in "
    "flight: 1,967 to 2,437 events/s, server CPU per event 0.49 to 0.40 ms, and REST "
    "publish p99 with --workers 2 from 31-40 to 16-19 ms.",
    "(2026-12-01) Python's full garbage collections walked everything start-up made (70,000 "
    "objects: modules, generated message classes, the app) and each stopped the event loop "
    "for about 30 ms, four times per pipeline run: the REST publish p99 outliers of 37 ms "
    "beside runs of 13 ms. The server freezes those objects once serving (gc.freeze): full "
    "collections took under 1 ms (gc.callbacks timing, one run each on a quiet machine) and "
    "the three runs' p99 were 13.5-14.6 ms.",
    "(2026-12-01) peewee's chunked(), used to split statement values into batches, zips as "
    "many iterators as a chunk is long (1,800 for a publish's delivery rows): 5.6% of the "
    "pipeline's GIL time for batches of a dozen rows. Plain slices now. Making the text of "
    "a time-ordered id without uuid.UUID's constructor: 1.7 us per id.",
    "(2026-12-01) The shim made every request message with json_format.ParseDict: 80 us of "
    "a REST publish (9% of the pipeline's GIL time). A plain body (the message's own proto "
    "field names, values of exactly their JSON types, enum names, nested and Struct "
    "objects) is now made by the message's constructor, which makes the same message: "
    "93 to 30 us for parsing and making a publishEvent request, in-process; anything "
    "else still takes ParseDict's way, which words every refusal.",
    "(2026-12-01) Event and delivery ids were random (UUID version 4), so each insert of a "
    "publish batch landed on its own page of the tables' primary keys and indexes. They are "
    "time-ordered now (UUID version 7; webhook ids stay version 4): the single-webhook "
    "pipeline's server, 3,000 events under strace, went from 69,421 to 32,956 pwrite64, "
    "49,017 to 30,401 pread64 and 73 to 44 fdatasync (checkpoints of a smaller WAL).",
    "(2026-12-01) Four write threads took turns on SQLite's one write lock, and SQLite drops "
    "a connection's page cache whenever another connection has written since, so each "
    "transaction read back from the file the pages the others wrote. One write thread on "
    "SQLite (PostgreSQL keeps four): pread64 31,425 to 1,685 and futex 32,574 to 12,997 "
    "over the same 3,000 events. Server CPU per pipeline event, the two full-section runs "
    "back to back at a load of 3-6: 1.57 ms after these three changes, 2.06 ms before (1 "
    "worker); per sustained delivery to 16 webhooks 0.67 and 0.84 ms. In alternating runs "
    "at a load of 9 the rates and ratios of before and after could not be told apart.",
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

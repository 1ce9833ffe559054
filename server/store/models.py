"""peewee tables. Bound at run time to whichever database the URL names."""

from __future__ import annotations

from enum import IntEnum

import peewee as pw

database = pw.DatabaseProxy()


class WebhookStatus(IntEnum):
    """The numbers of mlflow.WebhookStatus (a test keeps them equal)."""

    ACTIVE = 1
    DISABLED = 2


class DeliveryStatus(IntEnum):
    """The numbers of mlflow.DeliveryStatus (a test keeps them equal)."""

    PENDING = 1
    SUCCEEDED = 2
    FAILED = 3
    CANCELLED = 4


class BaseModel(pw.Model):
    class Meta:
        database = database


class SchemaVersion(BaseModel):
    version = pw.IntegerField()


class Webhook(BaseModel):
    id = pw.CharField(primary_key=True, max_length=36)
    name = pw.CharField(max_length=63)
    description = pw.TextField(null=True)
    url = pw.CharField(max_length=500)
    # Fernet token of the secret; NULL when the webhook signs nothing.
    secret_token = pw.TextField(null=True)
    status = pw.IntegerField()
    creation_timestamp = pw.BigIntegerField()
    last_updated_timestamp = pw.BigIntegerField()
    # The webhook's filter as server/filters.py stores it (schema version 8); NULL: none,
    # every event of its types.
    filter_spec = pw.TextField(null=True)
    # Its delivery settings as server/delivery/settings.py stores them (schema version 9);
    # NULL: none, the server's own.
    delivery_settings = pw.TextField(null=True)
    # The secret a rotation replaced, sealed as secret_token is, and until when (Unix ms)
    # deliveries are signed with it too (schema version 10); NULL when there is none. Cleared
    # once the window has ended (server/rotation.py).
    previous_secret_token = pw.TextField(null=True)
    previous_secret_until = pw.BigIntegerField(null=True)
    # The sequence number of its last delivery while ordered (schema version 11; see
    # server/ordering.py).
    last_sequence = pw.BigIntegerField(default=0, constraints=[pw.SQL("DEFAULT 0")])

    class Meta:
        table_name = "webhooks"
        # Newest-first keyset pagination walks this index.
        indexes = ((("creation_timestamp", "id"), False),)


class Subscription(BaseModel):
    webhook = pw.ForeignKeyField(Webhook, on_delete="CASCADE", column_name="webhook_id")
    entity = pw.IntegerField()
    action = pw.IntegerField()
    # Caller's order, so events come back as they were given.
    position = pw.IntegerField()

    class Meta:
        table_name = "webhook_events"
        primary_key = pw.CompositeKey("webhook", "entity", "action")
        # Fan-out looks up the webhooks subscribed to one (entity, action).
        indexes = ((("entity", "action", "webhook"), False),)


class Event(BaseModel):
    id = pw.CharField(primary_key=True, max_length=36)
    entity = pw.IntegerField()
    action = pw.IntegerField()
    data = pw.TextField()  # the JSON object, exactly as it will be delivered
    # ISO-8601 time put in the payload, fixed at publish so every attempt sends the same body.
    occurred_at = pw.CharField(max_length=40)
    # The body every attempt sends, byte for byte, built once at publish (schema version 3;
    # NULL for events stored before it, whose body is built from data and occurred_at).
    payload = pw.TextField(null=True)
    idempotency_key = pw.CharField(max_length=255, null=True, unique=True)
    # What the key was used for (schema version 4): a hash of entity, action and data, so
    # the key reused for another event is refused. NULL before version 4, or without a key.
    idempotency_hash = pw.CharField(max_length=64, null=True)
    creation_timestamp = pw.BigIntegerField()

    class Meta:
        table_name = "events"
        # Retention looks for old events no delivery needs any more.
        indexes = ((("creation_timestamp",), False),)


class Delivery(BaseModel):
    id = pw.CharField(primary_key=True, max_length=36)
    event = pw.ForeignKeyField(Event, column_name="event_id", on_delete="CASCADE")
    # Not a foreign key: the log outlives a deleted webhook.
    webhook_id = pw.CharField(max_length=36)
    status = pw.IntegerField()
    attempt_count = pw.IntegerField(default=0)  # attempts logged, redelivers included
    # Of those, the redelivers (schema version 6): extra attempts, outside the retry
    # schedule, so the schedule's place is attempt_count - manual_attempts.
    manual_attempts = pw.IntegerField(default=0, constraints=[pw.SQL("DEFAULT 0")])
    next_attempt_timestamp = pw.BigIntegerField(null=True)
    # The outbox lease: which process holds the row, and until when.
    lease_owner = pw.CharField(max_length=64, null=True)
    lease_until = pw.BigIntegerField(null=True)
    is_test = pw.BooleanField(default=False)
    creation_timestamp = pw.BigIntegerField()
    # Its place in its webhook's publish order when the webhook is ordered (schema version
    # 11); NULL otherwise.
    sequence = pw.BigIntegerField(null=True)

    class Meta:
        table_name = "deliveries"
        indexes = (
            # Workers claim due PENDING rows in next_attempt order, and, when one webhook's
            # backlog crowds those, webhook by webhook.
            (("status", "next_attempt_timestamp"), False),
            (("status", "webhook_id", "next_attempt_timestamp"), False),
            (("webhook_id", "creation_timestamp", "id"), False),
            (("creation_timestamp", "id"), False),
        )


# An ordered webhook's deliveries waiting their turn (PENDING with no next attempt: no claim
# takes them), in their order: only they are in this index, so finding the next one is one
# short seek. The statements that use it spell out the same condition with literal values,
# and on SQLite name it (INDEXED BY), so the planner never picks another index and sorts.
WAITING_INDEX = "deliveries_waiting"
WAITING = f'"status" = {int(DeliveryStatus.PENDING)} AND "next_attempt_timestamp" IS NULL'
Delivery.add_index(
    pw.SQL(
        f'CREATE INDEX IF NOT EXISTS "{WAITING_INDEX}" ON "deliveries" ("webhook_id", "sequence") '
        f"WHERE {WAITING}"
    )
)


class Attempt(BaseModel):
    delivery = pw.ForeignKeyField(Delivery, column_name="delivery_id", on_delete="CASCADE")
    number = pw.IntegerField()
    timestamp = pw.BigIntegerField()
    duration_ms = pw.IntegerField()
    response_status = pw.IntegerField(null=True)
    response_body = pw.TextField(default="")
    error = pw.TextField(null=True)

    class Meta:
        table_name = "delivery_attempts"
        primary_key = pw.CompositeKey("delivery", "number")


class WebhookDisable(BaseModel):
    """Why and when the service itself disabled a webhook (a 410 Gone from its receiver);
    removed when the webhook's status is changed again."""

    webhook = pw.ForeignKeyField(
        Webhook, primary_key=True, on_delete="CASCADE", column_name="webhook_id"
    )
    reason = pw.TextField()
    timestamp = pw.BigIntegerField()

    class Meta:
        table_name = "webhook_disables"


# Tables, and columns of existing tables, by the schema version that added them
# (server/store/store.py migrates). Tables are made with CREATE ... IF NOT EXISTS, so a table
# listed again by a later version only gains the indexes its model added.
TABLES_BY_VERSION: dict[int, list[type[BaseModel]]] = {
    1: [SchemaVersion, Webhook, Subscription],
    2: [Event, Delivery, Attempt],
    3: [],
    4: [],
    5: [Event, WebhookDisable],  # events.creation_timestamp is indexed for retention
    6: [],
    7: [Delivery],  # the (status, webhook_id, next_attempt_timestamp) index
    8: [],
    9: [],
    10: [],
    11: [Delivery],  # the index of deliveries waiting their turn
}
COLUMNS_BY_VERSION: dict[int, list[pw.Field]] = {
    3: [Event.payload],
    4: [Event.idempotency_hash],
    6: [Delivery.manual_attempts],
    8: [Webhook.filter_spec],
    9: [Webhook.delivery_settings],
    10: [Webhook.previous_secret_token, Webhook.previous_secret_until],
    11: [Webhook.last_sequence, Delivery.sequence],
}

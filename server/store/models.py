"""peewee tables. Bound at run time to whichever database the URL names."""

from __future__ import annotations

import peewee as pw

database = pw.DatabaseProxy()


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


TABLES: list[type[BaseModel]] = [SchemaVersion, Webhook, Subscription]

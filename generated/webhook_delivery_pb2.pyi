from mlflow_webhooks.generated import databricks_pb2 as _databricks_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from mlflow_webhooks.generated import webhooks_pb2 as _webhooks_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeliveryStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATUS_UNSPECIFIED: _ClassVar[DeliveryStatus]
    PENDING: _ClassVar[DeliveryStatus]
    SUCCEEDED: _ClassVar[DeliveryStatus]
    FAILED: _ClassVar[DeliveryStatus]
    CANCELLED: _ClassVar[DeliveryStatus]
DELIVERY_STATUS_UNSPECIFIED: DeliveryStatus
PENDING: DeliveryStatus
SUCCEEDED: DeliveryStatus
FAILED: DeliveryStatus
CANCELLED: DeliveryStatus

class DeliveryAttempt(_message.Message):
    __slots__ = ("number", "timestamp", "duration_ms", "response_status", "response_body", "error")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_STATUS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_BODY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    number: int
    timestamp: int
    duration_ms: int
    response_status: int
    response_body: str
    error: str
    def __init__(self, number: _Optional[int] = ..., timestamp: _Optional[int] = ..., duration_ms: _Optional[int] = ..., response_status: _Optional[int] = ..., response_body: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("delivery_id", "event_id", "webhook_id", "event", "status", "attempts", "next_attempt_timestamp", "creation_timestamp", "test", "attempt_count", "last_attempt", "payload")
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    CREATION_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    TEST_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    event_id: str
    webhook_id: str
    event: _webhooks_pb2.WebhookEvent
    status: DeliveryStatus
    attempts: _containers.RepeatedCompositeFieldContainer[DeliveryAttempt]
    next_attempt_timestamp: int
    creation_timestamp: int
    test: bool
    attempt_count: int
    last_attempt: DeliveryAttempt
    payload: str
    def __init__(self, delivery_id: _Optional[str] = ..., event_id: _Optional[str] = ..., webhook_id: _Optional[str] = ..., event: _Optional[_Union[_webhooks_pb2.WebhookEvent, _Mapping]] = ..., status: _Optional[_Union[DeliveryStatus, str]] = ..., attempts: _Optional[_Iterable[_Union[DeliveryAttempt, _Mapping]]] = ..., next_attempt_timestamp: _Optional[int] = ..., creation_timestamp: _Optional[int] = ..., test: _Optional[bool] = ..., attempt_count: _Optional[int] = ..., last_attempt: _Optional[_Union[DeliveryAttempt, _Mapping]] = ..., payload: _Optional[str] = ...) -> None: ...

class PublishEvent(_message.Message):
    __slots__ = ("event", "data", "idempotency_key")
    class Response(_message.Message):
        __slots__ = ("event_id", "delivery_ids")
        EVENT_ID_FIELD_NUMBER: _ClassVar[int]
        DELIVERY_IDS_FIELD_NUMBER: _ClassVar[int]
        event_id: str
        delivery_ids: _containers.RepeatedScalarFieldContainer[str]
        def __init__(self, event_id: _Optional[str] = ..., delivery_ids: _Optional[_Iterable[str]] = ...) -> None: ...
    EVENT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    event: _webhooks_pb2.WebhookEvent
    data: _struct_pb2.Struct
    idempotency_key: str
    def __init__(self, event: _Optional[_Union[_webhooks_pb2.WebhookEvent, _Mapping]] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class ListDeliveries(_message.Message):
    __slots__ = ("webhook_id", "event_id", "status", "max_results", "page_token", "event", "since_timestamp", "until_timestamp")
    class Response(_message.Message):
        __slots__ = ("deliveries", "next_page_token")
        DELIVERIES_FIELD_NUMBER: _ClassVar[int]
        NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
        deliveries: _containers.RepeatedCompositeFieldContainer[Delivery]
        next_page_token: str
        def __init__(self, deliveries: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULTS_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    SINCE_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    UNTIL_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    event_id: str
    status: DeliveryStatus
    max_results: int
    page_token: str
    event: _webhooks_pb2.WebhookEvent
    since_timestamp: int
    until_timestamp: int
    def __init__(self, webhook_id: _Optional[str] = ..., event_id: _Optional[str] = ..., status: _Optional[_Union[DeliveryStatus, str]] = ..., max_results: _Optional[int] = ..., page_token: _Optional[str] = ..., event: _Optional[_Union[_webhooks_pb2.WebhookEvent, _Mapping]] = ..., since_timestamp: _Optional[int] = ..., until_timestamp: _Optional[int] = ...) -> None: ...

class GetDelivery(_message.Message):
    __slots__ = ("delivery_id",)
    class Response(_message.Message):
        __slots__ = ("delivery",)
        DELIVERY_FIELD_NUMBER: _ClassVar[int]
        delivery: Delivery
        def __init__(self, delivery: _Optional[_Union[Delivery, _Mapping]] = ...) -> None: ...
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    def __init__(self, delivery_id: _Optional[str] = ...) -> None: ...

class Redeliver(_message.Message):
    __slots__ = ("delivery_id",)
    class Response(_message.Message):
        __slots__ = ("delivery",)
        DELIVERY_FIELD_NUMBER: _ClassVar[int]
        delivery: Delivery
        def __init__(self, delivery: _Optional[_Union[Delivery, _Mapping]] = ...) -> None: ...
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    def __init__(self, delivery_id: _Optional[str] = ...) -> None: ...

class RedeliverFailed(_message.Message):
    __slots__ = ("webhook_id", "since_timestamp", "max_deliveries", "page_token")
    class Response(_message.Message):
        __slots__ = ("redelivered", "succeeded", "delivery_ids", "next_page_token")
        REDELIVERED_FIELD_NUMBER: _ClassVar[int]
        SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
        DELIVERY_IDS_FIELD_NUMBER: _ClassVar[int]
        NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
        redelivered: int
        succeeded: int
        delivery_ids: _containers.RepeatedScalarFieldContainer[str]
        next_page_token: str
        def __init__(self, redelivered: _Optional[int] = ..., succeeded: _Optional[int] = ..., delivery_ids: _Optional[_Iterable[str]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    MAX_DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    since_timestamp: int
    max_deliveries: int
    page_token: str
    def __init__(self, webhook_id: _Optional[str] = ..., since_timestamp: _Optional[int] = ..., max_deliveries: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class WebhookHealth(_message.Message):
    __slots__ = ("webhook_id", "last_delivery", "deliveries_24h", "failures_24h", "disabled_reason", "disabled_timestamp", "previous_secret_expires_timestamp")
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_DELIVERY_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_24H_FIELD_NUMBER: _ClassVar[int]
    FAILURES_24H_FIELD_NUMBER: _ClassVar[int]
    DISABLED_REASON_FIELD_NUMBER: _ClassVar[int]
    DISABLED_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SECRET_EXPIRES_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    last_delivery: Delivery
    deliveries_24h: int
    failures_24h: int
    disabled_reason: str
    disabled_timestamp: int
    previous_secret_expires_timestamp: int
    def __init__(self, webhook_id: _Optional[str] = ..., last_delivery: _Optional[_Union[Delivery, _Mapping]] = ..., deliveries_24h: _Optional[int] = ..., failures_24h: _Optional[int] = ..., disabled_reason: _Optional[str] = ..., disabled_timestamp: _Optional[int] = ..., previous_secret_expires_timestamp: _Optional[int] = ...) -> None: ...

class GetWebhookHealth(_message.Message):
    __slots__ = ("webhook_ids",)
    class Response(_message.Message):
        __slots__ = ("webhooks",)
        WEBHOOKS_FIELD_NUMBER: _ClassVar[int]
        webhooks: _containers.RepeatedCompositeFieldContainer[WebhookHealth]
        def __init__(self, webhooks: _Optional[_Iterable[_Union[WebhookHealth, _Mapping]]] = ...) -> None: ...
    WEBHOOK_IDS_FIELD_NUMBER: _ClassVar[int]
    webhook_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, webhook_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class EventType(_message.Message):
    __slots__ = ("event", "name", "data_fields")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELDS_FIELD_NUMBER: _ClassVar[int]
    event: _webhooks_pb2.WebhookEvent
    name: str
    data_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, event: _Optional[_Union[_webhooks_pb2.WebhookEvent, _Mapping]] = ..., name: _Optional[str] = ..., data_fields: _Optional[_Iterable[str]] = ...) -> None: ...

class ListEventTypes(_message.Message):
    __slots__ = ()
    class Response(_message.Message):
        __slots__ = ("event_types",)
        EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
        event_types: _containers.RepeatedCompositeFieldContainer[EventType]
        def __init__(self, event_types: _Optional[_Iterable[_Union[EventType, _Mapping]]] = ...) -> None: ...
    def __init__(self) -> None: ...

class WebhookFilter(_message.Message):
    __slots__ = ("names", "aliases", "tag_keys")
    NAMES_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    TAG_KEYS_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    aliases: _containers.RepeatedScalarFieldContainer[str]
    tag_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ..., aliases: _Optional[_Iterable[str]] = ..., tag_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class SetWebhookFilter(_message.Message):
    __slots__ = ("webhook_id", "filter")
    class Response(_message.Message):
        __slots__ = ("filter",)
        FILTER_FIELD_NUMBER: _ClassVar[int]
        filter: WebhookFilter
        def __init__(self, filter: _Optional[_Union[WebhookFilter, _Mapping]] = ...) -> None: ...
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    filter: WebhookFilter
    def __init__(self, webhook_id: _Optional[str] = ..., filter: _Optional[_Union[WebhookFilter, _Mapping]] = ...) -> None: ...

class GetWebhookFilter(_message.Message):
    __slots__ = ("webhook_id",)
    class Response(_message.Message):
        __slots__ = ("filter",)
        FILTER_FIELD_NUMBER: _ClassVar[int]
        filter: WebhookFilter
        def __init__(self, filter: _Optional[_Union[WebhookFilter, _Mapping]] = ...) -> None: ...
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    def __init__(self, webhook_id: _Optional[str] = ...) -> None: ...

class RetrySchedule(_message.Message):
    __slots__ = ("delays_seconds",)
    DELAYS_SECONDS_FIELD_NUMBER: _ClassVar[int]
    delays_seconds: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, delays_seconds: _Optional[_Iterable[float]] = ...) -> None: ...

class WebhookSettings(_message.Message):
    __slots__ = ("ordered", "retry_schedule", "timeout_seconds", "max_concurrency")
    ORDERED_FIELD_NUMBER: _ClassVar[int]
    RETRY_SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    ordered: bool
    retry_schedule: RetrySchedule
    timeout_seconds: float
    max_concurrency: int
    def __init__(self, ordered: _Optional[bool] = ..., retry_schedule: _Optional[_Union[RetrySchedule, _Mapping]] = ..., timeout_seconds: _Optional[float] = ..., max_concurrency: _Optional[int] = ...) -> None: ...

class SetWebhookSettings(_message.Message):
    __slots__ = ("webhook_id", "settings")
    class Response(_message.Message):
        __slots__ = ("settings",)
        SETTINGS_FIELD_NUMBER: _ClassVar[int]
        settings: WebhookSettings
        def __init__(self, settings: _Optional[_Union[WebhookSettings, _Mapping]] = ...) -> None: ...
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    settings: WebhookSettings
    def __init__(self, webhook_id: _Optional[str] = ..., settings: _Optional[_Union[WebhookSettings, _Mapping]] = ...) -> None: ...

class GetWebhookSettings(_message.Message):
    __slots__ = ("webhook_id",)
    class Response(_message.Message):
        __slots__ = ("settings",)
        SETTINGS_FIELD_NUMBER: _ClassVar[int]
        settings: WebhookSettings
        def __init__(self, settings: _Optional[_Union[WebhookSettings, _Mapping]] = ...) -> None: ...
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    def __init__(self, webhook_id: _Optional[str] = ...) -> None: ...

class RotateWebhookSecret(_message.Message):
    __slots__ = ("webhook_id", "secret", "overlap_seconds")
    class Response(_message.Message):
        __slots__ = ("webhook", "secret", "previous_secret_expires_timestamp")
        WEBHOOK_FIELD_NUMBER: _ClassVar[int]
        SECRET_FIELD_NUMBER: _ClassVar[int]
        PREVIOUS_SECRET_EXPIRES_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
        webhook: _webhooks_pb2.Webhook
        secret: str
        previous_secret_expires_timestamp: int
        def __init__(self, webhook: _Optional[_Union[_webhooks_pb2.Webhook, _Mapping]] = ..., secret: _Optional[str] = ..., previous_secret_expires_timestamp: _Optional[int] = ...) -> None: ...
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    secret: str
    overlap_seconds: int
    def __init__(self, webhook_id: _Optional[str] = ..., secret: _Optional[str] = ..., overlap_seconds: _Optional[int] = ...) -> None: ...

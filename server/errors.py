"""Typed errors raised by the core. Each transport maps `code` to its own wire form:
the gRPC servicers to a status code, the JSON shim to an MLflow error_code and HTTP status."""

from __future__ import annotations

from enum import Enum


class Code(Enum):
    """Named as gRPC names its status codes, so the mapping is by name."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


class ServiceError(Exception):
    code: Code = Code.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ServiceError):
    code = Code.INVALID_ARGUMENT


class NotFound(ServiceError):
    code = Code.NOT_FOUND


class AlreadyExists(ServiceError):
    code = Code.ALREADY_EXISTS


class Unavailable(ServiceError):
    code = Code.UNAVAILABLE

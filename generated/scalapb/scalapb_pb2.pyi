from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor
OPTIONS_FIELD_NUMBER: _ClassVar[int]
options: _descriptor.FieldDescriptor
MESSAGE_FIELD_NUMBER: _ClassVar[int]
message: _descriptor.FieldDescriptor

class ScalaPbOptions(_message.Message):
    __slots__ = ("flat_package",)
    FLAT_PACKAGE_FIELD_NUMBER: _ClassVar[int]
    flat_package: bool
    def __init__(self, flat_package: _Optional[bool] = ...) -> None: ...

class MessageOptions(_message.Message):
    __slots__ = ("extends",)
    EXTENDS_FIELD_NUMBER: _ClassVar[int]
    extends: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, extends: _Optional[_Iterable[str]] = ...) -> None: ...

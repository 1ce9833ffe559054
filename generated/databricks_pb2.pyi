from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Visibility(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PUBLIC: _ClassVar[Visibility]
    INTERNAL: _ClassVar[Visibility]
    PUBLIC_UNDOCUMENTED: _ClassVar[Visibility]
PUBLIC: Visibility
INTERNAL: Visibility
PUBLIC_UNDOCUMENTED: Visibility
RPC_FIELD_NUMBER: _ClassVar[int]
rpc: _descriptor.FieldDescriptor
VALIDATE_REQUIRED_FIELD_NUMBER: _ClassVar[int]
validate_required: _descriptor.FieldDescriptor

class ApiVersion(_message.Message):
    __slots__ = ("major", "minor")
    MAJOR_FIELD_NUMBER: _ClassVar[int]
    MINOR_FIELD_NUMBER: _ClassVar[int]
    major: int
    minor: int
    def __init__(self, major: _Optional[int] = ..., minor: _Optional[int] = ...) -> None: ...

class HttpEndpoint(_message.Message):
    __slots__ = ("method", "path", "since")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    method: str
    path: str
    since: ApiVersion
    def __init__(self, method: _Optional[str] = ..., path: _Optional[str] = ..., since: _Optional[_Union[ApiVersion, _Mapping]] = ...) -> None: ...

class DatabricksRpcOptions(_message.Message):
    __slots__ = ("endpoints", "visibility", "rpc_doc_title")
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    RPC_DOC_TITLE_FIELD_NUMBER: _ClassVar[int]
    endpoints: _containers.RepeatedCompositeFieldContainer[HttpEndpoint]
    visibility: Visibility
    rpc_doc_title: str
    def __init__(self, endpoints: _Optional[_Iterable[_Union[HttpEndpoint, _Mapping]]] = ..., visibility: _Optional[_Union[Visibility, str]] = ..., rpc_doc_title: _Optional[str] = ...) -> None: ...

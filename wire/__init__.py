"""wire: the Kafka protocol codec (sans-IO).

No sockets, files or asyncio live here, and nothing of this project is imported.
Importing ``wire`` is cheap: the ~190 generated message modules load on first use
(``wire.messages.REQUESTS[key]`` or a direct ``import wire.messages.<name>``).
"""

from kbroker.wire.api import ApiKey
from kbroker.wire.codec import decode, decode_from, encode, encode_into, size
from kbroker.wire.errors import ErrorCode
from kbroker.wire.exceptions import DecodeError, EncodeError, WireError
from kbroker.wire.framing import FrameDecoder, FrameTooLarge
from kbroker.wire.headers import (
    RequestHeader,
    ResponseHeader,
    decode_request_header,
    decode_response_header,
    encode_request,
    encode_response,
    peek_request_header,
    request_header_version,
    response_header_version,
)
from kbroker.wire.messages import REQUESTS, RESPONSES

__all__ = [
    "REQUESTS",
    "RESPONSES",
    "ApiKey",
    "DecodeError",
    "EncodeError",
    "ErrorCode",
    "FrameDecoder",
    "FrameTooLarge",
    "RequestHeader",
    "ResponseHeader",
    "WireError",
    "decode",
    "decode_from",
    "decode_request_header",
    "decode_response_header",
    "encode",
    "encode_into",
    "encode_request",
    "encode_response",
    "peek_request_header",
    "request_header_version",
    "response_header_version",
    "size",
]

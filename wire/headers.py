"""Request and response headers, and whole (size-prefixed) frames.

Header versions (Kafka's ``ApiMessageType.requestHeaderVersion`` rules):

* request header v2 for flexible request versions, else v1; ControlledShutdown v0 is
  the one request with header v0 (no client id);
* response header v1 for flexible versions, else v0; ApiVersions responses always use
  v0 (KIP-511: a client that sent a version the broker does not know must still be able
  to read the answer).

The classes themselves are generated from RequestHeader.json / ResponseHeader.json.
"""

from __future__ import annotations

import struct
from typing import Any

from kbroker.wire.codec import decode_from, encode_into
from kbroker.wire.exceptions import DecodeError, EncodeError
from kbroker.wire.messages._index import INDEX
from kbroker.wire.messages.request_header import RequestHeader
from kbroker.wire.messages.response_header import ResponseHeader

__all__ = [
    "RequestHeader",
    "ResponseHeader",
    "decode_request_header",
    "decode_response_header",
    "encode_request",
    "encode_response",
    "peek_request_header",
    "request_header_version",
    "response_header_version",
]

_API_VERSIONS = 18
_PEEK = struct.Struct(">hhi")
_I32 = struct.Struct(">i")


def _flexible(api_key: int, api_version: int) -> bool:
    row = INDEX.get(api_key)
    if row is None:
        raise KeyError(f"unknown api key {api_key}")
    fmin = row[6]
    return fmin is not None and api_version >= fmin


def request_header_version(api_key: int, api_version: int) -> int:
    """The request header version used with (api_key, api_version)."""
    return 2 if _flexible(api_key, api_version) else 1


def response_header_version(api_key: int, api_version: int) -> int:
    """The response header version used with (api_key, api_version); ApiVersions: 0."""
    if api_key == _API_VERSIONS:
        return 0
    return 1 if _flexible(api_key, api_version) else 0


def peek_request_header(buf: bytes | bytearray | memoryview) -> tuple[int, int, int]:
    """(api_key, api_version, correlation_id) from the first 8 bytes of a request.

    Works for any key/version, known or not (to answer UNSUPPORTED_VERSION).
    """
    if len(buf) < 8:
        raise DecodeError(f"request header needs 8 bytes, got {len(buf)}")
    key, ver, corr = _PEEK.unpack_from(buf, 0)
    return key, ver, corr


def decode_request_header(buf: bytes | bytearray | memoryview) -> tuple[RequestHeader, int]:
    """Decode the header of a request frame (without size prefix).

    Returns the header and the offset where the body starts.  Raises DecodeError for an
    unknown API key; a version beyond the spec maximum still decodes (its header layout
    follows from flexibility), so the broker can answer UNSUPPORTED_VERSION.
    """
    key, ver, _ = peek_request_header(buf)
    if key not in INDEX:
        raise DecodeError(f"unknown api key {key}")
    if ver < 0:
        raise DecodeError(f"negative api version {ver}")
    return decode_from(RequestHeader, request_header_version(key, ver), buf, 0)


def decode_response_header(
    buf: bytes | bytearray | memoryview, api_key: int, api_version: int
) -> tuple[ResponseHeader, int]:
    """Decode a response header (the caller knows what it asked); return (header, body offset)."""
    return decode_from(ResponseHeader, response_header_version(api_key, api_version), buf, 0)


def _finish(out: bytearray) -> bytearray:
    """Fill in the size prefix.  The bytearray itself is returned: copying a 1 MiB Fetch
    response into ``bytes`` would cost as much as encoding it."""
    _I32.pack_into(out, 0, len(out) - 4)
    return out


def encode_request(header: RequestHeader, msg: Any) -> bytearray:
    """Size prefix + request header + body, at ``header.request_api_version``."""
    key, ver = header.request_api_key, header.request_api_version
    if getattr(msg, "API_KEY", key) != key:
        raise EncodeError(f"{type(msg).__name__} is not api key {key}")
    out = bytearray(4)
    encode_into(header, request_header_version(key, ver), out)
    encode_into(msg, ver, out)
    return _finish(out)


def encode_response(correlation_id: int, api_key: int, api_version: int, msg: Any) -> bytearray:
    """Size prefix + response header + body of ``msg`` at ``api_version``."""
    out = bytearray(4)
    out += _I32.pack(correlation_id)
    if response_header_version(api_key, api_version) >= 1:
        out.append(0)  # no tagged fields in our response headers
    encode_into(msg, api_version, out)
    return _finish(out)

"""One blocking connection to one Kafka broker, speaking through ``kbroker.wire``.

The admin CLI (``kbroker topic ...``, ``kbroker produce`` ...) is a short-lived program that
sends one request at a time and waits for its answer, so a plain socket with a timeout is
enough: no asyncio, no pipelining.  On connect the connection asks the broker which versions
it serves (ApiVersions) and from then on every request goes at the highest version both sides
know, capped by :data:`CLIENT_MAX_VERSIONS` (the versions whose shape the client is written
for: name-based topics, not topic ids).
"""

from __future__ import annotations

import socket
import struct
from typing import TYPE_CHECKING, Any

from kbroker.wire.api import ApiKey
from kbroker.wire.codec import decode
from kbroker.wire.errors import ErrorCode
from kbroker.wire.exceptions import WireError
from kbroker.wire.headers import RequestHeader, decode_response_header, encode_request
from kbroker.wire.messages import REQUESTS, RESPONSES
from kbroker.wire.messages._index import INDEX

if TYPE_CHECKING:
    from kbroker.client.security import SecurityConfig

CLIENT_ID = "kbroker-cli"
CLIENT_SOFTWARE_VERSION = "1"
# How long connecting and each request may take before the command gives up.
DEFAULT_TIMEOUT_S = 30.0
# The largest response frame the client reads (a Fetch answer is bounded by max_bytes).
MAX_RESPONSE_BYTES = 256 * 1024 * 1024

# The highest version of each API the client builds and reads.  Above these, Kafka moved to
# topic ids (Fetch 13, Produce 13, OffsetCommit/OffsetFetch 10) or changed semantics the client
# does not use; below them the client copes with every shape down to the spec minimum.
CLIENT_MAX_VERSIONS: dict[int, int] = {
    ApiKey.API_VERSIONS: 3,
    ApiKey.METADATA: 12,
    ApiKey.CREATE_TOPICS: 7,
    ApiKey.DELETE_TOPICS: 6,
    ApiKey.DESCRIBE_CONFIGS: 4,
    ApiKey.INCREMENTAL_ALTER_CONFIGS: 1,
    ApiKey.LIST_GROUPS: 4,
    ApiKey.DESCRIBE_GROUPS: 5,
    ApiKey.DELETE_GROUPS: 2,
    ApiKey.FIND_COORDINATOR: 4,
    ApiKey.OFFSET_FETCH: 8,
    ApiKey.OFFSET_COMMIT: 8,
    ApiKey.LIST_OFFSETS: 7,
    ApiKey.PRODUCE: 9,
    ApiKey.FETCH: 12,
    ApiKey.DESCRIBE_ACLS: 3,
    ApiKey.CREATE_ACLS: 3,
    ApiKey.DELETE_ACLS: 3,
    ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS: 0,
    ApiKey.ALTER_USER_SCRAM_CREDENTIALS: 0,
    ApiKey.SASL_HANDSHAKE: 1,
    ApiKey.SASL_AUTHENTICATE: 2,
}

_I32 = struct.Struct(">i")


class ClientError(Exception):
    """Anything the command reports as its one-line error."""


class KafkaError(ClientError):
    """A Kafka error code answered for ``what``."""

    def __init__(self, what: str, code: int, message: str | None = None) -> None:
        self.code = ErrorCode.of(code)
        text = f"{what}: {self.code.name}"
        if message:
            text += f" ({message})"
        super().__init__(text)


def check(what: str, code: int, message: str | None = None) -> None:
    """Raise KafkaError unless ``code`` is NONE."""
    if code:
        raise KafkaError(what, code, message)


class BrokerConnection:
    """A socket to one broker plus the API versions agreed with it."""

    def __init__(
        self, host: str, port: int, timeout_s: float = DEFAULT_TIMEOUT_S, security: SecurityConfig | None = None
    ) -> None:
        self.address = f"{host}:{port}"
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout_s)
        except OSError as exc:
            raise ClientError(f"cannot connect to {self.address}: {exc.strerror or exc}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.correlation_id = 0
        self.versions: dict[int, tuple[int, int]] = {}
        try:
            if security is not None and security.tls:
                self._start_tls(host, security)
            self._negotiate()
            if security is not None and security.sasl:
                self._authenticate(security)
        except BaseException:
            self.close()
            raise

    def _start_tls(self, host: str, security: SecurityConfig) -> None:
        import ssl

        try:
            self.sock = security.ssl_context().wrap_socket(self.sock, server_hostname=host)
        except ssl.SSLError as exc:
            raise ClientError(f"TLS handshake with {self.address} failed: {exc.reason or exc}") from None
        except OSError as exc:
            raise ClientError(f"TLS handshake with {self.address} failed: {exc.strerror or exc}") from None

    def _authenticate(self, security: SecurityConfig) -> None:
        """SaslHandshake v1, then SaslAuthenticate until the mechanism is done (KIP-152)."""
        handshake = REQUESTS[ApiKey.SASL_HANDSHAKE](mechanism=security.mechanism)
        resp = self.request(handshake)
        if resp.error_code == ErrorCode.UNSUPPORTED_SASL_MECHANISM:
            raise ClientError(
                f"{self.address} does not offer SASL {security.mechanism} (it offers {', '.join(resp.mechanisms) or 'none'})"
            )
        check(f"SaslHandshake with {self.address}", resp.error_code)
        mech = security.mechanism_client()
        message: bytes | None = mech.first()
        while message is not None:
            answer = self.request(REQUESTS[ApiKey.SASL_AUTHENTICATE](auth_bytes=message))
            check(f"SASL {security.mechanism} login to {self.address} as {security.username!r}", answer.error_code,
                  answer.error_message)
            message = mech.step(bytes(answer.auth_bytes or b""))

    def close(self) -> None:
        self.sock.close()

    def _negotiate(self) -> None:
        api_versions = REQUESTS[ApiKey.API_VERSIONS]
        msg = api_versions(client_software_name=CLIENT_ID, client_software_version=CLIENT_SOFTWARE_VERSION)
        resp = self._call(msg, CLIENT_MAX_VERSIONS[ApiKey.API_VERSIONS])
        if resp.error_code == ErrorCode.UNSUPPORTED_VERSION:  # KIP-511: the answer lists what it serves
            served = {k.api_key: k.max_version for k in resp.api_keys}
            resp = self._call(api_versions(), min(served.get(ApiKey.API_VERSIONS, 0), 3))
        check(f"ApiVersions to {self.address}", resp.error_code)
        self.versions = {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}

    def version(self, api_key: int) -> int:
        """The version to send ``api_key`` at; ClientError when no version fits both sides."""
        name = INDEX[api_key][7]
        if api_key not in self.versions:
            raise ClientError(f"the broker at {self.address} does not serve {name}")
        lo, hi = self.versions[api_key]
        ours_lo, ours_hi = INDEX[api_key][4], CLIENT_MAX_VERSIONS[api_key]
        top = min(hi, ours_hi)
        if top < max(lo, ours_lo):
            raise ClientError(
                f"the broker at {self.address} serves {name} v{lo}-{hi}; this client speaks v{ours_lo}-{ours_hi}"
            )
        return top

    def request(self, msg: Any, version: int | None = None) -> Any:
        """Send ``msg`` (at the agreed version unless given) and return the decoded answer."""
        return self._call(msg, self.version(msg.API_KEY) if version is None else version)

    def _call(self, msg: Any, version: int) -> Any:
        self.correlation_id += 1
        header = RequestHeader(
            request_api_key=msg.API_KEY,
            request_api_version=version,
            correlation_id=self.correlation_id,
            client_id=CLIENT_ID,
        )
        name = INDEX[msg.API_KEY][7]
        try:
            self.sock.sendall(encode_request(header, msg))
            (size,) = _I32.unpack(self._read(4))
            if not 0 <= size <= MAX_RESPONSE_BYTES:
                raise ClientError(f"{name} answer from {self.address} claims {size} bytes")
            frame = self._read(size)
        except TimeoutError:
            raise ClientError(f"{name} to {self.address} timed out") from None
        except OSError as exc:
            raise ClientError(f"{name} to {self.address} failed: {exc.strerror or exc}") from None
        try:
            resp_header, offset = decode_response_header(frame, msg.API_KEY, version)
            if resp_header.correlation_id != self.correlation_id:
                raise ClientError(f"{name} answer from {self.address} has the wrong correlation id")
            return decode(RESPONSES[msg.API_KEY], version, memoryview(frame)[offset:])
        except WireError as exc:
            raise ClientError(f"cannot read the {name} v{version} answer from {self.address}: {exc}") from None

    def _read(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise ClientError(f"{self.address} closed the connection")
            buf += chunk
        return bytes(buf)

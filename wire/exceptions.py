"""The exceptions of the wire codec.

Every problem found while decoding bytes from a peer raises :class:`DecodeError`
(or a subclass), and nothing else: never an IndexError, struct.error or a huge
allocation from a hostile length.  Problems on the encoding side (a value a version
cannot carry) raise :class:`EncodeError`.
"""


class WireError(Exception):
    """Base of every exception raised by ``wire``."""


class DecodeError(WireError):
    """Bytes from a peer could not be decoded; the message says what was wrong."""


class EncodeError(WireError):
    """A message could not be encoded at the requested version."""

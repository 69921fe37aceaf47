"""wire: the Kafka protocol codec (sans-IO).

No sockets, files or asyncio live here, and nothing of this project is imported.
"""

from wire.exceptions import DecodeError, EncodeError, WireError

__all__ = ["DecodeError", "EncodeError", "WireError"]

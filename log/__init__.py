"""log: durable partition logs of segment files (synchronous file I/O).

Public API: :class:`LogManager`, :class:`PartitionLog`, :class:`LogConfig`, the
results :class:`AppendResult`, :class:`FetchSlice`, :class:`TimestampAndOffset`,
:class:`EpochEndOffset`, :class:`ActiveProducer`, :class:`AppendOrigin`; exceptions live
in ``log.errors``.  Compaction: ``log.cleaner_manager`` (see ``log.cleaner`` for the
algorithm and ``log.swap`` for the crash-safe segment swap).
"""

from kbroker.log.config import LogConfig
from kbroker.log.manager import LogManager
from kbroker.log.partition_log import PartitionLog
from kbroker.log.results import (
    ActiveProducer,
    AppendOrigin,
    AppendResult,
    EpochEndOffset,
    FetchSlice,
    TimestampAndOffset,
)

__all__ = [
    "ActiveProducer",
    "AppendOrigin",
    "AppendResult",
    "EpochEndOffset",
    "FetchSlice",
    "LogConfig",
    "LogManager",
    "PartitionLog",
    "TimestampAndOffset",
]

"""Transaction coordinator settings, under Kafka's property names (units in the suffix)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TransactionConfig"]


@dataclass(frozen=True, slots=True)
class TransactionConfig:
    transaction_max_timeout_ms: int = 900_000
    """transaction.max.timeout.ms: InitProducerId asking for more (or for <= 0) gets
    INVALID_TRANSACTION_TIMEOUT, so a client cannot hold partitions' LSO back forever."""
    transactional_id_expiration_ms: int = 604_800_000
    """transactional.id.expiration.ms: an id without a transaction in progress and not
    updated for this long is removed (tombstone), so abandoned ids do not pile up."""
    transaction_abort_timed_out_transaction_cleanup_interval_ms: int = 10_000
    """How often Ongoing transactions past their timeout are looked for and aborted."""
    transaction_remove_expired_transaction_cleanup_interval_ms: int = 3_600_000
    """How often expired transactional ids are looked for."""
    transaction_state_log_num_partitions: int = 50
    """transaction.state.log.num.partitions: used by ``txn_partition_for``."""
    offsets_topic_num_partitions: int = 50
    """offsets.topic.num.partitions: AddOffsetsToTxn adds the group's ``__consumer_offsets``
    partition; must equal the group coordinator's setting."""
    transaction_marker_retry_backoff_ms: int = 5_000
    """kbroker's own: when the markers of a PrepareCommit/PrepareAbort transaction were not
    confirmed (``markers_written``) after this long, they are emitted again (Kafka's
    marker channel retries the same way, forever)."""

    def __post_init__(self) -> None:
        if self.transaction_max_timeout_ms < 1:
            raise ValueError("transaction.max.timeout.ms must be >= 1")
        if self.transactional_id_expiration_ms < 1:
            raise ValueError("transactional.id.expiration.ms must be >= 1")
        if self.transaction_state_log_num_partitions < 1:
            raise ValueError("transaction.state.log.num.partitions must be >= 1")
        if self.offsets_topic_num_partitions < 1:
            raise ValueError("offsets.topic.num.partitions must be >= 1")
        for name in (
            "transaction_abort_timed_out_transaction_cleanup_interval_ms",
            "transaction_remove_expired_transaction_cleanup_interval_ms",
            "transaction_marker_retry_backoff_ms",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")

"""The client quotas' durable copy: one JSON document in the data dir.

Kafka keeps quota records in its metadata log; kbroker keeps them, as it keeps ACLs, in one
document rewritten atomically (temporary file, fsync, rename, directory fsync), so a crash
leaves the old or the new set, never half of one.  Quota changes are rare admin operations.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from kbroker.metadata import _write_atomically
from kbroker.quotas.model import QuotaEntity, QuotaProblem, check_entity, check_value, entity_of

QUOTA_FILE = "kbroker-client-quotas.json"
FORMAT_VERSION = 1


class QuotaStoreError(ValueError):
    """The quota file is not one kbroker wrote (start-up refuses it rather than guess)."""


class QuotaStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / QUOTA_FILE

    def load(self) -> dict[QuotaEntity, dict[str, float]]:
        if not self.path.exists():
            return {}
        out: dict[QuotaEntity, dict[str, float]] = {}
        try:
            doc = json.loads(self.path.read_bytes())
            if doc.get("version") != FORMAT_VERSION:
                raise QuotaStoreError(f"{self.path}: unknown format version {doc.get('version')!r}")
            for row in doc["quotas"]:
                pairs = [
                    (str(kind), None if name is None else str(name)) for kind, name in row["entity"]
                ]
                keys = check_entity(pairs)
                values = {str(k): float(v) for k, v in row["values"].items()}
                for key, value in values.items():
                    check_value(keys, key, value)
                if values:
                    out[entity_of(pairs)] = values
        except QuotaProblem as exc:
            raise QuotaStoreError(f"{self.path}: invalid quota: {exc.message}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise QuotaStoreError(f"{self.path}: not a kbroker client-quota file ({exc})") from None
        return out

    def save(self, quotas: dict[QuotaEntity, dict[str, float]]) -> None:
        rows = [
            {"entity": [list(pair) for pair in entity], "values": dict(sorted(values.items()))}
            for entity, values in sorted(
                quotas.items(), key=lambda item: [(k, n or "") for k, n in item[0]]
            )
            if values
        ]
        assert all(math.isfinite(v) for row in rows for v in row["values"].values())  # type: ignore[attr-defined]
        data = json.dumps(
            {"version": FORMAT_VERSION, "quotas": rows}, separators=(",", ":")
        ).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.path, data)

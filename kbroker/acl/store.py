"""The ACLs' durable copy: one JSON document in the data dir.

Kafka keeps ACLs in its metadata log; kbroker keeps them, like its topic metadata, in one
document rewritten atomically (temporary file, fsync, rename, directory fsync), so a crash
leaves the old or the new set, never half of one.  ACL changes are rare admin operations:
rewriting the whole set (10,000 ACLs are about 1 MB) is cheap enough.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from kbroker.acl.model import AclBinding, binding_error
from kbroker.metadata import _write_atomically

ACL_FILE = "kbroker-acls.json"
FORMAT_VERSION = 1


class AclStoreError(ValueError):
    """The ACL file is not one kbroker wrote (start-up refuses it rather than guess)."""


class AclStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / ACL_FILE

    def load(self) -> list[AclBinding]:
        if not self.path.exists():
            return []
        try:
            doc = json.loads(self.path.read_bytes())
            if doc.get("version") != FORMAT_VERSION:
                raise AclStoreError(f"{self.path}: unknown format version {doc.get('version')!r}")
            acls = [AclBinding.from_json(row) for row in doc["acls"]]
        except (ValueError, KeyError, TypeError, AssertionError, AttributeError) as exc:
            raise AclStoreError(f"{self.path}: not a kbroker ACL file ({exc})") from None
        for acl in acls:
            error = binding_error(acl)
            if error is not None:
                raise AclStoreError(f"{self.path}: invalid ACL {acl}: {error}")
        return acls

    def save(self, acls: Iterable[AclBinding]) -> None:
        rows = [acl.to_json() for acl in sorted(acls, key=AclBinding.sort_key)]
        data = json.dumps({"version": FORMAT_VERSION, "acls": rows}, separators=(",", ":")).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.path, data)

    def add(self, acls: Iterable[AclBinding]) -> None:
        """Add ACLs to the file of a stopped broker (seeding a data dir before start)."""
        self.save(set(self.load()) | set(acls))

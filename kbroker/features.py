"""Finalized features (KIP-584): what ApiVersions v3+ reports and UpdateFeatures changes.

The starting point is the emulated release's levels after a default format
(``kbroker.emulation``), as a freshly formatted Kafka cluster of that release has them.
UpdateFeatures records changes in ``<data_dir>/finalized-features.json``
(``{"epoch": N, "levels": {feature: level}}``, written to a temporary file, fsynced and
renamed over the old one), so they survive restarts.  A recorded level the emulated
release does not support (kbroker restarted with an older ``kbroker.emulate.version``)
is ignored, not lost.  Level 0 means "not finalized" and is never reported.

The epoch starts at 0 and goes up by one with every update that changes something, as
the metadata offset of Kafka's feature records goes up.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from kbroker.emulation import Emulation
from kbroker.wire.errors import ErrorCode

FILE_NAME = "finalized-features.json"
METADATA_VERSION = "metadata.version"

# UpdateFeatures upgrade types (v1+; v0's allow_downgrade maps to SAFE_DOWNGRADE or UPGRADE).
UPGRADE, SAFE_DOWNGRADE, UNSAFE_DOWNGRADE = 1, 2, 3


@dataclass(frozen=True, slots=True)
class FeatureUpdate:
    feature: str
    max_version_level: int
    upgrade_type: int


class UpdateRefused(Exception):
    """An update that Kafka's controller refuses; the whole request fails with it."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class FinalizedFeatures:
    """The finalized levels of one broker.  Loop thread only."""

    def __init__(self, data_dir: Path, emulation: Emulation) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self.emulation = emulation
        self.epoch = 0
        self.recorded: dict[str, int] = {}
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        if isinstance(doc, dict):
            self.epoch = int(doc.get("epoch", 0))
            levels = doc.get("levels", {})
            if isinstance(levels, dict):
                self.recorded = {str(k): int(v) for k, v in levels.items()}

    def levels(self) -> dict[str, int]:
        """feature -> finalized level (> 0), sorted by name."""
        supported = self.emulation.supported_features
        out = dict(self.emulation.finalized_features)
        for name, level in self.recorded.items():
            if name in supported and (level == 0 or supported[name][0] <= level <= supported[name][1]):
                out[name] = level
        return {name: level for name, level in sorted(out.items()) if level > 0}

    def update(self, updates: list[FeatureUpdate], *, validate_only: bool) -> None:
        """Apply ``updates`` all or nothing (UpdateRefused names the first bad one)."""
        current = self.levels()
        seen: set[str] = set()
        for u in updates:
            if u.feature in seen:
                raise UpdateRefused(ErrorCode.INVALID_REQUEST, f"Feature {u.feature} was specified more than once.")
            seen.add(u.feature)
            self._check(u, current.get(u.feature, 0))
        if validate_only:
            return
        changed = False
        for u in updates:
            level = max(u.max_version_level, 0)
            if current.get(u.feature, 0) != level:
                changed = True
            self.recorded[u.feature] = level
        if changed:
            self.epoch += 1
            self._save()

    def _check(self, u: FeatureUpdate, current: int) -> None:
        name, new = u.feature, max(u.max_version_level, 0)
        if u.upgrade_type not in (UPGRADE, SAFE_DOWNGRADE, UNSAFE_DOWNGRADE):
            raise UpdateRefused(ErrorCode.INVALID_UPDATE_VERSION, f"Invalid upgrade type {u.upgrade_type} for feature {name}.")
        supported = self.emulation.supported_features.get(name)
        if supported is None:
            raise UpdateRefused(ErrorCode.INVALID_UPDATE_VERSION, f"Invalid update version {new} for feature {name}. The controller does not support the given feature.")
        lo, hi = supported
        if new != 0 and not lo <= new <= hi or new == 0 and lo > 0:
            raise UpdateRefused(
                ErrorCode.INVALID_UPDATE_VERSION,
                f"Invalid update version {new} for feature {name}. Local controller 1 only supports versions {lo}-{hi}",
            )
        if new < current:
            if u.upgrade_type == UPGRADE:
                raise UpdateRefused(
                    ErrorCode.INVALID_UPDATE_VERSION,
                    f"Invalid update version {new} for feature {name}. Can't downgrade the version of this feature "
                    "without setting the upgrade type to either safe or unsafe downgrade.",
                )
            if name == METADATA_VERSION:
                # kbroker cannot tell which metadata a downgrade would lose, so it refuses
                # every metadata.version downgrade.
                if u.upgrade_type == UNSAFE_DOWNGRADE:
                    raise UpdateRefused(ErrorCode.INVALID_UPDATE_VERSION, "Unsafe metadata downgrade is not supported in this version.")
                raise UpdateRefused(
                    ErrorCode.INVALID_UPDATE_VERSION,
                    f"Invalid metadata.version {new}. Refusing to perform the requested downgrade because it might delete metadata information.",
                )
        elif new > current and u.upgrade_type != UPGRADE:
            raise UpdateRefused(ErrorCode.INVALID_UPDATE_VERSION, f"Invalid update version {new} for feature {name}. Can't downgrade to a newer version.")

    def _save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"epoch": self.epoch, "levels": self.recorded}, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

"""Per-participant normalisation profile: each channel's robust maximum envelope.

EIFER normalises each participant's EMG envelopes by that participant's per-channel maximum
(Buechner et al., CVPR 2025, supplement: per-participant max normalisation at training time), and
Exp2EMG's normalised output times the same maximum gives microvolts. The maximum is taken from a
calibration recording (the functional movements) run through the SAME online chain the pipeline
uses, so the chain's gain (online vs zero-phase differ by ~1.12x, emg_processing.md 3.4) cancels.
"Maximum" is the 99th percentile of the envelope after the chain's warm-up, robust to single
artefact spikes. Stored as a small JSON file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from streaming.errors import SessionFileError, StreamFormatError
from streaming.features import FeatureDefinition, build_chain, get_feature

__all__ = ["DEFAULT_PERCENTILE", "PROFILE_FORMAT", "Profile", "ProfileError", "compute_profile"]

PROFILE_FORMAT = 1
DEFAULT_PERCENTILE = 99.0


class ProfileError(SessionFileError):
    """A profile file is unreadable, or its channels/feature do not match the running chain."""


@dataclass(frozen=True, eq=False)
class Profile:
    """Per-channel maximum envelope (microvolts) of one participant, for one feature."""

    participant: str
    feature: str
    channels: tuple[str, ...]
    max_uv: np.ndarray
    percentile: float = DEFAULT_PERCENTILE
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        values = np.asarray(self.max_uv, dtype=np.float64).reshape(-1)
        object.__setattr__(self, "max_uv", values)
        object.__setattr__(self, "channels", tuple(self.channels))
        if values.size != len(self.channels):
            raise ProfileError(
                f"profile of {self.participant!r}: {values.size} values for "
                f"{len(self.channels)} channels"
            )
        bad = [
            c
            for c, v in zip(self.channels, values, strict=True)
            if not (v > 0 and math.isfinite(v))
        ]
        if bad:
            raise ProfileError(
                f"profile of {self.participant!r}: channel(s) {bad} have no positive finite "
                "maximum (dead or disconnected electrode in the calibration recording?)"
            )

    # -- use -------------------------------------------------------------------------------
    def _check(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != len(self.channels):
            raise StreamFormatError(
                f"profile of {self.participant!r} has {len(self.channels)} channels "
                f"{list(self.channels)}, got data with {x.shape[-1]} channels"
            )
        return x

    def normalise(self, envelope_uv: np.ndarray) -> np.ndarray:
        """Envelope (µV, ``(..., n_channels)``) divided by each channel's maximum."""
        return self._check(envelope_uv) / self.max_uv

    def to_microvolts(self, normalised: np.ndarray) -> np.ndarray:
        """Normalised values (e.g. Exp2EMG output) times each channel's maximum: microvolts."""
        return self._check(normalised) * self.max_uv

    def check_matches(self, channels: Sequence[str], feature: str) -> None:
        """Raise ProfileError unless the profile was made for these channels and feature."""
        if list(channels) != list(self.channels):
            raise ProfileError(
                f"profile of {self.participant!r} was made for channels {list(self.channels)}, "
                f"the stream has {list(channels)}; record a calibration for this montage"
            )
        if feature != self.feature:
            raise ProfileError(
                f"profile of {self.participant!r} was made with EMG feature {self.feature!r}, "
                f"the pipeline uses {feature!r}; recompute it with the same feature"
            )

    # -- file ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PROFILE_FORMAT,
            "participant": self.participant,
            "feature": self.feature,
            "unit": "microvolts",
            "percentile": self.percentile,
            "created": self.created,
            "channels": list(self.channels),
            "max_uv": [float(v) for v in self.max_uv],
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "profile") -> Profile:
        try:
            if data.get("format") != PROFILE_FORMAT:
                raise ProfileError(
                    f"{source}: profile format {data.get('format')!r}, expected {PROFILE_FORMAT}"
                )
            return cls(
                participant=str(data["participant"]),
                feature=str(data["feature"]),
                channels=tuple(str(c) for c in data["channels"]),
                max_uv=np.asarray(data["max_uv"], dtype=np.float64),
                percentile=float(data["percentile"]),
                created=str(data["created"]),
            )
        except KeyError as exc:
            raise ProfileError(f"{source}: profile lacks the key {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ProfileError(f"{source}: malformed profile: {exc}") from None

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        channels: Sequence[str] | None = None,
        feature: str | None = None,
    ) -> Profile:
        """Read a profile file; with ``channels``/``feature`` given, check that they match."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ProfileError(f"profile file not found: {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProfileError(f"{path}: not a readable JSON profile: {exc}") from None
        if not isinstance(data, dict):
            raise ProfileError(f"{path}: a profile must be a JSON object")
        profile = cls.from_dict(data, str(path))
        if channels is not None or feature is not None:
            profile.check_matches(
                profile.channels if channels is None else channels,
                profile.feature if feature is None else feature,
            )
        return profile


def compute_profile(
    recording_uv: np.ndarray,
    fs: float,
    channels: Sequence[str],
    participant: str,
    feature: FeatureDefinition | str = "low_latency",
    *,
    percentile: float = DEFAULT_PERCENTILE,
    warmup_s: float = 1.0,
    chunk_size: int = 4096,
) -> Profile:
    """Profile from a calibration recording (µV, ``(n_samples, n_channels)``) at ``fs`` Hz.

    The recording runs through the online chain of ``feature`` in chunks, as live; the first
    ``max(warmup_s, 2 x chain delay)`` seconds (filter settling, RMS fill) are skipped, then the
    ``percentile`` of each channel's envelope is its maximum.
    """
    defn = get_feature(feature) if isinstance(feature, str) else feature
    x = np.asarray(recording_uv)
    if x.ndim != 2 or x.shape[1] != len(channels):
        raise StreamFormatError(
            f"calibration recording has shape {x.shape}, expected (n_samples, {len(channels)}) "
            f"for channels {list(channels)}"
        )
    chain = build_chain(defn, len(channels), fs)
    env = np.concatenate(
        [chain.process(x[i : i + chunk_size]) for i in range(0, x.shape[0], chunk_size)], axis=0
    )
    skip = round(max(warmup_s, 2.0 * chain.group_delay_s) * fs)
    if env.shape[0] - skip < fs:
        raise StreamFormatError(
            f"calibration recording of {x.shape[0] / fs:.2f} s is too short: need at least "
            f"{(skip + fs) / fs:.2f} s (warm-up {skip / fs:.2f} s + 1 s)"
        )
    max_uv = np.percentile(env[skip:], percentile, axis=0)
    return Profile(
        participant=participant,
        feature=defn.name,
        channels=tuple(channels),
        max_uv=max_uv,
        percentile=percentile,
    )

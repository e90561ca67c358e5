"""Per-participant normalisation profile: the envelope value each channel is divided by.

EIFER divides each participant's EMG envelopes by "the participant's maximum measured activity"
(Buechner et al., CVPR 2025, supplement) and multiplies Exp2EMG's output back by it to give
microvolts; the paper does not say whether that maximum is one number or one per channel, nor how
robust it is. So the method is a declared property (:class:`Normalisation`: scalar or per
channel; the maximum or a percentile), stored in the profile and in a model bundle's manifest like
the EMG feature, and the pipeline refuses a profile whose method differs from the one its models
declare (:func:`check_normalisation`; the bundle's manifest is read by ``eifer_models``). This
project's default, per channel 99th percentile, is its own choice (robust to single artefact
spikes), not the paper's.

The values come from a calibration recording (the functional movements) run through the SAME
online chain the pipeline uses, so the chain's gain (online vs zero-phase differ by ~1.12x,
emg_processing.md 3.4) cancels. Stored as a small JSON file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from streaming.config import Config, ConfigError, validate
from streaming.errors import SessionFileError, StreamFormatError
from streaming.pipeline.features import FeatureDefinition, build_chain, get_feature

__all__ = [
    "DEFAULT_PERCENTILE",
    "PROFILE_FORMAT",
    "Normalisation",
    "Profile",
    "ProfileError",
    "compute_profile",
]

PROFILE_FORMAT = 1
DEFAULT_PERCENTILE = 99.0


class ProfileError(SessionFileError):
    """A profile file is unreadable, or its channels/feature do not match the running chain."""


class Normalisation(Config):
    """How a participant's envelopes are scaled: ``scope`` one value for all channels (``scalar``)
    or one per channel; ``statistic`` the maximum or the ``percentile`` of the envelope."""

    scope: Literal["per_channel", "scalar"] = "per_channel"
    statistic: Literal["max", "percentile"] = "percentile"
    percentile: float = Field(DEFAULT_PERCENTILE, gt=0, le=100)  # used by "percentile" only

    def reference(self, envelope: np.ndarray) -> np.ndarray:
        """The divisor per channel (``(n_channels,)``) of an envelope ``(n_samples, n_channels)``;
        NaN samples are ignored. A scalar method repeats one value for every channel."""
        x = np.asarray(envelope, dtype=np.float64)
        if self.scope == "scalar":
            x = x.reshape(-1, 1)
        value = (
            np.nanmax(x, axis=0)
            if self.statistic == "max"
            else np.nanpercentile(x, self.percentile, axis=0)
        )
        width = np.asarray(envelope).shape[-1]
        return np.broadcast_to(value, (width,)).astype(np.float64)

    def key(self) -> tuple[str, str, float | None]:
        """What identifies the method (the percentile only matters for ``percentile``)."""
        return (
            self.scope,
            self.statistic,
            self.percentile if self.statistic == "percentile" else None,
        )

    def describe(self) -> str:
        what = "maximum" if self.statistic == "max" else f"{self.percentile:g}th percentile"
        return f"{self.scope.replace('_', ' ')} {what}"

    @classmethod
    def from_dict(cls, data: Any, source: str = "normalisation") -> Normalisation:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: the normalisation method must be a table/object")
        return validate(cls, data, source)


@dataclass(frozen=True, eq=False)
class Profile:
    """Per-channel divisor (microvolts; the "maximum") of one participant, for one feature and
    one declared :class:`Normalisation` method."""

    participant: str
    feature: str
    channels: tuple[str, ...]
    max_uv: np.ndarray
    normalisation: Normalisation = field(default_factory=Normalisation)
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

    @property
    def percentile(self) -> float | None:
        """The percentile of a percentile method (None for the maximum)."""
        n = self.normalisation
        return n.percentile if n.statistic == "percentile" else None

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
            "normalisation": self.normalisation.model_dump(),
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
            participant, feature = str(data["participant"]), str(data["feature"])
            channels = tuple(str(c) for c in data["channels"])
            max_uv = np.asarray(data["max_uv"], dtype=np.float64)
            if "normalisation" in data:
                method = Normalisation.from_dict(data["normalisation"], f"{source} normalisation")
            else:  # profiles written before the method was declared: per channel percentile
                method = Normalisation(percentile=float(data["percentile"]))
            return cls(participant, feature, channels, max_uv, method, str(data["created"]))
        except ConfigError as exc:
            raise ProfileError(str(exc)) from None
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
    rate_hz: float,
    channels: Sequence[str],
    participant: str,
    feature: FeatureDefinition | str = "low_latency",
    *,
    percentile: float = DEFAULT_PERCENTILE,
    normalisation: Normalisation | None = None,
    warmup_s: float = 1.0,
    chunk_size: int = 4096,
) -> Profile:
    """Profile from a calibration recording (µV, ``(n_samples, n_channels)``) at ``rate_hz`` Hz.

    The recording runs through the online chain of ``feature`` in chunks, as live; the first
    ``max(warmup_s, 2 x chain delay)`` seconds (filter settling, RMS fill) are skipped, then
    ``normalisation`` (default: per channel, the ``percentile``) gives each channel's divisor.

    Parameters
    ----------
    recording_uv : ndarray, shape (n_samples, n_channels)
        The calibration recording in microvolts.
    rate_hz : float
        Its sampling rate in Hz.
    channels : sequence of str
        Channel labels, one per column.
    participant : str
        Participant identifier stored in the profile.
    feature : FeatureDefinition | str
        The EMG feature (or its name in ``configs/features``) the live pipeline will compute.
    percentile : float
        Percentile of each channel's envelope used as its divisor, when ``normalisation`` is
        None (EIFER divides by the "maximum measured activity"; a high percentile is robust to
        artefact spikes).
    normalisation : Normalisation | None
        The normalisation method; it must match the one the bundle's MLPs were trained with.
    warmup_s : float
        Minimum start of the recording skipped while the filters settle.
    chunk_size : int
        Samples per call of the online chain (as the live pipeline's chunks).

    Returns
    -------
    Profile

    Raises
    ------
    streaming.errors.StreamFormatError
        Shape not ``(n_samples, len(channels))``, or less than 1 s left after the warm-up.
    """
    method = normalisation or Normalisation(percentile=percentile)
    defn = get_feature(feature) if isinstance(feature, str) else feature
    x = np.asarray(recording_uv)
    if x.ndim != 2 or x.shape[1] != len(channels):
        raise StreamFormatError(
            f"calibration recording has shape {x.shape}, expected (n_samples, {len(channels)}) "
            f"for channels {list(channels)}"
        )
    chain = build_chain(defn, len(channels), rate_hz)
    env = np.concatenate(
        [chain.process(x[i : i + chunk_size]) for i in range(0, x.shape[0], chunk_size)], axis=0
    )
    skip = round(max(warmup_s, 2.0 * chain.group_delay_s) * rate_hz)
    if env.shape[0] - skip < rate_hz:
        raise StreamFormatError(
            f"calibration recording of {x.shape[0] / rate_hz:.2f} s is too short: need at least "
            f"{(skip + rate_hz) / rate_hz:.2f} s (warm-up {skip / rate_hz:.2f} s + 1 s)"
        )
    return Profile(
        participant=participant,
        feature=defn.name,
        channels=tuple(channels),
        max_uv=method.reference(env[skip:]),
        normalisation=method,
    )


def check_normalisation(profile: Profile, expected: Normalisation | None, source: str) -> None:
    """ProfileError unless ``profile`` was made with the method ``expected`` (by ``source``, e.g.
    a model bundle); ``expected`` None (a bundle older than the declared method) passes."""
    if expected is not None and profile.normalisation.key() != expected.key():
        raise ProfileError(
            f"profile of {profile.participant!r} normalises by the {profile.normalisation.describe()}"
            f", but {source} was trained on the {expected.describe()}; recompute the profile with "
            "the bundle's method (the model's inputs and outputs would be scaled wrongly)"
        )

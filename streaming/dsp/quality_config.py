"""Settings of the per-channel EMG quality monitor (:mod:`streaming.dsp.quality`).

Shipped defaults: ``configs/quality.toml`` (:func:`load_quality_config`). Every threshold is a
:class:`Limit`: a ``check`` and a ``bad`` level (either may be off) and a ``release`` margin that
a flagged metric must clear before the flag drops (a Schmitt trigger, so states do not flicker).
Where a default comes from the literature the field's comment says so; the others are this
project's choice, measured against the EMG simulator and the real recordings in
``shared/data/emg`` (tests/dsp/test_quality*.py, benchmarks/quality_detection.py).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from configs import CONFIG_DIR
from streaming.config import Config, load_config
from streaming.dsp.quality_report import MAINS_HZ_RANGE

__all__ = ["DEFAULT_QUALITY_CONFIG", "Limit", "QualityConfig", "load_quality_config"]

DEFAULT_QUALITY_CONFIG = CONFIG_DIR / "quality.toml"


class Limit(Config):
    """Thresholds of one metric: flagged ``check`` / ``bad`` when the metric passes the level
    (above it, or below it when ``below``); a flag drops once the metric is back past the level
    by ``release`` (in the metric's units). ``None`` switches that level off."""

    check: float | None = None
    bad: float | None = None
    release: float = Field(0.0, ge=0)
    below: bool = False  # True: low values are the fault (a flat line)

    @model_validator(mode="after")
    def _ordered(self) -> Limit:
        if self.check is not None and self.bad is not None:
            worse = self.bad < self.check if self.below else self.bad > self.check
            if not worse and self.bad != self.check:
                raise ValueError(f"bad={self.bad} must lie beyond check={self.check}")
        return self


class QualityConfig(Config):
    """Analysis windows, bands and the thresholds of each reason (units in the names)."""

    # timing: one report per block; metrics over the last window (whole blocks)
    update_s: float = Field(0.5, gt=0)
    window_s: float = Field(1.0, gt=0)
    # EMG band: SENIAM high-pass 10-20 Hz, low-pass near 500 Hz; facial: van Boxtel 2001
    # (15-25 Hz to 400-500 Hz); the project's feature chain uses 20-450 Hz
    band_hz: tuple[float, float] = (20.0, 450.0)
    # motion artefacts: the power below ~20 Hz, out of the EMG band (SENIAM's high-pass)
    lf_hz: tuple[float, float] = (1.0, 20.0)
    # broadband noise of an open input / lifted electrode, compared with the neighbours, where
    # surface EMG has little power (facial EMG spectra peak at 30-65 Hz, van Boxtel 2001);
    # clipped to 0.45 x the sampling rate
    noise_hz: tuple[float, float] = (500.0, 1000.0)
    # bridging: correlation above this high-pass (the "> ~100 Hz"), so slow shared
    # artefacts (motion, mains fundamental) do not count as one signal
    bridge_highpass_hz: float = Field(100.0, gt=0)
    # mains: None = detect 50 or 60 Hz from the data; harmonics up to mains_max_hz
    mains_hz: float | None = None
    mains_max_hz: float = Field(450.0, gt=0)
    # rest baseline: a percentile of the rest blocks' EMG-band power over the last baseline_s
    # (all blocks when no movement was ever announced: the lowest-activity windows)
    baseline_s: float = Field(20.0, gt=0)
    baseline_percentile: float = Field(20.0, ge=0, le=100)
    rest_guard_s: float = Field(1.0, ge=0)  # after a movement ends, not yet rest
    rest_movements: list[str] = ["Face-At-Rest"]  # movements that are rest
    # motion spikes: onsets of |1-20 Hz signal| above spike_uv (this project's choice: resting
    # facial EMG is a few uV, contractions reach tens to ~150 uV RMS (configs/movements.toml),
    # and what is left of them below 20 Hz stays far below 100 uV)
    spike_uv: float = Field(100.0, gt=0)
    # railed: samples within this fraction of range_uv (when the stream declares a range)
    rail_fraction: float = Field(0.99, gt=0, le=1)
    # activity: evaluated from silent_after_s into a movement (reaction + ramp), on channels
    # whose muscle the movement drives at >= silent_min_level (configs/movements.toml levels)
    silent_after_s: float = Field(1.5, ge=0)
    silent_min_level: float = Field(0.5, ge=0, le=1)
    # a silent verdict holds this long after it was last judged (about one protocol cycle:
    # instruction 3 s, hold 4 s, pause 3 s in configs/protocols/mimics_and_muscles.toml)
    silent_hold_s: float = Field(10.0, ge=0)
    # bridged pairs carry one signal: similar levels too (crosstalk is correlated but weaker)
    bridge_level_db: float = Field(6.0, gt=0)

    nan: Limit = Limit(check=0.0, bad=0.05)  # NaN fraction of the window
    flat: Limit = Limit(bad=0.1, release=0.05, below=True)  # EMG-band RMS, uV
    railed: Limit = Limit(check=0.005, bad=0.02)  # fraction at the range / at the extremes
    stuck: Limit = Limit(check=0.05, bad=0.5, release=0.02)  # fraction of repeated samples
    noise: Limit = Limit(check=15.0, bad=25.0, release=3.0)  # dB above the neighbours' median
    mains: Limit = Limit(check=10.0, bad=25.0, release=3.0)  # dB against the EMG band
    mains_min_uv: float = Field(1.0, ge=0)  # hum below this RMS is never flagged
    # mains lines must stand this many standard deviations of their estimate above the EMG
    # floor beside them (EMG spectrum bins ~ chi-square with 2 dof); project's choice
    mains_min_z: float = Field(12.0, gt=0)
    bridged: Limit = Limit(check=0.9, bad=0.97, release=0.03)  # HF correlation
    motion_lf: Limit = Limit(check=0.5, release=0.1)  # power fraction below 20 Hz
    motion_spikes: Limit = Limit(check=0.5)  # spikes in the window
    baseline: Limit = Limit(check=8.0, release=1.0)  # rest RMS, uV
    silent: Limit = Limit(check=3.0, release=1.0, below=True)  # activity SNR, dB

    @model_validator(mode="after")
    def _bands(self) -> QualityConfig:
        for name in ("band_hz", "lf_hz", "noise_hz"):
            lo, hi = getattr(self, name)
            if not 0 < lo < hi:
                raise ValueError(f"{name} {getattr(self, name)} must satisfy 0 < low < high")
        if self.window_s < self.update_s:
            raise ValueError(f"window_s={self.window_s} must be >= update_s={self.update_s}")
        low, high = MAINS_HZ_RANGE  # what the bus contract accepts in a report
        if self.mains_hz is not None and not low <= self.mains_hz <= high:
            raise ValueError(
                f"mains_hz={self.mains_hz} must be a power-line frequency in [{low:g}, {high:g}] "
                "Hz (or unset: detect)"
            )
        return self


def load_quality_config(
    path: str | Path | None = DEFAULT_QUALITY_CONFIG, overrides: tuple[str, ...] = ()
) -> QualityConfig:
    """The quality config at ``path`` (default: the shipped ``configs/quality.toml``; None: the
    built-in defaults), with ``key=value`` overrides."""
    return load_config(QualityConfig, path, overrides)

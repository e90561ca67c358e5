"""Named EMG feature definitions and the factory that builds their online chain.

A feature definition says exactly how raw EMG (microvolts, ``rate_hz``) becomes the envelope the
EIFER MLPs see: an ordered list of stages with their parameters, a description and the literature
source. Definitions are frozen configs, serialisable to/from a dict, so a model bundle manifest
can store the one its MLPs were trained on and the pipeline can rebuild the same chain.

Shipped definitions live in ``configs/features/<name>.toml``:

- ``low_latency`` (default): 20-450 Hz Butterworth N=2, 50 Hz notch Q=30 with harmonics below
  450 Hz, full-wave rectification, 6 Hz N=2 low-pass (research note emg_processing.md, section
  3.5); delay over the envelope's band 47.9 ms (39.4 ms at DC).
- ``mmm``: the official MMM preprocessing (EIFER dataset README: 50 Hz IIR notch Q=2, 10-500 Hz
  FIR 129 taps Hamming, 2048-sample sliding RMS) made causal; delay 266.0 ms at 4096 Hz.

Delays are over the envelope's band (:mod:`streaming.dsp.delay`), the lag the pipeline must
compensate; the DC figure is ``build_chain(...).dc_delay_s``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PositiveFloat, PositiveInt

from configs import CONFIG_DIR
from streaming.config import Config, ConfigError, load_config, validate
from streaming.dsp import stages as st

__all__ = [
    "DEFAULT_FEATURE",
    "BandpassStage",
    "BesselLowpassStage",
    "FeatureDefinition",
    "FirBandpassStage",
    "HighpassStage",
    "LowpassStage",
    "NotchStage",
    "RectifyStage",
    "RmsStage",
    "build_chain",
    "feature_names",
    "get_feature",
]

DEFAULT_FEATURE = "low_latency"
FEATURE_DIR = CONFIG_DIR / "features"


class BandpassStage(Config):
    """Butterworth band-pass (``order`` is scipy's N: the band-pass has order 2N)."""

    kind: Literal["butter_bandpass"] = "butter_bandpass"
    low_hz: PositiveFloat
    high_hz: PositiveFloat
    order: PositiveInt = 2


class HighpassStage(Config):
    """Butterworth high-pass (causal DC and drift removal)."""

    kind: Literal["butter_highpass"] = "butter_highpass"
    cutoff_hz: PositiveFloat
    order: PositiveInt = 1


class NotchStage(Config):
    """Notch at ``freq_hz`` (and harmonics up to ``max_hz``) against mains hum."""

    kind: Literal["notch"] = "notch"
    freq_hz: PositiveFloat = 50.0
    q: PositiveFloat = 30.0
    max_hz: PositiveFloat | None = None  # harmonics up to here; None = fundamental only


class RectifyStage(Config):
    """Full-wave rectification."""

    kind: Literal["rectify"] = "rectify"


class LowpassStage(Config):
    """Butterworth low-pass: the linear-envelope smoother."""

    kind: Literal["butter_lowpass"] = "butter_lowpass"
    cutoff_hz: PositiveFloat
    order: PositiveInt = 2


class BesselLowpassStage(Config):
    """Bessel low-pass: an envelope smoother whose delay is nearly the same across its band."""

    kind: Literal["bessel_lowpass"] = "bessel_lowpass"
    cutoff_hz: PositiveFloat
    order: PositiveInt = 2
    norm: Literal["phase", "mag", "delay"] = "phase"  # scipy.signal.bessel's normalisation


class FirBandpassStage(Config):
    """Linear-phase windowed-sinc band-pass FIR."""

    kind: Literal["fir_bandpass"] = "fir_bandpass"
    low_hz: PositiveFloat
    high_hz: PositiveFloat
    numtaps: PositiveInt  # at rate_hz; scaled to keep the duration at other rates
    window: str = "hamming"


class RmsStage(Config):
    """Sliding RMS over ``window_samples``."""

    kind: Literal["sliding_rms"] = "sliding_rms"
    window_samples: PositiveInt  # at rate_hz; scaled to keep the duration at other rates


StageSpec = Annotated[
    BandpassStage
    | HighpassStage
    | NotchStage
    | RectifyStage
    | LowpassStage
    | BesselLowpassStage
    | FirBandpassStage
    | RmsStage,
    Field(discriminator="kind"),
]


class FeatureDefinition(Config):
    """One declared EMG feature: what the chain is, at which rate, and where it comes from."""

    name: str
    description: str
    source: str
    rate_hz: PositiveFloat = 4096.0
    unit: str = "microvolts"
    stages: list[StageSpec] = Field(min_length=1)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict (for a bundle manifest)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], source: str = "feature definition"
    ) -> FeatureDefinition:
        """Validate a dict (e.g. from a manifest); ConfigError names any bad key."""
        return validate(cls, data, source)

    def with_mains_hz(self, freq_hz: float) -> FeatureDefinition:
        """Same definition with every notch moved to ``freq_hz`` (60 Hz mains), harmonics kept
        below the same limit."""
        new = [
            s.model_copy(update={"freq_hz": float(freq_hz)}) if isinstance(s, NotchStage) else s
            for s in self.stages
        ]
        return self.model_copy(update={"stages": new})

    def delay_s(self, rate_hz: float | None = None) -> float:
        """Delay (seconds) over the envelope's band of the online chain built at ``rate_hz``
        (default: the definition's): :attr:`streaming.dsp.stages.Chain.band_delay_s`."""
        return build_chain(self, 1, rate_hz).band_delay_s


def _scaled_samples(n: int, rate_hz: float, defined_hz: float, odd: bool) -> int:
    """A sample count defined at ``defined_hz`` converted to ``rate_hz`` keeping its duration."""
    if rate_hz == defined_hz:
        return n
    m = max(1, round(n * rate_hz / defined_hz))
    if odd and m % 2 == 0:
        m += 1
    return m


def build_stage(spec: StageSpec, n_channels: int, rate_hz: float, defined_hz: float) -> st.Stage:
    """The online stage for one stage spec, run at ``rate_hz``; sample counts in the spec are
    counted at ``defined_hz`` (its definition's ``rate_hz``)."""
    if isinstance(spec, BandpassStage):
        return st.band_pass(spec.low_hz, spec.high_hz, spec.order, n_channels, rate_hz)
    if isinstance(spec, HighpassStage):
        return st.high_pass(spec.cutoff_hz, spec.order, n_channels, rate_hz)
    if isinstance(spec, NotchStage):
        return st.notch(spec.freq_hz, spec.q, n_channels, rate_hz, spec.max_hz)
    if isinstance(spec, RectifyStage):
        return st.Rectify(n_channels)
    if isinstance(spec, LowpassStage):
        return st.envelope_lowpass(spec.cutoff_hz, spec.order, n_channels, rate_hz)
    if isinstance(spec, BesselLowpassStage):
        return st.bessel_envelope_lowpass(
            spec.cutoff_hz, spec.order, n_channels, rate_hz, spec.norm
        )
    if isinstance(spec, FirBandpassStage):
        from streaming.dsp.design import fir_bandpass

        numtaps = _scaled_samples(spec.numtaps, rate_hz, defined_hz, odd=True)
        taps = fir_bandpass(spec.low_hz, spec.high_hz, numtaps, rate_hz, spec.window)
        return st.FirFilter(taps, n_channels, rate_hz)
    if isinstance(spec, RmsStage):
        window = _scaled_samples(spec.window_samples, rate_hz, defined_hz, odd=False)
        return st.SlidingRms(window, n_channels, rate_hz)
    raise TypeError(f"unknown stage spec {spec!r}")  # pragma: no cover - union is closed


def build_chain(
    definition: FeatureDefinition | str, n_channels: int, rate_hz: float | None = None
) -> st.Chain:
    """The online chain of ``definition`` for ``n_channels`` channels at ``rate_hz`` Hz.

    ``rate_hz`` defaults to the definition's own; at another rate the filters are designed for
    ``rate_hz`` and sample-count parameters (FIR taps, RMS window) keep their duration.
    """
    defn = get_feature(definition) if isinstance(definition, str) else definition
    rate = float(defn.rate_hz if rate_hz is None else rate_hz)
    try:
        built = [build_stage(s, n_channels, rate, defn.rate_hz) for s in defn.stages]
    except ValueError as exc:
        raise ConfigError(f"feature {defn.name!r} at {rate} Hz: {exc}") from None
    return st.Chain(built)


def feature_names() -> list[str]:
    """Names of the shipped feature definitions."""
    return sorted(p.stem for p in FEATURE_DIR.glob("*.toml"))


def get_feature(name_or_path: str | Path, overrides: tuple[str, ...] = ()) -> FeatureDefinition:
    """A shipped definition by name, or one from a TOML file path.

    Raises ConfigError listing the known names when the name is unknown.
    """
    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith(".toml") or path.is_file()):
        path = FEATURE_DIR / f"{text}.toml"
        if not path.is_file():
            raise ConfigError(
                f"unknown EMG feature definition {text!r}; known: {', '.join(feature_names())} "
                f"(or give the path of a feature TOML file)"
            )
    return load_config(FeatureDefinition, path, overrides)

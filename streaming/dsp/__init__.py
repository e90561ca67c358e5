"""Online EMG signal processing: filter design, stateful per-chunk stages, offline reference."""

from streaming.dsp.stages import (
    BipolarDerivation,
    Chain,
    FirFilter,
    Rectify,
    SlidingRms,
    SosFilter,
    Stage,
    band_pass,
    bessel_envelope_lowpass,
    envelope_lowpass,
    high_pass,
    notch,
)

__all__ = [
    "BipolarDerivation",
    "Chain",
    "FirFilter",
    "Rectify",
    "SlidingRms",
    "SosFilter",
    "Stage",
    "band_pass",
    "bessel_envelope_lowpass",
    "envelope_lowpass",
    "high_pass",
    "notch",
]

"""The delay of an envelope chain over the envelope's band: what aligning EMG with video needs.

A linear-envelope chain (band-pass and notch on the raw EMG, the *carrier*; rectification; a
smoother on the rectified signal, the *envelope*) delays the envelope by different amounts at
different frequencies: the 6 Hz Butterworth smoother delays DC by 37.5 ms but 3 Hz by 44 ms, and
the notch delays the EMG energy near each mains harmonic. The delay at DC therefore
underestimates the lag of real envelopes (42-57 ms for ``low_latency`` on the recordings in
``shared/data/emg``, where the DC figure is 39.4 ms). The delay over the band is defined here as
the sum of two terms, both computed from the filters alone:

- carrier: the energy-weighted group delay of the stages before rectification over the EMG band
  (flat reference spectrum, 20-450 Hz, the facial-EMG band of van Boxtel 2001):
  ``sum_f gd(f) |H(f)|^2 / sum_f |H(f)|^2``. The rectified envelope inherits the delay of the
  carrier's energy.
- envelope: the lag that maximises the cross-correlation of the causal envelope with its offline
  (zero-phase) counterpart (streaming.dsp.offline), for a reference envelope whose spectrum is
  flat over 0-5 Hz (facial movements; research note emg_processing.md 3.5). That is the lag
  ``tau`` maximising ``Re sum_f H(f) conj(H0(f)) exp(j 2 pi f tau)``, with ``H`` the causal and
  ``H0`` the zero-phase response of the stages after rectification; for linear-phase stages
  (FIR, sliding RMS) it is their constant delay.

Stages are duck-typed (``response``, ``zero_phase_response``, ``group_delay_curve_s``, ``rate_hz``),
so this module depends on numpy only and :mod:`streaming.dsp.stages` builds on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

__all__ = [
    "EMG_BAND_HZ",
    "ENVELOPE_BAND_HZ",
    "LinearStage",
    "carrier_delay_s",
    "envelope_delay_s",
]

# Facial-EMG band (van Boxtel 2001: high-pass 15-25 Hz, low-pass 400-500 Hz).
EMG_BAND_HZ = (20.0, 450.0)
# Band of the envelope's changes: facial movements (research note emg_processing.md 3.5, 6 Hz
# smoother "loses little" below ~5 Hz).
ENVELOPE_BAND_HZ = 5.0
_CARRIER_RESOLUTION_HZ = 0.05  # resolves a Q=30 notch at 50 Hz (bandwidth 1.7 Hz)
_ENVELOPE_RESOLUTION_HZ = 0.01
_COARSE_LAG_STEP_S = 2e-3  # the correlation peak over a 5 Hz band is ~100 ms wide
_LAG_STEP_S = 2e-5


class LinearStage(Protocol):
    """What the delay needs to know of a stage (every :class:`streaming.dsp.stages.Stage`)."""

    def response(self, freqs_hz: np.ndarray) -> np.ndarray: ...

    def zero_phase_response(self, freqs_hz: np.ndarray) -> np.ndarray: ...

    def group_delay_curve_s(self, freqs_hz: np.ndarray) -> np.ndarray: ...


def carrier_delay_s(
    stages: Sequence[LinearStage], rate_hz: float, band_hz: tuple[float, float] = EMG_BAND_HZ
) -> float:
    """Energy-weighted group delay (s) of ``stages`` over ``band_hz`` (flat input spectrum)."""
    if not stages:
        return 0.0
    low, high = band_hz[0], min(band_hz[1], 0.49 * rate_hz)
    f = np.arange(low, high, _CARRIER_RESOLUTION_HZ)
    power = np.ones(f.shape)
    delay = np.zeros(f.shape)
    for stage in stages:
        power = power * np.abs(stage.response(f)) ** 2
        delay = delay + stage.group_delay_curve_s(f)
    ok = np.isfinite(delay) & (power > 0)  # on a notch's zero the delay is undefined, power 0
    if not ok.any():  # no band below Nyquist (rate_hz < 2 x 20 Hz), or nothing passes
        return 0.0
    return float(np.sum(delay[ok] * power[ok]) / np.sum(power[ok]))


def envelope_delay_s(
    stages: Sequence[LinearStage], band_hz: float = ENVELOPE_BAND_HZ, max_lag_s: float = 2.0
) -> float:
    """Lag (s) maximising the cross-correlation of causal and zero-phase envelopes whose input
    has a flat spectrum over 0..``band_hz`` (searched over 0..``max_lag_s`` on a 2 ms grid, then
    on a 0.02 ms grid refined by a parabola)."""
    if not stages:
        return 0.0
    f = np.arange(0.0, band_hz + _ENVELOPE_RESOLUTION_HZ / 2, _ENVELOPE_RESOLUTION_HZ)
    cross = np.ones(f.shape, dtype=complex)
    for stage in stages:
        cross = cross * stage.response(f) * np.conj(stage.zero_phase_response(f))

    def correlation(lags: np.ndarray) -> np.ndarray:
        return np.real(np.exp(2j * np.pi * np.outer(lags, f)) @ cross)

    coarse = np.arange(0.0, max_lag_s, _COARSE_LAG_STEP_S)
    best = coarse[int(np.argmax(correlation(coarse)))]
    lags = np.arange(max(0.0, best - _COARSE_LAG_STEP_S), best + _COARSE_LAG_STEP_S, _LAG_STEP_S)
    cc = correlation(lags)
    i = int(np.argmax(cc))
    if 0 < i < lags.size - 1:
        a, b, c = cc[i - 1], cc[i], cc[i + 1]
        denom = a - 2 * b + c
        if denom < 0:
            return float(lags[i] + 0.5 * (a - c) / denom * _LAG_STEP_S)
    return float(lags[i])

"""Pure filter design functions (scipy.signal style): coefficients in, nothing stateful.

Every design takes ``rate_hz`` (Hz) so the same definition runs at the 4096 Hz of the EIFER amplifier
(Buechner et al., CVPR 2025 supplement) or at the 1 kHz of the test recordings. IIR filters come
out as second-order sections (SOS), the numerically safe form for causal filtering with carried
state (scipy.signal.sosfilt); FIR filters as tap vectors.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

__all__ = [
    "bessel_lowpass",
    "butter_bandpass",
    "butter_highpass",
    "butter_lowpass",
    "fir_bandpass",
    "fir_group_delay_s",
    "notch_cascade",
    "notch_frequencies",
    "sos_gain",
    "sos_group_delay_curve_s",
    "sos_group_delay_s",
]


def _check_corner(name: str, hz: float, rate_hz: float) -> None:
    if not 0.0 < hz < rate_hz / 2.0:
        raise ValueError(
            f"{name}={hz} Hz must lie between 0 and the Nyquist frequency {rate_hz / 2} Hz"
        )


def butter_bandpass(low_hz: float, high_hz: float, order: int, rate_hz: float) -> np.ndarray:
    """Butterworth band-pass as SOS; ``order`` is scipy's N (the band-pass has order 2N)."""
    _check_corner("low_hz", low_hz, rate_hz)
    _check_corner("high_hz", high_hz, rate_hz)
    if low_hz >= high_hz:
        raise ValueError(f"band-pass low_hz={low_hz} must be below high_hz={high_hz}")
    return signal.butter(order, [low_hz, high_hz], btype="bandpass", output="sos", fs=rate_hz)


def butter_lowpass(cutoff_hz: float, order: int, rate_hz: float) -> np.ndarray:
    """Butterworth low-pass as SOS (the linear-envelope smoother)."""
    _check_corner("cutoff_hz", cutoff_hz, rate_hz)
    return signal.butter(order, cutoff_hz, btype="lowpass", output="sos", fs=rate_hz)


def bessel_lowpass(cutoff_hz: float, order: int, rate_hz: float, norm: str = "phase") -> np.ndarray:
    """Bessel low-pass as SOS: the flattest group delay of its order, so an envelope's changes
    across its band are all delayed alike and keep their shape. ``norm`` is scipy's: ``"phase"``
    puts the phase mid-point at ``cutoff_hz`` (the magnitude is then -3 dB above it),
    ``"mag"`` the -3 dB point, ``"delay"`` a group delay of ``1 / (2 pi cutoff_hz)`` at DC."""
    _check_corner("cutoff_hz", cutoff_hz, rate_hz)
    if norm not in ("phase", "mag", "delay"):
        raise ValueError(f"bessel norm={norm!r} must be 'phase', 'mag' or 'delay'")
    return signal.bessel(order, cutoff_hz, btype="lowpass", output="sos", fs=rate_hz, norm=norm)


def butter_highpass(cutoff_hz: float, order: int, rate_hz: float) -> np.ndarray:
    """Butterworth high-pass as SOS (causal DC/drift removal)."""
    _check_corner("cutoff_hz", cutoff_hz, rate_hz)
    return signal.butter(order, cutoff_hz, btype="highpass", output="sos", fs=rate_hz)


def notch_frequencies(freq_hz: float, rate_hz: float, max_hz: float | None = None) -> list[float]:
    """The mains fundamental and its harmonics up to ``max_hz`` (fundamental only when None)."""
    _check_corner("freq_hz", freq_hz, rate_hz)
    limit = freq_hz if max_hz is None else min(max_hz, rate_hz / 2.0 - 1e-9)
    n = max(1, int(np.floor(limit / freq_hz + 1e-9)))
    return [freq_hz * k for k in range(1, n + 1) if freq_hz * k < rate_hz / 2.0]


def notch_cascade(
    freq_hz: float, q: float, rate_hz: float, max_hz: float | None = None
) -> np.ndarray:
    """Cascade of ``iirnotch`` sections at ``freq_hz`` and harmonics up to ``max_hz``, as SOS.

    Each section is ``scipy.signal.iirnotch(k*freq_hz, q)`` (bandwidth ``k*freq_hz/q``); its zero
    lies exactly on the unit circle, so a stationary tone at the notch is removed completely once
    the transient has settled (research note emg_processing.md, section 3.2).
    """
    if q <= 0:
        raise ValueError(f"notch quality factor q={q} must be positive")
    sections = []
    for f in notch_frequencies(freq_hz, rate_hz, max_hz):
        b, a = signal.iirnotch(f, q, fs=rate_hz)
        sections.append(signal.tf2sos(b, a))
    return np.concatenate(sections, axis=0)


def fir_bandpass(
    low_hz: float, high_hz: float, numtaps: int, rate_hz: float, window: str = "hamming"
) -> np.ndarray:
    """Windowed-sinc band-pass FIR taps (``scipy.signal.firwin``), linear phase, odd length.

    Note: with 129 taps at 4096 Hz the transition band is ~100 Hz wide, so a 10 Hz lower corner
    is nominal (DC is only attenuated by ~3.5 dB); the MMM chain relies on mean removal for DC.
    """
    if numtaps < 3 or numtaps % 2 == 0:
        raise ValueError(f"numtaps={numtaps} must be odd and >= 3 (type I linear-phase band-pass)")
    _check_corner("low_hz", low_hz, rate_hz)
    _check_corner("high_hz", high_hz, rate_hz)
    return signal.firwin(numtaps, [low_hz, high_hz], pass_zero=False, window=window, fs=rate_hz)


def fir_group_delay_s(numtaps: int, rate_hz: float) -> float:
    """Delay of a symmetric (linear-phase) FIR: (numtaps - 1) / 2 samples, at every frequency."""
    return (numtaps - 1) / 2.0 / rate_hz


def _poly_delay(c: np.ndarray, z: complex) -> float:
    """Re(sum k c_k z^-k / sum c_k z^-k): the group-delay term (samples) of one polynomial."""
    k = np.arange(c.size)
    powers = z ** (-k)
    return float(np.real(np.dot(k * c, powers) / np.dot(c, powers)))


def sos_group_delay_s(sos: np.ndarray, freq_hz: float, rate_hz: float) -> float:
    """Group delay (seconds) of an SOS cascade at ``freq_hz``: the sum over its sections.

    Evaluated in closed form, gd = Re(sum k b_k z^-k / B(z)) - Re(sum k a_k z^-k / A(z)) at
    z = exp(j 2 pi f / rate_hz), which stays exact for low-pass filters at DC where
    ``scipy.signal.group_delay`` declares the point singular (poles near z = 1). Undefined on a
    zero of the filter (a notch frequency, DC for a band-pass); there the limit from just beside
    it is returned.
    """
    total = 0.0
    for section in np.atleast_2d(sos):
        for f in (freq_hz, freq_hz + 1e-6 * rate_hz):  # on a zero: its limit from just beside it
            z = np.exp(2j * np.pi * f / rate_hz)
            with np.errstate(invalid="ignore", divide="ignore"):
                gd = _poly_delay(section[:3], z) - _poly_delay(section[3:], z)
            if np.isfinite(gd):
                break
        total += gd
    return total / rate_hz


def sos_group_delay_curve_s(sos: np.ndarray, freqs_hz: np.ndarray, rate_hz: float) -> np.ndarray:
    """Group delay (seconds) of an SOS cascade at each of ``freqs_hz``, vectorised.

    Same closed form as :func:`sos_group_delay_s`; NaN or +-inf exactly on a zero of the filter
    (a notch frequency), where the delay is undefined and the gain is 0.
    """
    f = np.asarray(freqs_hz, dtype=float)[:, None]
    sections = np.atleast_2d(sos)
    z1 = np.exp(-2j * np.pi * f / rate_hz)  # z^-1, (n_freqs, 1)
    z2 = z1 * z1
    b0, b1, b2, a0, a1, a2 = (sections[:, i][None, :] for i in range(6))
    with np.errstate(invalid="ignore", divide="ignore"):
        gd_b = np.real((b1 * z1 + 2 * b2 * z2) / (b0 + b1 * z1 + b2 * z2))
        gd_a = np.real((a1 * z1 + 2 * a2 * z2) / (a0 + a1 * z1 + a2 * z2))
    return np.sum(gd_b - gd_a, axis=1) / rate_hz


def sos_gain(sos: np.ndarray, freq_hz: float | np.ndarray, rate_hz: float) -> np.ndarray:
    """Magnitude response |H(f)| of an SOS cascade at the given frequencies."""
    _, h = signal.sosfreqz(sos, worN=np.atleast_1d(np.asarray(freq_hz, dtype=float)), fs=rate_hz)
    return np.abs(h)

"""The delay over the envelope's band: definition pieces checked against direct simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from streaming.dsp import SlidingRms, band_pass, design, envelope_lowpass, notch
from streaming.dsp.delay import carrier_delay_s, envelope_delay_s

FS = 4096.0


def xcorr_lag_s(a: np.ndarray, b: np.ndarray, fs: float, max_lag: int) -> float:
    """Lag (s) of ``a`` behind ``b`` at the cross-correlation peak, parabola-refined."""
    a, b = a - a.mean(), b - b.mean()
    n, lags = len(a), np.arange(-max_lag, max_lag + 1)
    cc = np.array(
        [np.dot(a[max_lag + k : n - max_lag + k], b[max_lag : n - max_lag]) for k in lags]
    )
    i = int(np.argmax(cc))
    d = 0.5 * (cc[i - 1] - cc[i + 1]) / (cc[i - 1] - 2 * cc[i] + cc[i + 1])
    return (lags[i] + d) / fs


def flat_spectrum_noise(rng: np.random.Generator, n: int, band_hz: float, fs: float) -> np.ndarray:
    """Gaussian noise with a flat spectrum over 0..band_hz and nothing above (FFT brick wall)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum[np.fft.rfftfreq(n, 1 / fs) > band_hz] = 0.0
    return np.fft.irfft(spectrum, n)


def test_vectorised_group_delay_equals_the_pointwise_closed_form() -> None:
    sos = np.vstack([design.butter_bandpass(20, 450, 2, FS), design.notch_cascade(50, 30, FS, 450)])
    f = np.array([0.5, 10.0, 30.0, 49.0, 75.0, 123.4, 301.0, 449.0])
    curve = design.sos_group_delay_curve_s(sos, f, FS)
    np.testing.assert_allclose(curve, [design.sos_group_delay_s(sos, x, FS) for x in f], rtol=1e-9)


def test_envelope_delay_of_the_6_hz_smoother_is_the_simulated_cross_correlation_lag() -> None:
    # a 5 Hz flat-spectrum envelope through the causal and the zero-phase smoother
    stage = envelope_lowpass(6, 2, 1, FS)
    rng = np.random.default_rng(0)
    fs_env = 1024.0  # the smoother's response below 5 Hz barely depends on fs
    low = envelope_lowpass(6, 2, 1, fs_env)
    lags = []
    for _ in range(4):
        e = flat_spectrum_noise(rng, int(120 * fs_env), 5.0, fs_env)
        causal = signal.sosfilt(low.sos, e)
        zero_phase = signal.sosfiltfilt(low.sos, e)
        lags.append(xcorr_lag_s(causal, zero_phase, fs_env, 200))
    predicted = envelope_delay_s([stage])
    assert predicted * 1e3 == pytest.approx(np.mean(lags) * 1e3, abs=1.0)
    assert stage.group_delay_s + 0.002 < predicted < 0.045  # above the 37.5 ms DC delay


def test_linear_phase_envelope_stage_delays_every_frequency_alike() -> None:
    rms = SlidingRms(2048, 1, FS)
    assert envelope_delay_s([rms]) == pytest.approx(1023.5 / FS, abs=2e-5)


def test_carrier_delay_is_the_energy_weighted_group_delay_and_the_notch_adds_to_it() -> None:
    bp = band_pass(20, 450, 2, 1, FS)
    mains = notch(50, 30, 1, FS, max_hz=450)
    f = np.arange(20.0, 450.0, 0.05)
    power = np.abs(bp.response(f)) ** 2
    expected = np.sum(bp.group_delay_curve_s(f) * power) / np.sum(power)
    assert carrier_delay_s([bp], FS) == pytest.approx(expected, rel=1e-6)
    assert 0.5e-3 < carrier_delay_s([bp], FS) < 2e-3
    # each Q=30 notch holds back the energy beside it: ~6 ms over the band in total
    assert carrier_delay_s([bp, mains], FS) - carrier_delay_s([bp], FS) > 4e-3

"""Offline reference: the paper's method on a whole recording, for comparison with online output.

EIFER (Buechner et al., CVPR 2025) processes each recording at once: zero-phase filtering, then
``scipy.signal.resample`` (Fourier) to the 30 fps frame times. Here each stage of a feature
definition gets its offline counterpart: Butterworth/notch via ``sosfiltfilt`` (zero-phase,
magnitude squared), FIR linear-phase filtering with its delay removed (centred convolution),
centred RMS window, and (for the MMM definition) per-channel mean removal instead of the causal
high-pass, as the MMM README does. NaN become 0 after mean removal (README step 2).
"""

from __future__ import annotations

import numpy as np
from scipy import signal
from scipy.ndimage import uniform_filter1d

from streaming import features as ft
from streaming.dsp import design

__all__ = [
    "frame_times",
    "interp_at",
    "offline_envelope",
    "offline_frames",
    "offline_stage",
    "resample_to_frames",
]


def offline_stage(spec: ft.StageSpec, x: np.ndarray, fs: float, rate_hz: float) -> np.ndarray:
    """Zero-phase (non-causal) counterpart of one stage, applied to a whole (n, ch) record."""
    if isinstance(spec, ft.BandpassStage):
        return signal.sosfiltfilt(
            design.butter_bandpass(spec.low_hz, spec.high_hz, spec.order, fs), x, axis=0
        )
    if isinstance(spec, ft.HighpassStage):
        # The causal high-pass stands in for the per-record mean removal of the MMM README.
        return x - x.mean(axis=0, keepdims=True)
    if isinstance(spec, ft.NotchStage):
        return signal.sosfiltfilt(
            design.notch_cascade(spec.freq_hz, spec.q, fs, spec.max_hz), x, axis=0
        )
    if isinstance(spec, ft.RectifyStage):
        return np.abs(x)
    if isinstance(spec, ft.LowpassStage):
        return signal.sosfiltfilt(design.butter_lowpass(spec.cutoff_hz, spec.order, fs), x, axis=0)
    if isinstance(spec, ft.FirBandpassStage):
        numtaps = ft._scaled_samples(spec.numtaps, fs, rate_hz, odd=True)
        taps = design.fir_bandpass(spec.low_hz, spec.high_hz, numtaps, fs, spec.window)
        return signal.convolve(x, taps[:, None], mode="same")
    if isinstance(spec, ft.RmsStage):
        window = ft._scaled_samples(spec.window_samples, fs, rate_hz, odd=False)
        mean_sq = uniform_filter1d(x * x, size=window, axis=0, mode="constant")
        return np.sqrt(np.maximum(mean_sq, 0.0))
    raise TypeError(f"unknown stage spec {spec!r}")  # pragma: no cover - union is closed


def offline_envelope(
    x: np.ndarray, fs: float, definition: ft.FeatureDefinition | str
) -> np.ndarray:
    """Zero-phase envelope of a whole recording ``x`` (n_samples, n_channels) at ``fs``."""
    defn = ft.get_feature(definition) if isinstance(definition, str) else definition
    y = np.asarray(x, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"offline_envelope needs (n_samples, n_channels), got shape {y.shape}")
    y = y - np.nanmean(y, axis=0, keepdims=True)  # README step 2: subtract mean, NaN -> 0
    y = np.where(np.isfinite(y), y, 0.0)
    for spec in defn.stages:
        y = offline_stage(spec, y, fs, defn.rate_hz)
    return y


def frame_times(n_samples: int, fs: float, n_frames: int) -> np.ndarray:
    """Times (s from the first sample) of ``resample``'s output samples: k * n_samples/n_frames/fs."""
    return np.arange(n_frames) * (n_samples / n_frames) / fs


def resample_to_frames(envelope: np.ndarray, n_frames: int) -> np.ndarray:
    """The paper's Fourier resampling of a whole envelope to ``n_frames`` samples."""
    return signal.resample(envelope, n_frames, axis=0)


def offline_frames(
    x: np.ndarray, fs: float, definition: ft.FeatureDefinition | str, frame_rate_hz: float = 30.0
) -> tuple[np.ndarray, np.ndarray]:
    """Paper-style frames: zero-phase envelope, Fourier-resampled to ``frame_rate_hz``.

    Returns ``(t_frames_s, frames (n_frames, n_channels))``, times from the first sample.
    """
    env = offline_envelope(x, fs, definition)
    n_frames = round(env.shape[0] * frame_rate_hz / fs)
    return frame_times(env.shape[0], fs, n_frames), resample_to_frames(env, n_frames)


def interp_at(t_query: np.ndarray, t_samples: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of each channel of ``values`` (n, ch) at ``t_query`` (online reading
    of the envelope at frame times)."""
    values = np.asarray(values)
    return np.stack(
        [np.interp(t_query, t_samples, values[:, c]) for c in range(values.shape[1])], axis=1
    )

"""The EMG feature at each video frame's time, by one of two named methods.

- ``offline``: the paper's method (EIFER supplement; MMM README): the zero-phase chain over the
  whole recording (:func:`streaming.dsp.offline.offline_envelope`), then Fourier resampling
  (``scipy.signal.resample``) to a grid at the video rate, read at each frame's time. Zero-phase:
  no delay to compensate.
- ``online``: the causal chain exactly as the pipeline runs it (per chunk, carried state,
  :func:`streaming.pipeline.features.build_chain`), read at ``t_frame + D`` with ``D`` the chain's
  group delay (DESIGN.md "Timing and synchronisation": the pipeline's default reading), by linear
  interpolation. Training on it matches what the live pipeline feeds the MLPs.

Samples before the chain has settled (``max(warmup_s, 2 D)`` after the first sample, as
:func:`streaming.pipeline.profile.compute_profile` skips) and frames outside the recording get NaN.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from streaming.dsp.offline import offline_envelope, resample_to_frames
from streaming.pipeline.features import FeatureDefinition, build_chain

__all__ = ["METHODS", "emg_at_frames", "sample_times"]

METHODS = ("online", "offline")
CHUNK_SAMPLES = 4096  # chunk of the online chain (any size gives the same output)


def sample_times(stamps: np.ndarray, index: np.ndarray | None = None) -> tuple[float, float]:
    """``(t0, rate_hz)`` of a regular stream from its recorded stamps by least squares over the
    sample index (``index``: e.g. the unwrapped counter channel, so gaps keep their place): the
    jitter of per-chunk stamping averages out, as the pipeline's dejitter does."""
    k = np.arange(len(stamps), dtype=np.float64) if index is None else index.astype(np.float64)
    slope, intercept = np.polyfit(k - k[0], np.asarray(stamps, np.float64), 1)
    return float(intercept), float(1.0 / slope)


def _interp(t_query: np.ndarray, t_samples: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.empty((len(t_query), values.shape[1]), dtype=np.float64)
    for c in range(values.shape[1]):
        out[:, c] = np.interp(t_query, t_samples, values[:, c], left=np.nan, right=np.nan)
    return out


def emg_at_frames(
    emg_uv: np.ndarray,
    t_samples: np.ndarray,
    rate_hz: float,
    t_frames: np.ndarray,
    feature: FeatureDefinition,
    method: Literal["online", "offline"],
    *,
    offline_rate_hz: float = 30.0,
    warmup_s: float = 1.0,
) -> tuple[np.ndarray, float]:
    """Envelope (µV, ``(n_frames, n_channels)``) at ``t_frames``, and the delay compensated (s).

    ``emg_uv``: ``(n_samples, n_channels)`` raw EMG, ``t_samples`` its (dejittered) times.
    """
    x = np.asarray(emg_uv, dtype=np.float64)
    t_frames = np.asarray(t_frames, dtype=np.float64)
    if method == "online":
        chain = build_chain(feature, x.shape[1], rate_hz)
        clean = np.where(np.isfinite(x), x, 0.0)  # a dropout reads as 0 in the live chain too
        env = np.concatenate(
            [
                chain.process(clean[i : i + CHUNK_SAMPLES])
                for i in range(0, len(clean), CHUNK_SAMPLES)
            ]
        )
        delay_s = float(chain.group_delay_s)
        values = _interp(t_frames + delay_s, t_samples, env)
        settled = t_samples[0] + max(warmup_s, 2.0 * delay_s)
        values[t_frames + delay_s < settled] = np.nan
        return values, delay_s
    if method == "offline":
        env = offline_envelope(x, build_chain(feature, x.shape[1], rate_hz))
        n_grid = max(2, round(len(env) * offline_rate_hz / rate_hz))
        grid = resample_to_frames(env, n_grid)
        # resample's k-th output lies at k * (n / n_grid) samples after the first input sample
        t_grid = t_samples[0] + np.arange(n_grid) * (len(env) / n_grid) / rate_hz
        values = _interp(t_frames, t_grid, grid)
        return np.maximum(values, 0.0), 0.0  # FFT resampling rings slightly negative (README)
    raise ValueError(f"unknown EMG method {method!r}; use one of {METHODS}")

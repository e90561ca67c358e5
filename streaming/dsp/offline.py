"""Offline reference: the paper's method on a whole recording, for comparison with online output.

EIFER (Buechner et al., CVPR 2025) processes each recording at once: zero-phase filtering, then
``scipy.signal.resample`` (Fourier) to the 30 fps frame times. Here each stage of an online chain
(:class:`streaming.dsp.stages.Chain`, built from a feature definition by
``streaming.pipeline.features.build_chain``) gets its offline counterpart, the same filter applied
without delay: IIR sections (band-pass, notch, high-pass, envelope low-pass) via ``sosfiltfilt``
(zero-phase, magnitude squared), FIR taps by centred convolution, the sliding RMS over a centred
window. Every channel's mean is subtracted and NaN set to 0 first (MMM dataset README, step 2);
the high-pass then removes the drift the mean leaves (the MMM definition's 1 Hz high-pass runs
zero-phase here, as its causal counterpart runs online).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import signal
from scipy.ndimage import uniform_filter1d

from streaming.dsp.stages import (
    BipolarDerivation,
    Chain,
    FirFilter,
    Rectify,
    SlidingRms,
    SosFilter,
    Stage,
)

__all__ = [
    "frame_times",
    "interp_at",
    "offline_envelope",
    "offline_frames",
    "offline_stage",
    "resample_to_frames",
]


def offline_stage(stage: Stage, x: np.ndarray) -> np.ndarray:
    """Zero-phase (non-causal) counterpart of one online stage, on a whole (n, ch) record."""
    if isinstance(stage, Chain):
        return _apply(stage.stages, x)
    if isinstance(stage, SosFilter):
        return signal.sosfiltfilt(stage.sos, x, axis=0)
    if isinstance(stage, FirFilter):
        return signal.convolve(x, stage.taps[:, None], mode="same")
    if isinstance(stage, SlidingRms):
        mean_sq = uniform_filter1d(x * x, size=stage.window, axis=0, mode="constant")
        return np.sqrt(np.maximum(mean_sq, 0.0))
    if isinstance(stage, Rectify):
        return np.abs(x)
    if isinstance(stage, BipolarDerivation):
        return x[:, stage.plus] - x[:, stage.minus]
    raise TypeError(f"no offline counterpart for stage {stage.name!r} ({type(stage).__name__})")


def _apply(stages: Iterable[Stage], x: np.ndarray) -> np.ndarray:
    for stage in stages:
        x = offline_stage(stage, x)
    return x


def offline_envelope(x: np.ndarray, chain: Chain) -> np.ndarray:
    """Zero-phase envelope of a whole recording ``x`` (n_samples, n_channels) through the
    offline counterpart of ``chain``."""
    y = np.asarray(x, dtype=np.float64)
    if y.ndim != 2 or y.shape[1] != chain.n_channels:
        raise ValueError(
            f"offline_envelope needs (n_samples, {chain.n_channels}) for this chain, "
            f"got shape {y.shape}"
        )
    y = y - np.nanmean(y, axis=0, keepdims=True)  # README step 2: subtract mean, NaN -> 0
    y = np.where(np.isfinite(y), y, 0.0)
    return _apply(chain.stages, y)


def frame_times(n_samples: int, rate_hz: float, n_frames: int) -> np.ndarray:
    """Times (s from the first sample) of ``resample``'s output samples: k * n_samples/n_frames/rate_hz."""
    return np.arange(n_frames) * (n_samples / n_frames) / rate_hz


def resample_to_frames(envelope: np.ndarray, n_frames: int) -> np.ndarray:
    """The paper's Fourier resampling of a whole envelope to ``n_frames`` samples."""
    return signal.resample(envelope, n_frames, axis=0)


def offline_frames(
    x: np.ndarray, chain: Chain, frame_rate_hz: float = 30.0
) -> tuple[np.ndarray, np.ndarray]:
    """Paper-style frames: zero-phase envelope, Fourier-resampled to ``frame_rate_hz``.

    Returns ``(t_frames_s, frames (n_frames, n_channels))``, times from the first sample, at the
    chain's sampling rate.
    """
    if chain.rate_hz is None:
        raise ValueError("offline_frames: the chain has no filter, so no sampling rate")
    env = offline_envelope(x, chain)
    n_frames = round(env.shape[0] * frame_rate_hz / chain.rate_hz)
    return frame_times(env.shape[0], chain.rate_hz, n_frames), resample_to_frames(env, n_frames)


def interp_at(t_query: np.ndarray, t_samples: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of each channel of ``values`` (n, ch) at ``t_query`` (online reading
    of the envelope at frame times)."""
    values = np.asarray(values)
    return np.stack(
        [np.interp(t_query, t_samples, values[:, c]) for c in range(values.shape[1])], axis=1
    )

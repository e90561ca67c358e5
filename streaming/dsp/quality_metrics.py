"""Pure, vectorised pieces of the EMG quality monitor (:mod:`streaming.dsp.quality`).

Functions of arrays only (no monitor state): the electrode neighbourhood and movement targets the
monitor is set up with, the hysteresis that turns a metric into levels, the NaN hold that keeps
filter states clean, and the per-channel comparisons (railing, noise against the neighbours,
bridging). Arrays are ``(samples, channels)`` or per channel; neighbours are an ``(n, k)`` index,
-1 padded.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from streaming.dsp.quality_config import Limit, QualityConfig

__all__ = [
    "DB_FLOOR",
    "HoldLast",
    "bridging",
    "channel_targets",
    "levels",
    "mains_levels",
    "mains_line_bins",
    "nearest_neighbours",
    "neighbour_index",
    "neighbour_median",
    "noise_db",
    "railed_count",
    "rest_baseline",
]

DB_FLOOR = -60.0  # dB values of a zero power


def nearest_neighbours(
    labels: Sequence[str], positions: np.ndarray, k: int = 4
) -> dict[str, list[str]]:
    """The ``k`` channels nearest each channel on the face (``ElectrodeScheme.positions``:
    ``(n, 2)``, configs/electrodes), nearest first."""
    xy = np.asarray(positions, dtype=np.float64)
    if xy.shape != (len(labels), 2):
        raise ValueError(f"positions shape {xy.shape} != ({len(labels)}, 2)")
    d = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=-1)
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")[:, : min(k, len(labels) - 1)]
    return {lab: [labels[j] for j in row] for lab, row in zip(labels, order, strict=True)}


def channel_targets(
    movement_levels: Mapping[str, Mapping[str, float]], muscles: Sequence[str]
) -> dict[str, np.ndarray]:
    """Per movement, the level (0..1) it drives each channel's muscle at: ``movement_levels``
    is ``{movement: {muscle: level}}`` (configs/movements.toml, e.g. via
    ``streaming.pipeline.biofeedback.load_movement_levels``), ``muscles`` the muscle under each
    channel (``ElectrodeScheme.muscles``)."""
    return {
        name: np.array([float(levels.get(m, 0.0)) for m in muscles], dtype=np.float64)
        for name, levels in movement_levels.items()
    }


def neighbour_index(labels: Sequence[str], neighbours: Mapping[str, Sequence[str]]) -> np.ndarray:
    """``(n, k)`` indices of each channel's neighbours, -1 padded; unknown labels are refused."""
    where = {lab: i for i, lab in enumerate(labels)}
    unknown = sorted({x for k, v in neighbours.items() for x in (k, *v)} - where.keys())
    if unknown:
        raise ValueError(f"neighbours name unknown channel(s) {unknown}; have {tuple(labels)}")
    k = max((len(v) for v in neighbours.values()), default=0)
    index = np.full((len(labels), k), -1, dtype=np.intp)
    for lab, nbrs in neighbours.items():
        row = [where[x] for x in nbrs if x != lab]
        index[where[lab], : len(row)] = row
    return index


def levels(metric: np.ndarray, limit: Limit, current: np.ndarray) -> np.ndarray:
    """Level 0/1/2 per channel from ``metric`` with hysteresis: a level already held (``current``)
    stays while the metric has not come back past its threshold by ``limit.release``. NaN metrics
    keep nothing."""
    out = np.zeros(metric.shape, dtype=np.int8)
    sign = -1.0 if limit.below else 1.0
    m = sign * metric
    with np.errstate(invalid="ignore"):
        for level, threshold in ((1, limit.check), (2, limit.bad)):
            if threshold is None:
                continue
            t = sign * threshold
            on = (m > t) | ((current >= level) & (m > t - limit.release))
            out[on] = level
    return out


class HoldLast:
    """Last finite value per channel: fills NaN samples so no filter state is poisoned."""

    def __init__(self, n_channels: int) -> None:
        self.last = np.full(n_channels, np.nan)

    def fill(self, x: np.ndarray, finite: np.ndarray) -> np.ndarray:
        if finite.all():
            self.last = x[-1].copy()
            return x
        n = x.shape[0]
        idx = np.where(finite, np.arange(n)[:, None], -1)
        np.maximum.accumulate(idx, axis=0, out=idx)
        first = np.where(finite.any(axis=0), x[np.argmax(finite, axis=0), np.arange(x.shape[1])], 0)
        start = np.where(np.isfinite(self.last), self.last, first)
        cols = np.broadcast_to(np.arange(x.shape[1]), x.shape)
        y = np.where(idx >= 0, x[np.maximum(idx, 0), cols], start[None, :])
        self.last = y[-1].copy()
        return y


def railed_count(
    raw: np.ndarray,
    finite: np.ndarray,
    same: np.ndarray,
    range_uv: float | None,
    rail_fraction: float,
) -> np.ndarray:
    """Per channel, samples at the declared range (``rail_fraction`` of ``range_uv``); without a
    range, repeated samples (``same``: equal to their predecessor) at the block's extremes (a
    clipped input sits at one value; an unclipped one reaches its extremes once)."""
    if range_uv is not None:
        at = (np.abs(raw) >= rail_fraction * range_uv) & finite
        return at.sum(axis=0).astype(float)
    hi = np.max(np.where(finite, raw, -np.inf), axis=0)
    lo = np.min(np.where(finite, raw, np.inf), axis=0)
    at_ext = (raw[1:] == hi) | (raw[1:] == lo)
    flat = hi == lo
    return np.where(flat, 0.0, (same & at_ext).sum(axis=0)).astype(float)


def neighbour_median(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Median of ``values`` over each channel's neighbours (NaN where it has none)."""
    vals = np.where(index >= 0, values[np.maximum(index, 0)], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a channel without neighbours
        return np.nanmedian(vals, axis=1)


def noise_db(noise: np.ndarray, band: np.ndarray, index: np.ndarray) -> np.ndarray:
    """How far each channel's noise-band power stands above its neighbours' (dB), counted only as
    far as its spectrum is also flatter than theirs: broadband noise raises both, a contraction
    under one electrode raises the power but keeps an EMG-shaped spectrum, and a resting channel
    beside contracting ones is flatter but not louder. NaN without neighbours."""
    if index.shape[1] == 0:
        return np.full(noise.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        shape = noise / band
        power_db = 10 * np.log10(noise / neighbour_median(noise, index))
        shape_db = 10 * np.log10(shape / neighbour_median(shape, index))
        db = np.minimum(power_db, shape_db)
    db = np.where(np.isnan(power_db) | np.isnan(shape_db), np.nan, db)
    return np.clip(db, DB_FLOOR, -DB_FLOOR)


def bridging(gram: np.ndarray, index: np.ndarray, level_db: float) -> tuple[np.ndarray, np.ndarray]:
    """Per channel the largest high-frequency correlation with a neighbour whose power lies
    within ``level_db`` of its own (crosstalk is correlated but weaker), and that neighbour's
    index (-1: none). ``gram``: the channel x channel Gram matrix of the high-passed signal."""
    n = gram.shape[0]
    if index.shape[1] == 0:
        return np.zeros(n), np.full(n, -1)
    power = np.diag(gram).copy()
    rows = np.arange(n)[:, None]
    j = np.maximum(index, 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        corr = gram[rows, j] / np.sqrt(power[:, None] * power[j])
        level = np.abs(10 * np.log10(power[:, None] / power[j]))
    ok = (index >= 0) & np.isfinite(corr) & (level <= level_db)
    corr = np.where(ok, corr, 0.0)
    best = np.argmax(corr, axis=1)
    value = corr[np.arange(n), best]
    partner = np.where(value > 0, index[np.arange(n), best], -1)
    return value, partner


def mains_line_bins(
    freqs: np.ndarray, f0: float, top_hz: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For mains ``f0`` and its harmonics up to ``top_hz`` on the FFT bins ``freqs``: the line
    bins (h, 3: the centre and one either side), the floor bins beside them (h, 6) and the mask
    of all line bins."""
    df = freqs[1]
    harmonics = f0 * np.arange(1, int(top_hz // f0) + 1)
    centre = np.rint(harmonics / df).astype(int)
    line = centre[:, None] + np.arange(-1, 2)[None, :]
    floor = centre[:, None] + np.array([-5, -4, -3, 3, 4, 5])[None, :]
    floor = np.clip(floor, 1, freqs.size - 1)
    mask = np.zeros(freqs.size, dtype=bool)
    mask[line.ravel()] = True
    return line, floor, mask


def rest_baseline(rest_power: np.ndarray, percentile: float) -> np.ndarray:
    """Per channel the ``percentile`` of the rest blocks' power (``(blocks, n)``, NaN where a
    block was no rest); NaN for a channel without any rest block."""
    have = np.isfinite(rest_power).any(axis=0)
    out = np.full(rest_power.shape[1], np.nan)
    if have.any():
        out[have] = np.nanpercentile(rest_power[:, have], percentile, axis=0)
    return out


def mains_levels(
    m: Mapping[str, np.ndarray],
    line_sd: np.ndarray,
    line_ref: np.ndarray,
    cfg: QualityConfig,
    current: np.ndarray,
) -> np.ndarray:
    """Mains level per channel from the metrics ``mains_uv`` / ``mains_db``: raised by lines both
    above the threshold and significant against the EMG floor around them (``mains_min_z``
    standard deviations ``line_sd`` of the line power's estimate); dropped only where a hum at the
    check level would be significant against ``line_ref`` (the EMG-band power it is judged
    against), so a contraction's random power in the line bins neither raises nor clears it."""
    line = m["mains_uv"] ** 2
    significant = (line >= cfg.mains_min_z * line_sd) & (m["mains_uv"] >= cfg.mains_min_uv)
    level = levels(np.where(significant, m["mains_db"], DB_FLOOR), cfg.mains, current)
    check = cfg.mains.check if cfg.mains.check is not None else cfg.mains.bad
    with np.errstate(invalid="ignore"):
        judgeable = cfg.mains_min_z * line_sd < line_ref * 10 ** ((check or 0.0) / 10)
    return np.where(~judgeable & (level < current), current, level)

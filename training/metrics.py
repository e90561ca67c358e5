"""Pearson r and RMSE per column, grouped by fold, held-out participant and movement."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DRIVEN_STD", "driven_columns", "evaluate", "pearson", "rmse"]

DRIVEN_STD = 1e-3  # a truth column varying less than this is "not driven" (r undefined)


def pearson(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Pearson r of each column (NaN where either side is constant or fewer than 3 rows)."""
    p = np.asarray(pred, np.float64)
    t = np.asarray(true, np.float64)
    if len(p) < 3:
        return np.full(p.shape[1], np.nan)
    p = p - p.mean(axis=0)
    t = t - t.mean(axis=0)
    denom = np.sqrt((p * p).sum(axis=0) * (t * t).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (p * t).sum(axis=0) / denom
    return np.where(denom > 1e-12, r, np.nan)


def rmse(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    d = np.asarray(pred, np.float64) - np.asarray(true, np.float64)
    return np.sqrt(np.mean(d * d, axis=0)) if len(d) else np.full(d.shape[1], np.nan)


def driven_columns(truth: np.ndarray) -> np.ndarray:
    """Columns of the truth that vary (the expression components the muscles drive)."""
    return np.nanstd(np.asarray(truth, np.float64), axis=0) > DRIVEN_STD


def _summary(pred: np.ndarray, true: np.ndarray, columns: np.ndarray) -> dict[str, Any]:
    r, e = pearson(pred, true), rmse(pred, true)
    r_used = r[columns]
    return {
        "n_frames": len(pred),
        "r": [None if np.isnan(v) else float(v) for v in r],
        "rmse": [float(v) for v in e],
        "mean_r": float(np.nanmean(r_used)) if np.isfinite(r_used).any() else None,
        # columns left out of mean_r: constant prediction or constant truth in this group
        "n_undefined": int(np.count_nonzero(~np.isfinite(r_used))),
        "mean_rmse": float(np.mean(e[columns])) if columns.any() else None,
    }


def evaluate(
    predictions: dict[str, np.ndarray], channels: list[str], driven: np.ndarray
) -> dict[str, Any]:
    """Metrics of held-out predictions (arrays ``fold``, ``participant``, ``movement``,
    ``emg_true``, ``emg_pred``, ``phi_true``, ``phi_pred``): overall, per fold, per participant
    and per movement, for Exp2EMG (r over all channels) and EMG2Exp (r over ``driven``)."""
    all_channels = np.ones(len(channels), bool)
    groups: dict[str, dict[str, np.ndarray]] = {
        "all": {"all": np.ones(len(predictions["fold"]), bool)}
    }
    for key in ("fold", "participant", "movement"):
        values = predictions[key]
        groups[key] = {str(v): values == v for v in sorted(set(values.tolist()))}
    result: dict[str, Any] = {"channels": channels, "driven_phi": np.flatnonzero(driven).tolist()}
    for key, members in groups.items():
        result[key] = {
            name: {
                "exp2emg": _summary(
                    predictions["emg_pred"][m], predictions["emg_true"][m], all_channels
                ),
                "emg2exp": _summary(predictions["phi_pred"][m], predictions["phi_true"][m], driven),
            }
            for name, m in members.items()
        }
    truth = predictions.get("emg_truth")
    if truth is not None and truth.size and np.isfinite(truth).any():
        # against the simulator's true activation under each channel (scale-free r): the
        # envelope the EMG would have without noise, cross-talk and the feature's smoothing
        has = np.isfinite(truth).all(axis=0)
        for key, members in groups.items():
            for name, m in members.items():
                result[key][name]["exp2emg_vs_truth"] = _summary(
                    predictions["emg_pred"][m][:, has],
                    truth[m][:, has],
                    np.ones(int(has.sum()), bool),
                )
    folds = result["fold"].values()
    result["headline"] = {
        "exp2emg_mean_r_held_out": result["all"]["all"]["exp2emg"]["mean_r"],
        "emg2exp_mean_r_held_out": result["all"]["all"]["emg2exp"]["mean_r"],
        "exp2emg_mean_r_vs_true_activation": result["all"]["all"]
        .get("exp2emg_vs_truth", {})
        .get("mean_r"),
        "exp2emg_mean_r_per_fold": [f["exp2emg"]["mean_r"] for f in folds],
        "emg2exp_mean_r_per_fold": [f["emg2exp"]["mean_r"] for f in folds],
    }
    return result

"""Biofeedback measures: how close muscle activity is to a target pattern, and left/right symmetry.

Pure numpy functions plus one small stateful class (:class:`FeedbackScorer`) with
``process(activity)``, in the style of scipy.signal.

Score (0..100). Two definitions, chosen per target:

- ``"cosine"`` (default): ``100 * cos(x, target)`` of the non-negative activity vectors. It
  compares the *pattern* (which muscles work, in which proportion) and ignores overall intensity,
  which is what a participant can learn to shape first; it also works on microvolt envelopes when
  no normalisation profile is loaded, because it is scale-invariant. Both vectors being at the
  noise floor counts as a match (rest on rest); one of them at the floor counts as no match.
- ``"distance"``: ``100 * (1 - |x - t|^2 / (|x|^2 + |t|^2 + floor^2))``, a normalised squared
  Euclidean distance that also rewards the right intensity (needs normalised envelopes, 1 =
  maximal contraction). For non-negative vectors it equals ``2 x.t / (|x|^2 + |t|^2)``
  (the vector form of the Dice/Sorensen coefficient): 100 at the target, 0 for disjoint muscle
  sets, 80 at half or double the target intensity; ``floor`` keeps "rest on rest" at ~100.

Symmetry index per left/right muscle pair: ``SI = (L - R) / (L + R)`` in -1..1 (0 = symmetric,
+1 = only the left side active), the normalised difference of Robinson, Herzog & Nigg (1987,
J Manipulative Physiol Ther 10:172-176), used for one-sided weakness such as facial palsy
(EIFER.md: a palsy biofeedback tool must show left and right separately). Undefined (NaN) where
both sides are at the noise floor.

Targets: a movement of ``configs/movements.toml`` (muscle levels 0..1, both sides alike) mapped
onto an electrode scheme's channels, or a recorded reference vector (one value per channel).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from streaming.config import ConfigError, load_toml

__all__ = [
    "MAX_ABS",
    "METRICS",
    "FeedbackScorer",
    "Metric",
    "cosine_score",
    "distance_score",
    "load_movement_levels",
    "load_reference",
    "movement_target",
    "pair_indices",
    "save_reference",
    "similarity_score",
    "symmetry_index",
]

Metric = Literal["cosine", "distance"]
METRICS: tuple[str, ...] = ("cosine", "distance")
# Largest activity value taken as EMG: a volt in microvolts, 10^6 times a maximal contraction when
# normalised. Beyond it a value is a fault, skipped like NaN (and the average cannot overflow).
MAX_ABS = 1e6


def _vector(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D vector, got shape {arr.shape}")
    return arr


def _check_pair(x: np.ndarray, target: np.ndarray) -> None:
    if x.shape != target.shape:
        raise ValueError(
            f"activity has {x.shape[0]} channels but the target has {target.shape[0]}; "
            "they must use the same electrode scheme"
        )


def _finite_pair(x: Any, target: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The channels finite on both sides, negatives clipped to 0; None if there are none."""
    x, t = _vector(x, "activity"), _vector(target, "target")
    _check_pair(x, t)
    ok = np.isfinite(x) & np.isfinite(t)
    if not ok.any():
        return None
    return np.clip(x[ok], 0.0, None), np.clip(t[ok], 0.0, None)


def cosine_score(x: Any, target: Any, floor: float = 0.05) -> float:
    """``100 * cosine similarity`` of non-negative vectors (negatives clipped to 0).

    ``floor`` is the Euclidean norm below which a vector counts as "at rest": rest vs rest
    gives 100, rest vs activity gives 0. NaNs in ``x`` (missing channels) are ignored on both
    sides. Returns NaN only when every channel is missing.
    """
    pair = _finite_pair(x, target)
    if pair is None:
        return float("nan")
    x, t = pair
    nx, nt = float(np.linalg.norm(x)), float(np.linalg.norm(t))
    if nx < floor or nt < floor:
        return 100.0 if (nx < floor and nt < floor) else 0.0
    return float(np.clip(100.0 * np.dot(x, t) / (nx * nt), 0.0, 100.0))


def distance_score(x: Any, target: Any, floor: float = 0.05) -> float:
    """``100 * (1 - |x - t|^2 / (|x|^2 + |t|^2 + floor^2))``: 100 at the target, 0 far from it."""
    pair = _finite_pair(x, target)
    if pair is None:
        return float("nan")
    x, t = pair
    d2 = float(np.sum((x - t) ** 2))
    return float(np.clip(100.0 * (1.0 - d2 / (np.sum(x**2) + np.sum(t**2) + floor**2)), 0, 100))


def similarity_score(x: Any, target: Any, metric: str = "cosine", floor: float = 0.05) -> float:
    """Score by name (``"cosine"`` or ``"distance"``); see the module docstring for why."""
    if metric == "cosine":
        return cosine_score(x, target, floor)
    if metric == "distance":
        return distance_score(x, target, floor)
    raise ValueError(f"unknown score metric {metric!r}; choose one of {METRICS}")


def symmetry_index(left: Any, right: Any, floor: float = 1e-3) -> np.ndarray:
    """``(L - R) / (L + R)`` per pair (Robinson et al. 1987), NaN where ``L + R < floor``."""
    left = np.clip(np.asarray(left, dtype=np.float64), 0.0, None)
    right = np.clip(np.asarray(right, dtype=np.float64), 0.0, None)
    if left.shape != right.shape:
        raise ValueError(f"left {left.shape} and right {right.shape} differ in shape")
    total = left + right
    with np.errstate(invalid="ignore", divide="ignore"):
        si = (left - right) / total
    return np.where(total >= floor, si, np.nan)


def pair_indices(
    labels: Sequence[str], pairs: Sequence[tuple[str, str]]
) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays ``(left_idx, right_idx)`` of ``pairs`` ((left, right) labels) in ``labels``."""
    where = {label: i for i, label in enumerate(labels)}
    missing = sorted({lab for pair in pairs for lab in pair} - where.keys())
    if missing:
        raise ValueError(f"pair channels {missing} are not among the channels {list(labels)}")
    left = np.array([where[a] for a, _ in pairs], dtype=np.intp)
    right = np.array([where[b] for _, b in pairs], dtype=np.intp)
    return left, right


def load_movement_levels(path: str | Path) -> dict[str, dict[str, float]]:
    """``{movement: {muscle: level}}`` from a movements TOML (``configs/movements.toml``)."""
    data = load_toml(path)
    movements = data.get("movements")
    if not isinstance(movements, dict) or not movements:
        raise ConfigError(f"{path}: no [movements.<name>] tables found")
    result: dict[str, dict[str, float]] = {}
    for name, table in movements.items():
        levels = table.get("levels", {}) if isinstance(table, dict) else None
        if not isinstance(levels, dict):
            raise ConfigError(f"{path}: movements.{name}.levels must be a table of muscle = level")
        try:
            result[name] = {str(m): float(v) for m, v in levels.items()}
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: movements.{name}.levels has a non-numeric level") from None
    return result


def movement_target(levels: Mapping[str, float], muscles: Sequence[str]) -> np.ndarray:
    """Per-channel target from muscle levels: every channel over a muscle gets that muscle's level.

    ``muscles`` is the muscle under each channel (``ElectrodeScheme.muscles``); channels over an
    unlisted muscle get 0 (the movement does not use it).
    """
    return np.array([float(levels.get(m, 0.0)) for m in muscles], dtype=np.float64)


def save_reference(path: str | Path, channels: Sequence[str], values: Any, note: str = "") -> Path:
    """Write a recorded reference vector as TOML (``channels``, ``values``, ``note``)."""
    values = _vector(values, "values")
    if len(channels) != values.shape[0]:
        raise ValueError(f"{len(channels)} channel labels for {values.shape[0]} values")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    quoted = ", ".join(f'"{c}"' for c in channels)
    numbers = ", ".join(f"{v:.6g}" for v in values)
    note = note.replace("\\", "\\\\").replace('"', '\\"')
    path.write_text(f'note = "{note}"\nchannels = [{quoted}]\nvalues = [{numbers}]\n')
    return path


def load_reference(path: str | Path, labels: Sequence[str]) -> np.ndarray:
    """A recorded reference vector (TOML ``channels`` + ``values``) in the order of ``labels``."""
    data = load_toml(path)
    channels, values = data.get("channels"), data.get("values")
    if (
        not isinstance(channels, list)
        or not isinstance(values, list)
        or len(channels) != len(values)
    ):
        raise ConfigError(f"{path}: needs equally long lists 'channels' and 'values'")
    table = dict(zip(channels, values, strict=True))
    missing = [lab for lab in labels if lab not in table]
    if missing:
        raise ConfigError(f"{path}: reference lacks channels {missing} of the live scheme")
    try:
        return np.array([float(table[lab]) for lab in labels], dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: 'values' must be numbers") from None


class FeedbackScorer:
    """Score and symmetry of a live activity vector, smoothed for a calm display.

    ``smoothing_s`` is the time constant of an exponential moving average of the activity
    (frames are ~11-33 ms apart; 0.3 s keeps the number readable without lagging a movement).

    Parameters
    ----------
    labels : sequence of str
        Channel labels of the activity vectors, in order.
    pairs : sequence of (str, str)
        Left/right channel pairs for the symmetry index.
    metric : str
        Score metric, one of ``METRICS`` (module docstring).
    smoothing_s : float
        Time constant of the moving average (0: none).
    floor : float
        Norm below which activity counts as rest (module docstring).
    """

    def __init__(
        self,
        labels: Sequence[str],
        pairs: Sequence[tuple[str, str]],
        *,
        metric: str = "cosine",
        smoothing_s: float = 0.3,
        floor: float = 0.05,
        max_abs: float = MAX_ABS,
    ) -> None:
        if metric not in METRICS:
            raise ValueError(f"unknown score metric {metric!r}; choose one of {METRICS}")
        self.labels = list(labels)
        self.left_idx, self.right_idx = pair_indices(self.labels, pairs)
        self.metric = metric
        self.smoothing_s = float(smoothing_s)
        self.floor = float(floor)
        self.max_abs = float(max_abs)
        self.target: np.ndarray | None = None
        n = len(self.labels)
        self._avg = np.full(n, np.nan)  # NaN: no usable value seen yet on that channel
        self._t_last = np.full(n, np.nan)
        self.skipped = np.zeros(n, dtype=np.int64)

    def set_target(self, target: np.ndarray | None) -> None:
        if target is not None:
            target = _vector(target, "target")
            _check_pair(np.zeros(len(self.labels)), target)
        self.target = target

    @property
    def average(self) -> np.ndarray | None:
        """The smoothed activity (e.g. to record the current pattern as a reference)."""
        return None if np.isnan(self._t_last).all() else self._avg.copy()

    def process(self, activity: Any, t_s: float) -> dict[str, Any]:
        """Update with one frame's activity at time ``t_s``; returns score and symmetry.

        Each channel is averaged on its own: a non-finite value, or one beyond ``max_abs``
        (no EMG, in microvolts or normalised), is skipped and counted in :attr:`skipped`, and
        the channel keeps its average (or starts at its first usable value). The average is a
        convex combination of values within ``max_abs``, so it cannot overflow.
        """
        x = _vector(activity, "activity")
        _check_pair(np.zeros(len(self.labels)), x)
        with np.errstate(invalid="ignore"):
            usable = np.isfinite(x) & (np.abs(x) <= self.max_abs)
        self.skipped += ~usable
        dt = t_s - self._t_last  # NaN where a channel never had a value
        with np.errstate(invalid="ignore", over="ignore"):
            alpha = np.where(
                dt > 0, -np.expm1(-dt / max(self.smoothing_s, 1e-6)), 1.0
            )  # 1 for a first value or a clock that went back: start again there
        alpha = np.where(usable, alpha, 0.0)
        fresh = np.where(usable, x, 0.0)
        old = np.where(np.isnan(self._avg), 0.0, self._avg)
        self._avg = np.where(
            usable | ~np.isnan(self._avg), (1.0 - alpha) * old + alpha * fresh, np.nan
        )
        self._t_last = np.where(usable, t_s, self._t_last)
        score = (
            None
            if self.target is None
            else similarity_score(self._avg, self.target, self.metric, self.floor)
        )
        if score is not None and not math.isfinite(score):
            score = None
        level = float(np.nanmax(self._avg)) if np.isfinite(self._avg).any() else 0.0
        si = symmetry_index(
            self._avg[self.left_idx], self._avg[self.right_idx], floor=max(self.floor * 0.1, 1e-6)
        )
        return {"score": score, "symmetry": si, "level": level, "skipped": int(self.skipped.sum())}

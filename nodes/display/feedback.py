"""Biofeedback state of the display: the selectable targets and the live scorer.

Targets are the movements of a movements TOML (``configs/movements.toml``), ``file:<path>``
reference vectors (:func:`streaming.pipeline.biofeedback.load_reference`) and references captured
from the live activity (the "use current as target" button). Thread-safe: the bus thread scores,
the web server's event loop changes the target.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from streaming.acquisition.electrodes import ElectrodeScheme
from streaming.pipeline.biofeedback import (
    METRICS,
    FeedbackScorer,
    load_reference,
    movement_target,
    save_reference,
)

__all__ = ["Feedback"]


class Feedback:
    """Targets by name, the chosen one and metric, and per-frame score/symmetry messages."""

    def __init__(
        self,
        scheme: ElectrodeScheme,
        movements: Mapping[str, Mapping[str, float]],
        *,
        metric: str = "cosine",
        smoothing_s: float = 0.3,
    ) -> None:
        self.scheme = scheme
        self.pairs = scheme.pairs
        self.targets: dict[str, np.ndarray] = {
            name: movement_target(levels, scheme.muscles) for name, levels in movements.items()
        }
        self.scorer = FeedbackScorer(
            scheme.labels, self.pairs, metric=metric, smoothing_s=smoothing_s
        )
        self.target_name = ""
        self._lock = threading.Lock()
        self._order: np.ndarray | None = None
        self._order_for: tuple[str, ...] = ()

    def select(self, name: str) -> None:
        """Choose a target by name, ``file:<path>`` or ``""`` (none). ValueError when unknown."""
        if name.startswith("file:"):
            vector = load_reference(Path(name[5:]), self.scheme.labels)
            with self._lock:
                self.targets[name] = vector
        elif name and name not in self.targets:
            raise ValueError(f"unknown biofeedback target {name!r}; known: {sorted(self.targets)}")
        with self._lock:
            self.target_name = name
            self.scorer.set_target(self.targets[name] if name else None)

    def set_metric(self, metric: str) -> None:
        if metric not in METRICS:
            raise ValueError(f"unknown score metric {metric!r}; choose one of {METRICS}")
        with self._lock:
            self.scorer.metric = metric

    def capture(self, save_dir: str | Path | None = None) -> str:
        """Use the current (smoothed) activity as a new reference target; returns its name.

        With ``save_dir`` the reference is also written there as TOML
        (:func:`streaming.pipeline.biofeedback.save_reference`) and named ``file:<path>``, so a
        later session can select it again (``--set target=file:<path>``).
        """
        with self._lock:
            average = self.scorer.average
            if average is None:
                raise ValueError("no muscle activity received yet: nothing to capture")
            vector = np.nan_to_num(average)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            name = "captured " + stamp
            if save_dir is not None:
                path = Path(save_dir) / f"reference-{stamp}.toml"
                save_reference(path, self.scheme.labels, vector, note=f"captured {stamp}")
                name = f"file:{path}"
            self.targets[name] = vector
            self.target_name = name
            self.scorer.set_target(vector)
        return name

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "targets": list(self.targets),
                "target": self.target_name,
                "metric": self.scorer.metric,
                "metrics": list(METRICS),
                "pairs": [list(p) for p in self.pairs],
                "pair_muscles": [self.scheme.channel(left).muscle for left, _ in self.pairs],
                "target_vector": (
                    None if not self.target_name else self.targets[self.target_name].tolist()
                ),
            }

    def skipped(self) -> dict[str, int]:
        """Values the scorer skipped (non-finite or beyond ``MAX_ABS``), per channel that had any."""
        with self._lock:
            counts = self.scorer.skipped.tolist()
        return {label: n for label, n in zip(self.scorer.labels, counts, strict=True) if n}

    def _reorder(self, channels: list[str]) -> np.ndarray:
        key = tuple(channels)
        if key != self._order_for:
            where = {label: i for i, label in enumerate(channels)}
            missing = [lab for lab in self.scheme.labels if lab not in where]
            if missing:
                raise ValueError(
                    f"muscle message lacks channels {missing} of scheme {self.scheme.name!r} "
                    "(set the display's scheme to the pipeline's)"
                )
            self._order = np.array([where[lab] for lab in self.scheme.labels], dtype=np.intp)
            self._order_for = key
        assert self._order is not None
        return self._order

    def process(self, fields: Mapping[str, Any], t_s: float) -> dict[str, Any] | None:
        """Score one ``muscle`` message; None when it carries no measured EMG."""
        if fields.get("emg_missing") or fields.get("emg_measured") is None:
            return None
        activity = np.asarray(fields["emg_measured"], dtype=np.float64).ravel()
        channels = list(fields.get("channels") or self.scheme.labels)
        if len(channels) != activity.shape[0]:
            raise ValueError(
                f"muscle message has {activity.shape[0]} values for {len(channels)} channels"
            )
        activity = activity[self._reorder(channels)]
        with self._lock:
            result = self.scorer.process(activity, t_s)
            result.update(target=self.target_name, metric=self.scorer.metric)
        result["normalised"] = bool(fields.get("normalised", False))
        return result

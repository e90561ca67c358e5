"""Truth streams read live: the EMG simulator's ``<name>-truth`` (``EMGTruth``).

The simulator stamps each truth row with the exact LSL time of a chunk's first sample (no clock
offset, no jitter; :mod:`simulation.live`), so the true time of any EMG sample index
follows from the rows by linear interpolation, and a pipeline's ``emg_sample_index`` can be
checked against the moment it should describe.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from streaming.acquisition.lsl_io import (
    ChunkInlet,
    StreamSelector,
    channel_labels,
    desc_to_dict,
    find_stream,
)
from streaming.errors import EiferError, StreamFormatError

MAX_TRUTH_GAP_S = 0.5  # a time farther than this from every truth row is not judged

__all__ = ["TruthRecorder", "emg_truth_selector", "sample_time"]


class TruthRecorder:
    """Collects one truth stream's rows (stamps in this machine's clock) in a thread."""

    def __init__(self, selector: StreamSelector, timeout_s: float = 5.0) -> None:
        self.info = find_stream(selector, timeout_s)
        self.labels = channel_labels(self.info)
        self._stamps: list[np.ndarray] = []
        self._rows: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._inlet = ChunkInlet(self.info, max_buflen_s=60, max_chunk=1024)
        self._inlet.open(timeout_s)
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="truth", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                rows, stamps = self._inlet.pull(timeout_s=0.1)
                if len(stamps):
                    with self._lock:
                        self._rows.append(np.asarray(rows, dtype=np.float64))
                        self._stamps.append(stamps)
        except EiferError as exc:
            self.error = str(exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._inlet.close()

    def table(self) -> tuple[np.ndarray, np.ndarray]:
        """``(t, rows)`` received so far, in time order."""
        with self._lock:
            if not self._stamps:
                return np.empty(0), np.empty((0, len(self.labels)))
            t, rows = np.concatenate(self._stamps), np.concatenate(self._rows)
        order = np.argsort(t, kind="stable")
        return t[order], rows[order]

    def column(self, label: str) -> tuple[np.ndarray, np.ndarray]:
        """``(t, values)`` of one column, both from one snapshot of what was received (the
        thread keeps appending: two separate reads could differ in length)."""
        if label not in self.labels:
            raise StreamFormatError(
                f"truth stream {self.info.name()!r} has no column {label!r}: {self.labels}"
            )
        t, rows = self.table()
        return t, rows[:, self.labels.index(label)]


def sample_time(
    sample_index: np.ndarray, near_t: np.ndarray, truth_t: np.ndarray, truth_k: np.ndarray
) -> np.ndarray:
    """True LSL time of (fractional) EMG sample indices, each from the truth row stamped
    nearest ``near_t`` (its expected time) and the sample rate; NaN where no truth row lies
    within ``MAX_TRUTH_GAP_S`` of it. Local, because a looping replay repeats the indices."""
    sample_index, near_t = np.asarray(sample_index, float), np.asarray(near_t, float)
    if len(truth_t) < 2:
        return np.full(sample_index.shape, np.nan)
    steps = np.diff(truth_k) / np.diff(truth_t)
    rate_hz = float(np.median(steps[np.isfinite(steps) & (steps > 0)]))
    i = np.clip(np.searchsorted(truth_t, near_t), 1, len(truth_t) - 1)
    nearest = np.where(np.abs(truth_t[i - 1] - near_t) <= np.abs(truth_t[i] - near_t), i - 1, i)
    t = truth_t[nearest] + (sample_index - truth_k[nearest]) / rate_hz
    return np.where(np.abs(truth_t[nearest] - near_t) > MAX_TRUTH_GAP_S, np.nan, t)


def emg_truth_selector(emg_info: Any) -> StreamSelector | None:
    """The truth stream the EMG simulator names in its stream's ``desc`` (None: no truth)."""
    name = (desc_to_dict(emg_info).get("simulation") or {}).get("truth_stream") or ""
    return StreamSelector(name=name) if name else None

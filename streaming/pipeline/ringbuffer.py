"""A time-indexed ring buffer of multichannel samples with interpolation at arbitrary times.

The pipeline reads the EMG envelope *at each frame's timestamp* (linear interpolation between the
two 4096 Hz samples around it; research note emg_processing.md 3.3: no extra delay, exact
alignment to jittered frame times). Storage is a doubled contiguous array, so reads are plain
slices and ``np.searchsorted`` works on ordered time stamps without unwrapping.
"""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt

__all__ = ["TimeSeriesRing"]


class TimeSeriesRing:
    """Last ``capacity`` samples ``(t, values, index)``; thread-safe append and read."""

    def __init__(self, capacity: int, n_channels: int, dtype: npt.DTypeLike = np.float64) -> None:
        if capacity < 2:
            raise ValueError(f"capacity must be >= 2, got {capacity}")
        self.capacity = capacity
        self.n_channels = n_channels
        self._t = np.empty(2 * capacity)
        self._k = np.empty(2 * capacity)
        self._x = np.empty((2 * capacity, n_channels), dtype=dtype)
        self._start = 0
        self._stop = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._stop - self._start

    def clear(self) -> None:
        with self._lock:
            self._start = self._stop = 0

    def append(self, t: np.ndarray, values: np.ndarray, indices: np.ndarray | None = None) -> None:
        """Append samples in time order (older than the newest stored ones are dropped)."""
        t = np.asarray(t, dtype=np.float64)
        values = np.asarray(values)
        if values.shape != (len(t), self.n_channels):
            raise ValueError(f"values shape {values.shape} != ({len(t)}, {self.n_channels})")
        k = np.full(len(t), np.nan) if indices is None else np.asarray(indices, dtype=np.float64)
        with self._lock:
            if self._stop > self._start:
                keep = t > self._t[self._stop - 1]
                t, values, k = t[keep], values[keep], k[keep]
            n = len(t)
            if n == 0:
                return
            if n >= self.capacity:
                t, values, k = t[-self.capacity :], values[-self.capacity :], k[-self.capacity :]
                n = self.capacity
                self._start = self._stop = 0
            if self._stop + n > 2 * self.capacity:
                keep = min(len(self), self.capacity - n)
                src = slice(self._stop - keep, self._stop)
                self._t[:keep], self._k[:keep] = self._t[src], self._k[src]
                self._x[:keep] = self._x[src]
                self._start, self._stop = 0, keep
            end = self._stop + n
            self._t[self._stop : end], self._k[self._stop : end] = t, k
            self._x[self._stop : end] = values
            self._stop = end
            if self._stop - self._start > self.capacity:
                self._start = self._stop - self.capacity

    @property
    def latest_t(self) -> float | None:
        with self._lock:
            return float(self._t[self._stop - 1]) if self._stop > self._start else None

    @property
    def oldest_t(self) -> float | None:
        with self._lock:
            return float(self._t[self._start]) if self._stop > self._start else None

    def interpolate(self, t: float) -> tuple[np.ndarray, float] | None:
        """Values and (fractional) sample index at time ``t``; None when ``t`` is not covered."""
        with self._lock:
            times = self._t[self._start : self._stop]
            if len(times) < 2 or not times[0] <= t <= times[-1]:
                return None
            i = int(np.searchsorted(times, t, side="right"))
            i = min(max(i, 1), len(times) - 1)
            t0, t1 = times[i - 1], times[i]
            w = (t - t0) / (t1 - t0)
            j = self._start + i
            values = (1 - w) * self._x[j - 1] + w * self._x[j]
            index = (1 - w) * self._k[j - 1] + w * self._k[j]
            return values.astype(np.float64), float(index)

    def window(self, t_from: float, t_to: float) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the samples with ``t_from <= t <= t_to``: ``(t, values)``."""
        with self._lock:
            times = self._t[self._start : self._stop]
            a = int(np.searchsorted(times, t_from, side="left"))
            b = int(np.searchsorted(times, t_to, side="right"))
            sl = slice(self._start + a, self._start + b)
            return self._t[sl].copy(), self._x[sl].copy()

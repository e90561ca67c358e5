"""Stream health and latency statistics for the ``status`` topic."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = ["LatencyStats", "StreamHealth"]


class LatencyStats:
    """Rolling p50/p99 of per-stage latencies (the last ``window`` values of each stage)."""

    def __init__(self, window: int = 1000) -> None:
        self._values: dict[str, deque[float]] = {}
        self._window = window
        self._lock = threading.Lock()

    def add(self, stage: str, latency_ms: float) -> None:
        with self._lock:
            self._values.setdefault(stage, deque(maxlen=self._window)).append(float(latency_ms))

    def summary(self) -> dict[str, dict[str, float]]:
        with self._lock:
            items = [(k, np.asarray(v)) for k, v in self._values.items() if v]
        return {
            stage: {
                "p50": float(np.percentile(v, 50)),
                "p99": float(np.percentile(v, 99)),
                "n": len(v),
            }
            for stage, v in items
        }


@dataclass
class StreamHealth:
    """What the status panel shows for one input stream."""

    name: str
    connected: bool = False
    samples: int = 0
    gaps: int = 0
    lost_samples: int = 0
    bad_samples: int = 0
    reconnects: int = 0
    last_error: str = ""
    _last_wall: float | None = None
    _rate_window: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))

    def on_data(self, n_samples: int) -> None:
        now = time.monotonic()
        self.samples += n_samples
        self._last_wall = now
        self._rate_window.append((now, self.samples))

    @property
    def age_s(self) -> float:
        """Seconds since data last arrived (inf before any)."""
        return float("inf") if self._last_wall is None else time.monotonic() - self._last_wall

    @property
    def rate_hz(self) -> float:
        """Arrival rate over the last few seconds."""
        window = [(t, n) for t, n in self._rate_window if time.monotonic() - t < 5.0]
        if len(window) < 2 or window[-1][0] == window[0][0]:
            return 0.0
        return (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])

    def as_status(self) -> dict[str, object]:
        age = self.age_s
        return {
            "connected": self.connected,
            "rate_hz": round(self.rate_hz, 2),
            "samples": self.samples,
            "gaps": self.gaps,
            "lost_samples": self.lost_samples,
            "bad_samples": self.bad_samples,
            "reconnects": self.reconnects,
            "age_s": None if age == float("inf") else round(age, 3),
            "error": self.last_error,
        }

"""Stream health and latency statistics for the ``status`` topic.

A stream is *connected* while data arrives; one that sends nothing for ``stall_after_s`` is
*lost* (an outage: the node stopped, the cable, the network) until data flows again, which counts
as a reconnect. The health record is judged at the moment it is read, so a ``status`` message
never shows a stale rate or a connected stream that stopped seconds ago, even when the thread
that feeds it is starved.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = ["LatencyStats", "StreamHealth"]

#: arrivals over this window give the reported rate (short: the rate follows an outage at once)
RATE_WINDOW_S = 2.0


class LatencyStats:
    """Rolling p50/p99 of per-stage latencies (the last ``window`` values of each stage)."""

    def __init__(self, window: int = 1000) -> None:
        self._values: dict[str, deque[float]] = {}
        self._window = window
        self._lock = threading.Lock()

    def add(self, stage: str, latency_ms: float) -> None:
        with self._lock:
            self._values.setdefault(stage, deque(maxlen=self._window)).append(float(latency_ms))

    def reset(self) -> None:
        """Forget every value (e.g. after a warm-up)."""
        with self._lock:
            self._values.clear()

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
    """What the status panel shows for one input stream.

    ``reconnects`` counts the times the stream came back after an outage (the first connection
    is not a reconnect); ``outages`` the times it was lost. ``last_error`` names the current
    problem (stream not found, wrong format, outage) and is cleared when data flows again.
    """

    name: str
    stall_after_s: float = 1.0
    connected: bool = False
    samples: int = 0
    gaps: int = 0
    lost_samples: int = 0
    bad_samples: int = 0
    reconnects: int = 0
    outages: int = 0
    last_error: str = ""
    _ever_connected: bool = False
    _lost_at: float | None = None
    _last_wall: float | None = None
    _rate_window: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=256))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on_data(self, n_samples: int) -> None:
        """Data arrived: connected again (a reconnect when it had been lost)."""
        now = time.monotonic()
        with self._lock:
            self.samples += n_samples
            self._last_wall = now
            self._rate_window.append((now, self.samples))
            if not self.connected:
                if self._ever_connected:
                    self.reconnects += 1
                self.connected = self._ever_connected = True
                self._lost_at = None
                self.last_error = ""

    def on_lost(self, reason: str) -> None:
        """The stream is gone (or could not be used): ``reason`` says why, in one line."""
        with self._lock:
            if self.connected:
                self.outages += 1
                self._lost_at = time.monotonic()
            self.connected = False
            self.last_error = reason

    def check_stall(self) -> bool:
        """Mark the stream lost when no data came for ``stall_after_s``; True while connected."""
        age = self.age_s
        if self.connected and age > self.stall_after_s:
            self.on_lost(
                f"{self.name!r}: no data for {age:.1f} s (stream lost or stalled); "
                "waiting for it to return"
            )
        return self.connected

    @property
    def age_s(self) -> float:
        """Seconds since data last arrived (inf before any)."""
        return float("inf") if self._last_wall is None else time.monotonic() - self._last_wall

    @property
    def outage_s(self) -> float | None:
        """Seconds since the stream was lost (None while connected or before it ever was)."""
        return None if self._lost_at is None else time.monotonic() - self._lost_at

    @property
    def rate_hz(self) -> float:
        """Arrival rate over the last ``RATE_WINDOW_S`` (0 while the stream is not connected)."""
        if not self.check_stall():
            return 0.0
        now = time.monotonic()
        with self._lock:
            window = [(t, n) for t, n in self._rate_window if now - t < RATE_WINDOW_S]
        if len(window) < 2 or window[-1][0] == window[0][0]:
            return 0.0
        return (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])

    def as_status(self) -> dict[str, object]:
        rate = self.rate_hz  # judges a stall first, so the fields below agree with each other
        age, outage = self.age_s, self.outage_s
        return {
            "connected": self.connected,
            "rate_hz": round(rate, 2),
            "samples": self.samples,
            "gaps": self.gaps,
            "lost_samples": self.lost_samples,
            "bad_samples": self.bad_samples,
            "reconnects": self.reconnects,
            "outages": self.outages,
            "outage_s": None if outage is None else round(outage, 2),
            "age_s": None if age == float("inf") else round(age, 3),
            "error": self.last_error,
        }

"""Sample clocks: fast online dejittering of regular streams and gap detection.

An amplifier stamps each chunk when it reaches the host, so every stamp carries the USB and
scheduling jitter of its chunk (a few ms). The true sampling clock is linear in the sample index,
``t_k = a + b k``; :class:`LinearDejitter` fits it by exponentially weighted least squares
(half-life ``half_life_s``, 10 s by default) and returns the fitted times. liblsl's own dejitter
(``proc_dejitter``) is the same model solved by RLS with a 90 s half-life that needs 30-120 s to
reach 1 ms (streaming_anchors.md section 4); the pipeline needs sub-millisecond alignment within a
second or two of a (re)connection.
"""

from __future__ import annotations

import numpy as np

__all__ = ["COUNTER_MODULUS", "LinearDejitter", "SampleIndexer"]

#: amplifier sample counters wrap here: the largest power of two whose integers float32 holds
#: exactly (a float32 ``counter`` channel; wraps every 68 min at 4096 Hz)
COUNTER_MODULUS = 2**24


class LinearDejitter:
    """Online fit of ``t = a + b k`` to (sample index, raw stamp) pairs with forgetting.

    Sufficient statistics are kept relative to a moving reference point (the newest sample), so
    precision does not degrade over hours of 4096 Hz samples.
    """

    def __init__(self, rate_hz: float, half_life_s: float = 10.0) -> None:
        if rate_hz <= 0:
            raise ValueError(f"dejittering needs a regular stream, got rate {rate_hz} Hz")
        self.rate_hz = float(rate_hz)
        # per-sample forgetting factor: weight halves every half_life_s of samples
        self._log_lambda = np.log(0.5) / (half_life_s * rate_hz)
        self.reset()

    def reset(self) -> None:
        self._k_ref = 0.0
        self._t_ref = 0.0
        self._s = np.zeros(5)  # sum w, sum w dk, sum w dk^2, sum w dt, sum w dk dt
        self._have_data = False

    def _recentre(self, k_new: float, t_new: float) -> None:
        dk, dt = k_new - self._k_ref, t_new - self._t_ref
        s0, s1, s2, t1, t2 = self._s
        self._s = np.array(
            [
                s0,
                s1 - dk * s0,
                s2 - 2 * dk * s1 + dk * dk * s0,
                t1 - dt * s0,
                t2 - dk * t1 - dt * s1 + dk * dt * s0,
            ]
        )
        self._k_ref, self._t_ref = k_new, t_new

    def update(self, indices: np.ndarray, stamps: np.ndarray) -> np.ndarray:
        """Add a chunk of (sample index, raw LSL stamp) and return its dejittered stamps."""
        k = np.asarray(indices, dtype=np.float64)
        t = np.asarray(stamps, dtype=np.float64)
        if len(k) == 0:
            return t.copy()
        if not self._have_data:
            self._k_ref, self._t_ref = float(k[0]), float(t[0])
            self._have_data = True
        k_last = float(k[-1])
        # decay the history by the number of samples since the reference, then recentre on the
        # newest sample so that the chunk's offsets are small numbers
        self._s *= np.exp(self._log_lambda * (k_last - self._k_ref))
        self._recentre(k_last, self._t_ref + (k_last - self._k_ref) / self.rate_hz)
        dk = k - self._k_ref
        dt = t - self._t_ref
        w = np.exp(self._log_lambda * (-dk))  # newest sample weight 1
        self._s += [
            w.sum(),
            (w * dk).sum(),
            (w * dk * dk).sum(),
            (w * dt).sum(),
            (w * dk * dt).sum(),
        ]
        return self.predict(k)

    @property
    def period_s(self) -> float:
        """Fitted sample period (falls back to the nominal one until two chunks are in)."""
        s0, s1, s2, t1, t2 = self._s
        det = s0 * s2 - s1 * s1
        if det <= 1e-9 * max(s0 * s2, 1e-300):
            return 1.0 / self.rate_hz
        return float((s0 * t2 - s1 * t1) / det)

    def predict(self, indices: np.ndarray) -> np.ndarray:
        """Fitted stamps for sample indices (the current clock model)."""
        s0, s1, _, t1, _ = self._s
        b = self.period_s
        a = (t1 - b * s1) / s0 if s0 > 0 else 0.0
        return self._t_ref + a + b * (np.asarray(indices, dtype=np.float64) - self._k_ref)


class SampleIndexer:
    """Absolute sample indices for incoming chunks, and the gaps between them.

    With a hardware counter channel the index is the counter itself (exact gap detection, as
    MNE-LSL's tests do with a ``Samples`` channel). Without one, indices follow the stamps: a
    chunk starting more than 1.5 periods after the previous sample skipped samples.
    """

    COUNTER_MODULUS = COUNTER_MODULUS  # the module constant, kept here for existing callers

    def __init__(self, rate_hz: float, counter_modulus: int = COUNTER_MODULUS) -> None:
        self.rate_hz = float(rate_hz)
        self.counter_modulus = counter_modulus
        self._wraps = 0
        self.gaps = 0
        self.lost_samples = 0
        self.restarts = 0
        self._next: float | None = None
        self._last_t: float | None = None

    def reset(self) -> None:
        self._next = None
        self._last_t = None
        self._wraps = 0

    def _unwrap(self, counter: np.ndarray) -> np.ndarray:
        """Undo the counter's wrap at ``counter_modulus`` (within and across chunks)."""
        m = float(self.counter_modulus)
        previous = (self._next - 1) % m if self._next is not None else counter[0]
        steps = np.diff(np.concatenate([[previous], counter]))
        # a drop of more than half the range is a wrap; a smaller one is a restart (see index)
        if -m / 2 <= steps[0] < 0:
            self._wraps = 0
        wraps = self._wraps + np.cumsum(steps < -m / 2)
        self._wraps = int(wraps[-1])
        return counter + m * wraps

    def index(self, stamps: np.ndarray, counter: np.ndarray | None = None) -> np.ndarray:
        n = len(stamps)
        if n == 0:
            return np.empty(0)
        if counter is not None:
            indices = self._unwrap(np.asarray(counter, dtype=np.float64))
        else:
            start = self._next if self._next is not None else 0.0
            if self._last_t is not None:
                skipped = round((stamps[0] - self._last_t) * self.rate_hz) - 1
                if skipped > 0:
                    start += skipped
            indices = start + np.arange(n, dtype=np.float64)
        if self._next is not None:
            jump = indices[0] - self._next
            if jump < 0 or (self._last_t is not None and stamps[0] < self._last_t - 1.0):
                self.restarts += 1  # the source restarted (counter reset, clock jumped back)
            elif jump > 0:
                self.gaps += 1
                self.lost_samples += int(jump)
        self._next = float(indices[-1]) + 1
        self._last_t = float(stamps[-1])
        return indices

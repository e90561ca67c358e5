"""Time-indexed ring buffer: interpolation at frame times, wrap-around, bounds."""

from __future__ import annotations

import numpy as np
import pytest

from streaming.pipeline.ringbuffer import TimeSeriesRing


def test_interpolation_at_jittered_times_matches_numpy_interp() -> None:
    rate = 4096.0
    t = np.arange(8192) / rate
    x = np.stack([np.sin(2 * np.pi * 10 * t), np.cos(2 * np.pi * 3 * t)], axis=1)
    ring = TimeSeriesRing(10000, 2)
    for a in range(0, len(t), 32):
        ring.append(t[a : a + 32], x[a : a + 32], np.arange(a, a + 32))
    rng = np.random.default_rng(1)
    for frame_t in np.arange(0.1, 1.9, 1 / 30) + rng.uniform(-2e-3, 2e-3, 54):
        values, index = ring.interpolate(frame_t)
        expected = [np.interp(frame_t, t, x[:, c]) for c in range(2)]
        np.testing.assert_allclose(values, expected, atol=1e-12)
        assert index == pytest.approx(frame_t * rate, abs=1e-6)


def test_wraps_around_keeping_the_newest_capacity_samples() -> None:
    ring = TimeSeriesRing(100, 1)
    for a in range(0, 1000, 7):
        t = np.arange(a, a + 7, dtype=float)
        ring.append(t, t[:, None])
    assert len(ring) == 100
    assert ring.latest_t == max(range(0, 1000, 7)) + 6
    t, x = ring.window(-1, 1e9)
    assert len(t) == 100 and np.all(np.diff(t) == 1) and np.all(x[:, 0] == t)


def test_times_outside_the_buffer_are_not_covered() -> None:
    ring = TimeSeriesRing(10, 1)
    ring.append(np.array([1.0, 2.0, 3.0]), np.zeros((3, 1)))
    assert ring.interpolate(0.5) is None and ring.interpolate(3.5) is None
    assert ring.interpolate(3.0) is not None


def test_stale_or_repeated_samples_are_ignored() -> None:
    ring = TimeSeriesRing(10, 1)
    ring.append(np.array([1.0, 2.0]), np.ones((2, 1)))
    ring.append(np.array([2.0, 1.5, 3.0]), np.full((3, 1), 5.0))
    t, _ = ring.window(0, 10)
    np.testing.assert_array_equal(t, [1.0, 2.0, 3.0])


def test_chunks_larger_than_capacity_keep_their_tail() -> None:
    ring = TimeSeriesRing(5, 1)
    t = np.arange(12, dtype=float)
    ring.append(t, t[:, None])
    np.testing.assert_array_equal(ring.window(0, 100)[0], t[-5:])

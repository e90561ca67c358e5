"""Dejittering and gap detection of regular streams."""

from __future__ import annotations

import numpy as np
import pytest

from streaming.acquisition.clock import LinearDejitter, SampleIndexer

RATE_HZ = 4096.0
CHUNK = 32


def _jittered_chunks(
    seconds: float, jitter_s: float, offset_s: float = 100.0, drift_ppm: float = 0.0, seed: int = 0
):
    """Chunks stamped like an amplifier: last sample's true time + per-chunk host jitter."""
    rng = np.random.default_rng(seed)
    period = (1 + drift_ppm * 1e-6) / RATE_HZ
    for start in range(0, int(seconds * RATE_HZ), CHUNK):
        k = np.arange(start, start + CHUNK, dtype=np.float64)
        true_t = offset_s + k * period
        stamp_last = true_t[-1] + rng.uniform(-jitter_s, jitter_s)
        raw = stamp_last - (CHUNK - 1 - np.arange(CHUNK)) / RATE_HZ  # as liblsl derives them
        yield k, raw, true_t


def test_dejitter_recovers_true_sample_times_to_well_below_a_millisecond() -> None:
    dejitter = LinearDejitter(RATE_HZ, half_life_s=10.0)
    errors = []
    for k, raw, true_t in _jittered_chunks(20.0, jitter_s=2e-3, drift_ppm=30.0):
        fitted = dejitter.update(k, raw)
        if k[0] > 2 * RATE_HZ:  # after two seconds
            errors.append(np.max(np.abs(fitted - true_t)))
    assert max(errors) < 0.3e-3
    # the 30 ppm drift is found (nominal would be 3e-5 off)
    assert dejitter.period_s == pytest.approx((1 + 30e-6) / RATE_HZ, rel=1.5e-5)


def test_raw_stamps_are_worse_than_dejittered_ones() -> None:
    dejitter = LinearDejitter(RATE_HZ)
    raw_err, fit_err = [], []
    for k, raw, true_t in _jittered_chunks(10.0, jitter_s=2e-3, seed=3):
        fitted = dejitter.update(k, raw)
        if k[0] > RATE_HZ:
            raw_err.append(np.abs(raw - true_t).mean())
            fit_err.append(np.abs(fitted - true_t).mean())
    assert np.mean(fit_err) < np.mean(raw_err) / 5


def test_dejitter_stays_precise_after_hours_of_samples() -> None:
    dejitter = LinearDejitter(RATE_HZ)
    k0 = 4096 * 3600 * 5  # five hours in
    for start in range(k0, k0 + int(5 * RATE_HZ), CHUNK):
        k = np.arange(start, start + CHUNK, dtype=np.float64)
        fitted = dejitter.update(k, 1e5 + k / RATE_HZ)
    np.testing.assert_allclose(fitted, 1e5 + k / RATE_HZ, atol=1e-7)


def test_indexer_uses_the_counter_channel_and_counts_gaps() -> None:
    indexer = SampleIndexer(RATE_HZ)
    indexer.index(np.zeros(4), counter=np.array([0, 1, 2, 3]))
    indexer.index(np.zeros(4), counter=np.array([4, 5, 6, 7]))
    indexer.index(np.zeros(4), counter=np.array([12, 13, 14, 15]))
    assert (indexer.gaps, indexer.lost_samples, indexer.restarts) == (1, 4, 0)
    indexer.index(np.zeros(2), counter=np.array([0, 1]))
    assert indexer.restarts == 1


def test_indexer_without_counter_infers_gaps_from_stamps() -> None:
    indexer = SampleIndexer(100.0)
    first = indexer.index(np.arange(10) / 100.0)
    second = indexer.index((np.arange(10) + 15) / 100.0)  # 5 samples missing
    assert first[0] == 0 and second[0] == 15
    assert (indexer.gaps, indexer.lost_samples) == (1, 5)


def test_dejitter_refuses_irregular_streams() -> None:
    with pytest.raises(ValueError, match="regular stream"):
        LinearDejitter(0.0)


def test_counter_wrapping_at_2_to_the_24_is_not_a_restart() -> None:
    indexer = SampleIndexer(RATE_HZ)
    m = 2**24
    first = indexer.index(np.zeros(4), counter=np.array([m - 4, m - 3, m - 2, m - 1.0]))
    second = indexer.index(np.zeros(4), counter=np.array([m - 1 + 1 - m + 0.0, 1, 2, 3]))
    within = indexer.index(np.zeros(4), counter=np.array([4.0, 5, 6, 7]))
    assert second[0] == first[-1] + 1 and within[0] == second[-1] + 1
    assert (indexer.gaps, indexer.restarts) == (0, 0)

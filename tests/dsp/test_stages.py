"""Online stages: state carried across chunks, exact responses, robustness to bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from streaming.dsp import (
    BipolarDerivation,
    Chain,
    FirFilter,
    Rectify,
    SlidingRms,
    band_pass,
    design,
    envelope_lowpass,
    notch,
)
from streaming.errors import StreamFormatError
from streaming.pipeline.features import build_chain

FS = 4096.0


def sine(f_hz: float, amp: float, seconds: float, n_channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    return np.repeat((amp * np.sin(2 * np.pi * f_hz * t))[:, None], n_channels, axis=1)


# -- chunking ----------------------------------------------------------------------------------


def test_bandpass_in_random_chunks_equals_one_shot_sosfilt(sig) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((int(10 * FS), 22)) * 50 + 300.0
    stage = band_pass(20, 450, 2, 22, FS)
    y = sig.run_chunked(stage, x, sig.random_chunks(x.shape[0], rng))
    sos = design.butter_bandpass(20, 450, 2, FS)
    ref, _ = signal.sosfilt(sos, x, axis=0, zi=signal.sosfilt_zi(sos)[:, :, None] * x[0])
    assert np.max(np.abs(y - ref)) <= 1e-9


@pytest.mark.parametrize("feature", ["low_latency", "mmm"])
def test_any_chunking_gives_the_same_feature_output(sig, feature: str) -> None:
    rng = np.random.default_rng(2)
    _, x, _ = sig.burst_record(seconds=4.0, n_channels=22, seed=3)
    one_shot = build_chain(feature, 22).process(x)
    chunked = sig.run_chunked(build_chain(feature, 22), x, sig.random_chunks(x.shape[0], rng))
    assert chunked.shape == one_shot.shape == (x.shape[0], 22)
    assert np.max(np.abs(chunked - one_shot)) <= 1e-9 * max(1.0, np.max(np.abs(one_shot)))


def test_reset_makes_the_chain_behave_as_new(sig) -> None:
    _, x, _ = sig.burst_record(seconds=2.0, n_channels=3)
    chain = build_chain("low_latency", 3)
    first = chain.process(x)
    chain.process(x[:1000] * 7)
    chain.reset()
    np.testing.assert_array_equal(chain.process(x), first)


# -- responses ---------------------------------------------------------------------------------


def test_notch_removes_50_100_150_hz_by_at_least_40_db_after_settling() -> None:
    for f in (50.0, 100.0, 150.0):
        x = sine(f, 20.0, 4.0)
        y = notch(50, 30, 1, FS, max_hz=450).process(x)
        tail = y[int(2 * FS) :, 0]
        assert np.max(np.abs(tail)) < 0.01 * 20.0, f"{f} Hz residual {np.max(np.abs(tail))}"


def test_notch_at_60_hz_is_configurable() -> None:
    stage = notch(60, 30, 1, FS, max_hz=450)
    tail = stage.process(sine(120.0, 20.0, 4.0))[int(2 * FS) :, 0]
    assert np.max(np.abs(tail)) < 0.2
    passed = notch(60, 30, 1, FS, max_hz=450).process(sine(50.0, 20.0, 4.0))[int(2 * FS) :, 0]
    assert np.max(np.abs(passed)) == pytest.approx(20.0, rel=0.02)


def test_linear_envelope_of_a_100uv_sine_is_2a_over_pi_times_filter_gain() -> None:
    # 110 Hz: inside the band, between two mains notches
    env = build_chain("low_latency", 1).process(sine(110.0, 100.0, 4.0))[int(2 * FS) :, 0]
    h = design.sos_gain(design.butter_bandpass(20, 450, 2, FS), 110.0, FS)[0]
    h *= design.sos_gain(design.notch_cascade(50, 30, FS, 450), 110.0, FS)[0]
    assert np.mean(env) == pytest.approx(2 * 100.0 / np.pi * h, rel=0.005)
    assert np.ptp(env) < 0.2


def test_a_tone_on_a_mains_harmonic_is_removed_from_the_envelope() -> None:
    env = build_chain("low_latency", 1).process(sine(100.0, 100.0, 4.0))[int(2 * FS) :, 0]
    assert np.mean(env) < 0.01 * 63.66


def test_envelope_without_notch_matches_research_reference_63_66_uv() -> None:
    chain = Chain([band_pass(20, 450, 2, 1, FS), Rectify(1), envelope_lowpass(6, 2, 1, FS)])
    env = chain.process(sine(100.0, 100.0, 4.0))[int(2 * FS) :, 0]
    assert np.mean(env) == pytest.approx(63.66, rel=0.005)
    assert np.ptp(env) < 0.1


def test_sliding_rms_of_a_sine_is_a_over_sqrt2() -> None:
    env = SlidingRms(512, 1, FS).process(sine(100.0, 100.0, 2.0))[1024:, 0]
    assert np.mean(env) == pytest.approx(100 / np.sqrt(2), rel=0.005)


def test_mmm_chain_of_a_sine_is_rms_times_notch_and_fir_gain() -> None:
    x = sine(150.0, 100.0, 3.0)
    env = build_chain("mmm", 1).process(x)[int(1.5 * FS) :, 0]
    h = design.sos_gain(design.notch_cascade(50, 2, FS), 150.0, FS)[0]
    _, hf = signal.freqz(design.fir_bandpass(10, 500, 129, FS), worN=[150.0], fs=FS)
    h *= abs(hf[0]) * design.sos_gain(design.butter_highpass(1, 1, FS), 150.0, FS)[0]
    assert np.mean(env) == pytest.approx(100 / np.sqrt(2) * h, rel=0.01)


def test_envelope_step_reaches_half_at_38_ms_with_4_percent_overshoot() -> None:
    stage = envelope_lowpass(6, 2, 1, FS)
    y = stage.process(np.concatenate([np.zeros((100, 1)), np.ones((4096, 1))]))[100:, 0]
    t50 = np.argmax(y >= 0.5) / FS
    assert t50 * 1e3 == pytest.approx(38.1, abs=1e3 / FS + 0.05)
    assert y.max() - 1 == pytest.approx(0.043, abs=0.002)
    assert stage.group_delay_s * 1e3 == pytest.approx(37.5, abs=0.1)


def test_chain_burst_onset_lags_the_true_onset_by_its_delay(sig) -> None:
    t, x, _ = sig.burst_record(seconds=8.0, n_channels=8, bursts=[(3.0, 6.0)], hum_uv=20.0)
    chain = build_chain("low_latency", 8)
    env = chain.process(x).mean(axis=1)
    plateau = np.median(env[(t > 4.0) & (t < 5.5)])
    i = np.flatnonzero((t > 2.0) & (env >= 0.5 * plateau))[0]
    true = 3.0 + 0.1  # 50 % of the 200 ms ramp
    lag_ms = (t[i] - true) * 1e3
    assert lag_ms == pytest.approx(36.0, abs=8.0)  # a slow ramp's midpoint: the delay near DC
    assert chain.dc_delay_s * 1e3 == pytest.approx(39.4, abs=1.0)


def test_fir_in_chunks_equals_lfilter_and_reports_half_length_delay(sig) -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5000, 3))
    taps = design.fir_bandpass(10, 500, 129, FS)
    stage = FirFilter(taps, 3, FS, init="zero")
    y = sig.run_chunked(stage, x, sig.random_chunks(5000, rng))
    np.testing.assert_allclose(y, signal.lfilter(taps, [1.0], x, axis=0), atol=1e-12)
    assert stage.group_delay_s == 64 / FS


def test_sliding_rms_is_causal_window_of_the_last_samples(sig) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3000, 2))
    y = sig.run_chunked(SlidingRms(100, 2, FS), x, sig.random_chunks(3000, rng))
    n = 1234
    np.testing.assert_allclose(y[n], np.sqrt(np.mean(x[n - 99 : n + 1] ** 2, axis=0)), rtol=1e-9)
    np.testing.assert_allclose(y[10], np.sqrt(np.sum(x[:11] ** 2, axis=0) / 100), rtol=1e-9)


# -- bad input ---------------------------------------------------------------------------------


def test_nan_and_inf_samples_are_replaced_counted_and_do_not_poison_the_state(sig) -> None:
    _, x, _ = sig.burst_record(seconds=6.0, n_channels=4)
    clean = build_chain("low_latency", 4).process(x)
    dirty = x.copy()
    dirty[4096:4196, 1] = np.nan
    dirty[5000, 2] = np.inf
    dirty[6000:6010, :] = -np.inf
    chain = build_chain("low_latency", 4)
    out = np.concatenate([chain.process(dirty[i : i + 256]) for i in range(0, len(x), 256)])
    assert np.all(np.isfinite(out))
    assert chain.bad_samples == 100 + 1 + 40
    # 3 s after the gap the envelope is back on the clean one
    tail = slice(int(4.5 * FS), None)
    np.testing.assert_allclose(out[tail], clean[tail], rtol=1e-3, atol=1e-3 * clean.max())


def test_a_first_chunk_of_only_nan_neither_crashes_nor_poisons() -> None:
    chain = build_chain("mmm", 2)
    y = chain.process(np.full((64, 2), np.nan))
    assert np.all(np.isfinite(y)) and chain.last_bad == 128
    y = chain.process(np.random.default_rng(0).standard_normal((4096, 2)))
    assert np.all(np.isfinite(y)) and chain.last_bad == 0 and chain.bad_samples == 128


@pytest.mark.parametrize("shape", [(32, 21), (32, 23), (32,), (2, 32, 22)])
def test_wrong_channel_count_names_expected_and_received(shape: tuple[int, ...]) -> None:
    chain = build_chain("low_latency", 22)
    with pytest.raises(StreamFormatError, match=r"22 channels.*got shape"):
        chain.process(np.zeros(shape))


def test_empty_chunk_gives_empty_output_and_integer_input_is_accepted() -> None:
    chain = build_chain("low_latency", 3)
    assert chain.process(np.zeros((0, 3))).shape == (0, 3)
    y = chain.process(np.full((100, 3), 2040, dtype=np.int16))
    assert y.dtype == np.float64 and np.all(np.abs(y) < 1e-6)


def test_non_numeric_chunk_is_rejected() -> None:
    with pytest.raises(StreamFormatError, match="numeric"):
        Rectify(1).process(np.array([["a"]]))


# -- derivation and composition ----------------------------------------------------------------


def test_bipolar_derivation_subtracts_labelled_electrodes() -> None:
    stage = BipolarDerivation(["E1", "E2", "E3", "E4"], [("F1", "E1", "E2"), ("F2", "E4", "E3")])
    x = np.arange(12, dtype=float).reshape(3, 4) ** 2
    y = stage.process(x)
    np.testing.assert_array_equal(y, np.stack([x[:, 0] - x[:, 1], x[:, 3] - x[:, 2]], axis=1))
    assert stage.labels == ["F1", "F2"] and stage.n_out == 2 and stage.group_delay_s == 0


def test_bipolar_derivation_names_missing_electrodes() -> None:
    with pytest.raises(StreamFormatError, match=r"\['E9'\].*\['E1', 'E2'\]"):
        BipolarDerivation(["E1", "E2"], [("F1", "E1", "E9")])


def test_chain_dc_delay_sums_stage_delays_and_channel_counts_are_checked() -> None:
    bp, env = band_pass(20, 450, 2, 2, FS), envelope_lowpass(6, 2, 2, FS)
    chain = Chain(
        [
            BipolarDerivation(["a", "b", "c"], [("x", "a", "b"), ("y", "b", "c")]),
            bp,
            Rectify(2),
            env,
        ]
    )
    assert chain.dc_delay_s == pytest.approx(bp.group_delay_s + env.group_delay_s)
    # over the band: the band-pass's energy-weighted delay and the smoother's in-band rise
    assert chain.dc_delay_s + 0.002 < chain.group_delay_s == chain.band_delay_s < 0.045
    assert chain.n_channels == 3 and chain.n_out == 2
    with pytest.raises(ValueError, match="gives 2 channels"):
        Chain([Rectify(2), Rectify(3)])

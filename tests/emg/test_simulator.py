"""EMG simulator: amplitudes, spectrum, hum, determinism, faults, script timing."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import signal

from simulation import (
    EMOTIONS,
    FUNCTIONAL_MOVEMENTS,
    EmgSimulator,
    LiveScript,
    MovementScript,
    SimulatorConfig,
    load_movements,
)
from streaming.acquisition.electrodes import ElectrodeScheme, load_scheme
from streaming.config import ConfigError, validate

FS = 4096


def _sim(**overrides) -> EmgSimulator:
    return EmgSimulator(validate(SimulatorConfig, overrides, "test"))


def _hold(movement: str, **overrides) -> EmgSimulator:
    script = {"kind": "custom", "events": [[movement, 0.0, 100.0]], "ramp_s": 0.0}
    return _sim(script=script, **overrides)


def _rms(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean(np.asarray(x, np.float64) ** 2, axis=0))


def test_movement_library_covers_the_protocol_with_levels_in_0_1() -> None:
    library = load_movements()
    assert set(FUNCTIONAL_MOVEMENTS) | set(EMOTIONS) <= set(library.movements)
    assert not library.levels("Face-At-Rest").any()
    names = library.muscle_names
    smile = library.levels("Smile-Closed")
    assert names[int(np.argmax(smile))] == "zygomaticus_major"  # AU12
    assert smile[names.index("orbicularis_oculi")] > 0  # AU6
    assert names[int(np.argmax(library.levels("Forehead-Raise")))].startswith("frontalis")
    assert names[int(np.argmax(library.levels("Lip-Pucker")))] == "orbicularis_oris"


def test_rest_is_a_few_microvolts_rms_and_contraction_tens_of_microvolts() -> None:
    rest = _sim(script={"kind": "rest"}, hum={"amplitude_uv": 0.0})
    emg, act = rest.generate(2 * FS)
    assert not act.any()
    assert np.all((_rms(emg) > 2.0) & (_rms(emg) < 5.0))

    smile = _hold("Smile-Open", hum={"amplitude_uv": 0.0})
    emg, act = smile.generate(2 * FS)
    rms = dict(zip(smile.labels, _rms(emg), strict=True))
    assert 50 < rms["F19"] < 150 and 50 < rms["F20"] < 150  # zygomaticus major
    assert rms["F1"] < 5  # frontalis stays at rest
    assert rms["F19"] > 10 * rms["F1"]
    zyg_l = smile.muscle_labels.index("zygomaticus_major_l")
    np.testing.assert_allclose(act[:, zyg_l], 0.9)


def test_spectrum_lies_mostly_in_the_20_450_hz_band() -> None:
    emg, _ = _hold("Smile-Open", hum={"amplitude_uv": 0.0}).generate(4 * FS)
    f, psd = signal.welch(emg[:, 18], FS, nperseg=1024)
    total = psd.sum()
    assert psd[(f >= 20) & (f <= 450)].sum() / total > 0.75
    assert psd[f < 10].sum() / total < 0.02
    assert psd[f > 1000].sum() / total < 0.05


def _line_ratio(emg: np.ndarray, freq: float) -> float:
    """PSD at ``freq`` over the mean PSD 3-6 Hz either side (0.5 Hz bins)."""
    f, psd = signal.welch(emg, FS, nperseg=2 * FS)
    near = (np.abs(f - freq) >= 3) & (np.abs(f - freq) <= 6)
    return float(psd[np.argmin(np.abs(f - freq))] / psd[near].mean())


def test_mains_hum_at_the_configured_frequency_only_when_on() -> None:
    for freq in (50.0, 60.0):
        emg, _ = _sim(script={"kind": "rest"}, hum={"frequency_hz": freq}).generate(4 * FS)
        assert _line_ratio(emg[:, 0], freq) > 20
        assert _line_ratio(emg[:, 0], 3 * freq) > 20  # 3rd harmonic
        other = 60.0 if freq == 50.0 else 50.0
        assert _line_ratio(emg[:, 0], other) < 3
    emg, _ = _sim(script={"kind": "rest"}, hum={"amplitude_uv": 0.0}).generate(4 * FS)
    assert _line_ratio(emg[:, 0], 50.0) < 3


def test_spectrum_and_amplitude_statistics_resemble_real_surface_emg(shared_data) -> None:
    """Real biceps sEMG (shared/data/emg/bbcontractions.csv, 1 kHz) during a contraction:
    mean|x|/RMS ~0.78 (near-Gaussian), median frequency ~70 Hz. Facial EMG has its spectral
    humps at 30-65 Hz (van Boxtel 2001): the simulator's peak and median sit in that region."""
    real = np.loadtxt(shared_data / "emg" / "bbcontractions.csv")
    sos = signal.butter(2, [20, 450], btype="bandpass", output="sos", fs=1000)
    contraction = signal.sosfiltfilt(sos, real)[11_000:18_000]
    emg, _ = _hold("Smile-Open", hum={"amplitude_uv": 0.0}).generate(8 * FS)
    sim = emg[:, 18].astype(np.float64)

    def shape(x: np.ndarray, n: int) -> float:
        windows = x[: len(x) // n * n].reshape(-1, n)
        return float(np.median(np.mean(np.abs(windows), 1) / _rms(windows.T)))

    def median_hz(x: np.ndarray, fs: float) -> float:
        f, psd = signal.welch(x, fs, nperseg=int(fs))
        return float(f[np.searchsorted(np.cumsum(psd) / psd.sum(), 0.5)])

    assert abs(shape(sim, FS // 2) - shape(contraction, 500)) < 0.05
    real_mdf, sim_mdf = median_hz(contraction, 1000.0), median_hz(sim, FS)
    assert 50 < real_mdf < 100
    assert 0.8 * real_mdf < sim_mdf < 2.0 * real_mdf
    f, psd = signal.welch(sim, FS, nperseg=FS)
    assert 30 <= f[np.argmax(psd)] <= 100


def test_monopolar_kuramoto_picks_up_more_hum_than_bipolar_fridlund() -> None:
    bipolar, _ = _sim(script={"kind": "rest"}).generate(2 * FS)
    monopolar, _ = _sim(scheme="kuramoto", script={"kind": "rest"}).generate(2 * FS)
    assert monopolar.shape[1] == 21
    assert np.median(_rms(monopolar)) > 2 * np.median(_rms(bipolar))


def test_same_seed_same_output_other_seed_different() -> None:
    a, act_a = _sim(seed=7).generate(FS)
    b, act_b = _sim(seed=7).generate(FS)
    c, _ = _sim(seed=8).generate(FS)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(act_a, act_b)
    assert not np.allclose(a, c)


def test_output_does_not_depend_on_chunking() -> None:
    faults = [
        {"channel": "F3", "kind": "spikes", "rate_hz": 5.0},
        {"channel": "F4", "kind": "dropout"},
    ]
    whole, act_whole = _sim(faults=faults).generate(3 * FS)
    sim = _sim(faults=faults)
    rng = np.random.default_rng(0)
    parts, acts, done = [], [], 0
    while done < 3 * FS:
        n = min(int(rng.integers(1, 900)), 3 * FS - done)
        emg, act = sim.generate(n)
        parts.append(emg)
        acts.append(act)
        done += n
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    np.testing.assert_array_equal(np.concatenate(acts), act_whole)


def test_cross_talk_reaches_neighbours_not_distant_channels() -> None:
    sim = _hold("Smile-Closed", hum={"amplitude_uv": 0.0}, rest_uv=0.0, amplifier_noise_uv=0.0)
    emg, _ = sim.generate(2 * FS)
    rms = dict(zip(sim.labels, _rms(emg), strict=True))
    # zygomaticus (F19) leaks into levator labii (F9, neighbour) but not into frontalis (F1)
    assert rms["F9"] > 0.01 * rms["F19"]
    assert rms["F1"] < 1e-3 * rms["F19"]
    no_talk = _hold("Smile-Closed", hum={"amplitude_uv": 0.0}, rest_uv=0.0,
                    amplifier_noise_uv=0.0, crosstalk=0.0)  # fmt: skip
    emg, _ = no_talk.generate(FS)
    assert _rms(emg)[sim.labels.index("F9")] == 0.0


def test_weak_side_gain_emulates_a_one_sided_palsy() -> None:
    sim = _hold("Smile-Open", hum={"amplitude_uv": 0.0}, left_gain=0.2)
    emg, act = sim.generate(2 * FS)
    rms = _rms(emg)
    assert rms[sim.labels.index("F20")] < 0.35 * rms[sim.labels.index("F19")]  # F20 = left
    assert act[:, sim.muscle_labels.index("zygomaticus_major_l")].max() == pytest.approx(0.18)


def test_faults_appear_only_where_and_when_configured() -> None:
    faults = [
        {"channel": "F1", "kind": "flat", "start_s": 1.0, "duration_s": 1.0},
        {"channel": "F2", "kind": "railed", "start_s": 0.5, "amplitude_uv": 800.0},
        {"channel": "F3", "kind": "spikes", "rate_hz": 4.0, "amplitude_uv": 1000.0},
        {"channel": "F4", "kind": "dropout", "rate_hz": 3.0, "event_s": 0.02},
    ]
    sim = _sim(script={"kind": "rest"}, faults=faults)
    emg, _ = sim.generate(3 * FS)
    idx = sim.labels.index
    assert np.all(emg[FS : 2 * FS, idx("F1")] == 0.0)
    assert np.all(emg[: FS - 1, idx("F1")] != 0.0)
    assert np.all(np.abs(emg[FS // 2 :, idx("F2")]) <= 800.0)
    assert np.mean(np.abs(emg[FS // 2 :, idx("F2")]) == 800.0) > 0.5
    assert np.abs(emg[: FS // 2, idx("F2")]).max() < 50
    assert np.abs(emg[:, idx("F3")]).max() > 500
    nan = np.isnan(emg)
    assert nan[:, idx("F4")].any() and nan[:, idx("F4")].mean() < 0.3
    assert not np.delete(nan, idx("F4"), axis=1).any()
    untouched = [i for i, lab in enumerate(sim.labels) if lab not in ("F1", "F2", "F3", "F4")]
    assert np.abs(emg[:, untouched]).max() < 50


def test_fault_on_unknown_channel_or_unknown_movement_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown channel 'F99'"):
        _sim(faults=[{"channel": "F99", "kind": "flat"}])
    with pytest.raises(ConfigError, match="unknown movement"):
        _sim(script={"kind": "custom", "events": [["Moonwalk", 0.0, 1.0]]})
    with pytest.raises(ConfigError, match="kind"):
        _sim(faults=[{"channel": "F1", "kind": "melted"}])


def test_protocol_script_has_movements_x3_then_emotions_x4_in_seeded_random_order() -> None:
    script = MovementScript.from_protocol(seed=3)
    names = [e.movement for e in script.events]
    assert names[:33] == [m for m in FUNCTIONAL_MOVEMENTS for _ in range(3)]
    emotions = names[33:]
    assert sorted(emotions) == sorted(list(EMOTIONS) * 4)
    assert emotions == [e.movement for e in MovementScript.from_protocol(seed=3).events[33:]]
    assert emotions != [e.movement for e in MovementScript.from_protocol(seed=4).events[33:]]
    assert [e.repetition for e in script.events[:3]] == [1, 2, 3]
    starts = [e.start_s for e in script.events]
    assert starts == sorted(starts) and script.duration_s >= script.events[-1].end_s


def test_protocol_script_matches_the_protocol_node_schedule() -> None:
    """Same seed, same protocol file: the simulator performs what the protocol node instructs."""
    from streaming.acquisition.protocol import build_schedule, load_protocol

    for seed in (0, 5):
        steps = build_schedule(load_protocol(None, [f"seed={seed}"]))
        performed = [(s.movement, s.repetition, s.start_s, s.duration_s)
                     for s in steps if s.phase == "perform"]  # fmt: skip
        script = MovementScript.from_protocol(seed=seed)
        simulated = [(e.movement, e.repetition, e.start_s, e.duration_s) for e in script.events]
        assert [x[:2] for x in simulated] == [x[:2] for x in performed]
        np.testing.assert_allclose([x[2:] for x in simulated], [x[2:] for x in performed])


def test_activation_ramps_smoothly_in_and_out() -> None:
    library = load_movements()
    script = MovementScript.from_list([("Forehead-Raise", 1.0, 2.0)], ramp_s=0.4)
    t = np.arange(0, 4, 1 / FS)
    act = script.activation(t, library, loop=False)[
        :, library.muscle_names.index("frontalis_medialis")
    ]
    assert act[t < 1.0].max() == 0.0 and act[t >= 3.0].max() == 0.0
    np.testing.assert_allclose(act[(t > 1.4) & (t < 2.6)], 0.8)
    assert np.max(np.abs(np.diff(act))) < 0.8 * np.pi / (2 * 0.4 * FS) * 1.01  # no step
    assert script.event_at(2.0).movement == "Forehead-Raise" and script.event_at(0.5) is None


def test_generates_22_and_64_channels_far_faster_than_real_time() -> None:
    base = load_scheme("fridlund")
    grid = ElectrodeScheme(
        name="grid64",
        montage="monopolar",
        channels=[
            {"label": f"E{i + 1}", "side": "midline", "position": (x, y)}
            for i, (x, y) in enumerate(
                np.stack(np.meshgrid(np.linspace(-0.7, 0.7, 8), np.linspace(-0.8, 0.7, 8)), -1)
                .reshape(-1, 2).tolist()
            )
        ],
    )  # fmt: skip
    for scheme in (base, grid):
        sim = EmgSimulator(SimulatorConfig(), scheme=scheme)
        start = time.process_time()  # CPU time: other work on a loaded machine does not count
        for _ in range(20):
            emg, _ = sim.generate(FS // 4)
        elapsed = time.process_time() - start
        assert emg.shape == (FS // 4, len(scheme))
        # 5 s of signal in under half of real time (the figure itself: benchmarks.emg_simulator)
        assert elapsed < 5.0 / 2


def test_live_script_starts_and_stops_movements_as_markers_arrive() -> None:
    library = load_movements()
    zyg = library.muscle_names.index("zygomaticus_major")
    script = LiveScript(ramp_s=0.2, intensity_jitter=0.0)
    t = np.arange(0, 6, 1 / FS)
    assert not script.activation(t, library).any()
    script.start("Smile-Closed", 1.0)
    open_ended = script.activation(t, library)[:, zyg]
    assert open_ended[t < 1.0].max() == 0.0 and np.all(open_ended[t > 1.2] == pytest.approx(0.6))
    script.stop(3.0)
    act = script.activation(t, library)[:, zyg]
    assert np.all(act[(t > 1.2) & (t < 3.0)] == pytest.approx(0.6))
    assert act[t >= 3.2].max() == 0.0 and 0 < act[np.searchsorted(t, 3.1)] < 0.6
    script.start("Forehead-Raise", 4.0)
    script.start("happy", 5.0)  # a new start ends the open movement
    assert [e.movement for e in script.events] == ["Smile-Closed", "Forehead-Raise", "happy"]
    assert script.events[1].end_s == 5.0 and script.event_at(5.5).movement == "happy"
    script.prune(4.0)
    assert [e.movement for e in script.events] == ["Forehead-Raise", "happy"]

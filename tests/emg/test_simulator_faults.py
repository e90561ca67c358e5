"""EMG simulator, contact faults (issue 21, item 3): mains hum on one electrode, a gel bridge
between neighbours, an electrode lifting off; and the truth that announces every fault, so a
quality detector can be scored against it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from simulation import FAULT_CODES, EmgSimulator, SimulatorConfig
from simulation.emg_config import fault_kinds
from simulation.live import chunk_fault_codes, truth_labels
from streaming.config import ConfigError, load_config, validate

FS = 4096
QUIET = {"hum": {"amplitude_uv": 0.0}, "rest_uv": 0.0, "amplifier_noise_uv": 0.0}


def _sim(**overrides) -> EmgSimulator:
    return EmgSimulator(validate(SimulatorConfig, overrides, "test"))


def _hold(movement: str, **overrides) -> EmgSimulator:
    script = {"kind": "custom", "events": [[movement, 0.0, 100.0]], "ramp_s": 0.0}
    return _sim(script=script, **overrides)


def _band(x: np.ndarray) -> np.ndarray:
    """The EMG band (20-450 Hz) with the 50 Hz mains and harmonics notched out: what a
    bridge detector compares, so that the shared hum does not correlate every channel."""
    y = signal.sosfiltfilt(signal.butter(4, [20, 450], "bandpass", fs=FS, output="sos"),
                           np.asarray(x, np.float64), axis=0)  # fmt: skip
    for f in (50.0, 100.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0):
        b, a = signal.iirnotch(f, 30.0, FS)
        y = signal.filtfilt(b, a, y, axis=0)
    return y


def _power_at(x: np.ndarray, freq: float) -> float:
    """PSD (1 Hz bins) at ``freq``."""
    f, psd = signal.welch(np.asarray(x, np.float64), FS, nperseg=FS)
    return float(psd[np.argmin(np.abs(f - freq))])


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)))


# window deliberately off any chunk or second boundary: start sample 2990, stop 2990 + 5325
START_S, DURATION_S = 0.73, 1.3
START, STOP = round(START_S * FS), round(START_S * FS) + round(DURATION_S * FS)


@pytest.mark.parametrize(
    ("fault", "changed"),
    [
        ({"channel": "F5", "kind": "hum", "amplitude_uv": 20.0}, {"F5"}),
        ({"channel": "F5", "kind": "bridge", "partner": "F7"}, {"F5", "F7"}),
        ({"channel": "F5", "kind": "lifting", "ramp_s": 0.5}, {"F5"}),
        ({"channel": "F1", "kind": "misplaced"}, {"F1"}),
    ],
)
def test_a_contact_fault_changes_its_channels_only_inside_its_window(fault, changed) -> None:
    """Against the same seed without the fault: every other channel is bit-identical, and the
    fault's channels differ only on samples [round(start_s fs), + round(duration_s fs))."""
    window = {"start_s": START_S, "duration_s": DURATION_S}
    clean, _ = _hold("Eye-Tight").generate(3 * FS)
    sim = _hold("Eye-Tight", faults=[{**fault, **window}])
    faulty, _ = sim.generate(3 * FS)
    differs = faulty != clean
    columns = {sim.labels[c] for c in np.flatnonzero(differs.any(axis=0))}
    assert columns == changed
    rows = np.flatnonzero(differs.any(axis=1))
    assert rows.min() >= START and rows.max() == STOP - 1
    for label in changed:  # lifting starts at full contact: its first sample is the clean one
        assert differs[START + 1 : STOP, sim.labels.index(label)].all()


def test_hum_raises_its_channels_mains_power_far_above_the_shared_hum() -> None:
    """20 uV of hum on F5 over the shared 2 uV (x0.5..1.5 per channel): its 50 Hz power rises by
    at least (20 / 3 - 1)^2 = 32x (the least, were the shared hum 3 uV and in antiphase), at the
    harmonics too, and only on F5; the frequency follows the simulator's HumConfig."""
    sim = _sim(script={"kind": "rest"},
               faults=[{"channel": "F5", "kind": "hum", "start_s": 2.0, "amplitude_uv": 20.0}])  # fmt: skip
    emg, _ = sim.generate(4 * FS)
    before, during = emg[: 2 * FS], emg[2 * FS :]
    f5 = sim.labels.index("F5")
    for freq in (50.0, 150.0):  # fundamental, 3rd harmonic (0.4 of it)
        assert _power_at(during[:, f5], freq) > 32 * _power_at(before[:, f5], freq)
        others = [_power_at(during[:, c], freq) for c in range(sim.n_channels) if c != f5]
        assert _power_at(during[:, f5], freq) > 32 * max(others)
    us = _sim(script={"kind": "rest"}, hum={"frequency_hz": 60.0, "amplitude_uv": 0.0},
              faults=[{"channel": "F5", "kind": "hum", "amplitude_uv": 20.0}])  # fmt: skip
    emg, _ = us.generate(2 * FS)
    assert _power_at(emg[:, f5], 60.0) > 1000 * _power_at(emg[:, f5], 50.0)


def test_a_misplaced_electrode_stays_at_rest_while_its_muscle_works() -> None:
    """F19 (right zygomaticus) off its muscle in Smile-Open: its RMS is the resting face's (rest
    tone, amplifier noise, hum: a few uV, not flat), while F20 over the left zygomaticus smiles
    at tens of uV; the truth announces it with code 128."""
    fault = {"channel": "F19", "kind": "misplaced", "start_s": 1.0}
    sim = _hold("Smile-Open", faults=[fault])
    emg, _ = sim.generate(3 * FS)
    f19, f20 = sim.labels.index("F19"), sim.labels.index("F20")
    rest, _ = _sim(script={"kind": "rest"}).generate(3 * FS)
    assert _rms(emg[:FS, f19]) > 10 * _rms(emg[FS:, f19])  # smiling, then not
    assert _rms(emg[FS:, f19]) == pytest.approx(_rms(rest[FS:, f19]), rel=0.3)
    assert 1.0 < _rms(emg[FS:, f19]) < 6.0 and _rms(emg[FS:, f20]) > 30.0
    assert FAULT_CODES["misplaced"] == 128
    assert sim.active_faults(FS, 2 * FS)["F19"] == ("misplaced",)


@pytest.mark.parametrize(("movement", "unbridged_max"), [("Face-At-Rest", 0.3), ("Eye-Tight", 0.8)])
def test_bridged_neighbours_carry_one_signal_in_the_emg_band(movement, unbridged_max) -> None:
    """A gel bridge F5 (corrugator) - F7 (depressor supercilii): in the EMG band, mains notched,
    the two correlate > 0.95 while bridged (at rest their own amplifier noise is all that
    differs), and not before. Every other pair stays below ``unbridged_max``: near 0 at rest;
    up to ~0.75 in a movement, from the simulator's cross-talk (neighbouring channels see the
    same active muscle), so a bridge is told from cross-talk by r near 1, best at rest."""
    sim = _hold(movement, faults=[{"channel": "F5", "kind": "bridge", "partner": "F7",
                                   "start_s": 2.0}])  # fmt: skip
    emg, _ = sim.generate(4 * FS)
    f5, f7 = sim.labels.index("F5"), sim.labels.index("F7")
    before = np.corrcoef(_band(emg[FS // 2 : 2 * FS]).T)
    during = np.corrcoef(_band(emg[2 * FS + FS // 2 :]).T)
    assert during[f5, f7] > 0.95
    assert before[f5, f7] < unbridged_max
    others = np.abs(during - np.eye(sim.n_channels))
    others[f5, f7] = others[f7, f5] = 0.0
    assert others.max() < unbridged_max


def test_lifting_fades_the_emg_and_ends_as_an_open_input_of_noise_and_hum() -> None:
    """Over ramp_s the lifted fraction p goes 0 -> 1 linearly: the channel's EMG is scaled by
    1 - p while p times an open input (broadband noise of noise_uv RMS plus hum of amplitude_uv)
    is added; after the ramp only the open input remains, until the fault ends."""
    lift = {"channel": "F19", "kind": "lifting", "start_s": 1.0, "ramp_s": 2.0, "duration_s": 3.0}
    z = _hold("Smile-Open").labels.index("F19")
    # the EMG's gain: with a vanishing open input, the lifted channel is (1 - p) x the clean one
    clean, _ = _hold("Smile-Open").generate(5 * FS)
    faded, _ = _hold("Smile-Open", faults=[{**lift, "noise_uv": 1e-9, "amplitude_uv": 1e-9}]).generate(5 * FS)  # fmt: skip
    t = np.arange(5 * FS) / FS
    p = np.clip((t - 1.0) / 2.0, 0.0, 1.0) * (t < 4.0)
    np.testing.assert_allclose(faded[:, z], (1 - p) * clean[:, z], rtol=1e-5, atol=1e-3)
    # the open input alone (nothing else on the channel): its RMS grows with p
    sim = _sim(script={"kind": "rest"}, **QUIET,
               faults=[{**lift, "noise_uv": 50.0, "amplitude_uv": 100.0}])  # fmt: skip
    emg, _ = sim.generate(5 * FS)
    x = emg[:, z].astype(np.float64)
    hum_rms = 100.0 * np.sqrt((1 + 0.2**2 + 0.4**2 + 0.1**2) / 2)  # HumConfig harmonics
    full = np.hypot(50.0, hum_rms)
    quarters = [_rms(x[round((1.0 + q / 2) * FS) : round((1.5 + q / 2) * FS)]) for q in range(4)]
    # p rises a -> b over a quarter: the RMS of p there is sqrt((a^2 + a b + b^2) / 3)
    expected = [full * np.sqrt((q**2 + q * (q + 1) + (q + 1) ** 2) / 3) / 4 for q in range(4)]
    np.testing.assert_allclose(quarters, expected, rtol=0.1)
    assert _rms(x[3 * FS : 4 * FS]) == pytest.approx(full, rel=0.05)  # open input
    assert not x[:FS].any() and not x[4 * FS :].any()  # before and after: nothing
    # broadband: apart from the mains lines, the open input's power is flat up to Nyquist
    f, psd = signal.welch(x[3 * FS : 4 * FS], FS, nperseg=FS // 4)
    lines = np.min(np.abs(f[:, None] - 50.0 * np.arange(1, 5)[None, :]), axis=1) < 20
    assert psd[~lines & (f > 500)].sum() / psd[~lines].sum() > 0.6


def test_bridge_and_lifting_settings_are_checked_with_errors_that_say_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match=r"bridge fault on 'F5' needs partner"):
        _sim(faults=[{"channel": "F5", "kind": "bridge"}])
    with pytest.raises(ConfigError, match=r"partner 'F5' must be another channel"):
        _sim(faults=[{"channel": "F5", "kind": "bridge", "partner": "F5"}])
    with pytest.raises(ConfigError, match=r"unknown partner channel 'F99'.*'fridlund'"):
        _sim(faults=[{"channel": "F5", "kind": "bridge", "partner": "F99"}])
    with pytest.raises(ConfigError, match=r"partner is for bridge faults only, not 'hum'"):
        _sim(faults=[{"channel": "F5", "kind": "hum", "partner": "F7"}])
    with pytest.raises(ConfigError, match=r"faults\.0\.ramp_s"):
        _sim(faults=[{"channel": "F5", "kind": "lifting", "ramp_s": 0.0}])


def test_faults_are_switched_per_channel_from_the_toml_config(tmp_path) -> None:
    path = tmp_path / "sim.toml"
    path.write_text(
        '[[faults]]\nchannel = "F5"\nkind = "hum"\namplitude_uv = 30.0\n\n'
        '[[faults]]\nchannel = "F9"\nkind = "bridge"\npartner = "F19"\nstart_s = 1.0\n\n'
        '[[faults]]\nchannel = "F11"\nkind = "lifting"\nstart_s = 2.0\nramp_s = 5.0\n'
    )
    sim = EmgSimulator(load_config(SimulatorConfig, path))
    assert [(w.kind, w.channels, w.start, w.stop) for w in sim.fault_windows()] == [
        ("hum", ("F5",), 0, None),
        ("bridge", ("F9", "F19"), FS, None),
        ("lifting", ("F11",), 2 * FS, None),
    ]


def test_output_with_contact_faults_does_not_depend_on_chunking() -> None:
    faults = [
        {"channel": "F5", "kind": "hum", "start_s": 0.3, "duration_s": 1.1},
        {"channel": "F9", "kind": "bridge", "partner": "F19", "start_s": 0.9},
        {"channel": "F11", "kind": "lifting", "start_s": 0.2, "ramp_s": 1.5},
        {"channel": "F19", "kind": "dropout", "rate_hz": 4.0},  # NaN runs cross the bridge
        {"channel": "F3", "kind": "spikes", "rate_hz": 5.0},
    ]
    whole, _ = _hold("Smile-Open", faults=faults).generate(3 * FS)
    sim = _hold("Smile-Open", faults=faults)
    rng = np.random.default_rng(1)
    parts, done = [], 0
    while done < 3 * FS:
        n = min(int(rng.integers(1, 900)), 3 * FS - done)
        parts.append(sim.generate(n)[0])
        done += n
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_the_truth_names_each_fault_on_its_channels_from_its_first_sample_to_its_last() -> None:
    """``fault_codes`` marks exactly [start, stop) on the fault's channels (both, for a bridge)
    with its FAULT_CODES bit, overlapping faults OR together; ``active_faults`` names the kinds
    per channel; both are pure: asking does not move the simulator."""
    faults = [
        {"channel": "F5", "kind": "hum", "start_s": START_S, "duration_s": DURATION_S},
        {"channel": "F5", "kind": "bridge", "partner": "F7", "start_s": 1.0},
        {"channel": "F11", "kind": "lifting", "start_s": 0.5, "ramp_s": 1.0, "duration_s": 2.0},
        {"channel": "F3", "kind": "spikes", "start_s": 0.1, "duration_s": 0.2},
    ]
    sim = _sim(faults=faults)
    codes = sim.fault_codes(0, 3 * FS)
    idx = sim.labels.index
    hum, bridge, lifting = FAULT_CODES["hum"], FAULT_CODES["bridge"], FAULT_CODES["lifting"]
    expected = np.zeros_like(codes)
    expected[START:STOP, idx("F5")] |= hum
    expected[FS:, [idx("F5"), idx("F7")]] |= bridge
    expected[FS // 2 : FS // 2 + 2 * FS, idx("F11")] |= lifting
    expected[round(0.1 * FS) : round(0.1 * FS) + round(0.2 * FS), idx("F3")] |= FAULT_CODES[
        "spikes"
    ]
    np.testing.assert_array_equal(codes, expected)
    np.testing.assert_array_equal(sim.fault_codes(START - 1, START + 1)[:, idx("F5")], [0, hum])
    assert fault_kinds(codes[FS + 1, idx("F5")]) == ("hum", "bridge")
    active = sim.active_faults(STOP - 1, STOP + 1)
    assert active["F5"] == ("hum", "bridge") and active["F7"] == ("bridge",)
    assert active["F11"] == ("lifting",) and active["F3"] == () and active["F1"] == ()
    assert sim.active_faults(STOP, STOP + 1)["F5"] == ("bridge",)
    assert sim.sample_index == 0
    emg, _ = sim.generate(FS)
    np.testing.assert_array_equal(emg, _sim(faults=faults).generate(FS)[0])


def test_truth_stream_rows_carry_a_fault_column_per_channel_after_the_activations() -> None:
    """The live truth row layout: ``sample_index``, the activations where they always were, then
    ``fault_<channel>``: per 32-sample chunk, the OR of its samples' codes (a fault that starts
    inside a chunk marks that chunk)."""
    sim = _sim(faults=[{"channel": "F5", "kind": "hum", "start_s": START_S,
                        "duration_s": DURATION_S}])  # fmt: skip
    labels = truth_labels(sim)
    n_mu = len(sim.muscle_labels)
    assert labels[: 1 + n_mu] == ["sample_index", *sim.muscle_labels]
    assert labels[1 + n_mu :] == [f"fault_{c}" for c in sim.labels]
    per_chunk = chunk_fault_codes(sim, 0, 3 * FS // 32, 32)[:, sim.labels.index("F5")]
    marked = np.flatnonzero(per_chunk)
    assert marked[0] == START // 32 and marked[-1] == (STOP - 1) // 32
    assert np.all(per_chunk[marked[0] : marked[-1] + 1] == FAULT_CODES["hum"])
    assert not chunk_fault_codes(sim, 0, 3 * FS // 32, 32)[:, sim.labels.index("F6")].any()

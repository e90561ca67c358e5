"""Specifications of the per-channel EMG quality monitor (streaming.dsp.quality, issue 21 item 1).

Truth: the EMG simulator's own electrode faults, all seven kinds (flat, railed, spikes, dropout,
hum, bridge, lifting), at amplitudes a lab sees (hum of 60 uV on a poor contact, a lifting
electrode that comes off over 6 s into 50 uV of noise and 100 uV of hum), scored against the
simulator's fault windows (``EmgSimulator.fault_windows``). The participant performs protocol
movements through the faults, announced to the monitor as the protocol node's markers would. Every fault must be
flagged on its channel within 2 s of its start and cleared within 2 s of its end; no clean channel
may ever be ``bad``.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from configs import config_path
from simulation.emg import EmgSimulator, FaultConfig, ScriptConfig, SimulatorConfig
from streaming.dsp.quality import (
    BAD,
    GOOD,
    METRICS,
    QualityMonitor,
    QualityReport,
    channel_targets,
    nearest_neighbours,
)
from streaming.dsp.quality_config import QualityConfig, load_quality_config
from streaming.errors import StreamFormatError
from streaming.pipeline.biofeedback import load_movement_levels

FS = 4096.0
DETECT_S = 2.0  # the limit for flagging and for clearing
# movements through the faults (movement, start_s, duration_s): the face is busy all along
EVENTS = [
    ("Smile-Open", 3.0, 3.5),
    ("Forehead-Raise", 8.0, 3.5),
    ("Snarl", 13.0, 3.5),
    ("Lip-Pucker", 18.0, 3.5),
    ("Eye-Tight", 23.0, 3.5),
    ("Depress-Lip", 28.0, 3.5),
]
SECONDS = 34.0
FAULT = (10.0, 22.0)  # start, end (s)


def simulator(faults: list[FaultConfig] = (), seed: int = 3) -> EmgSimulator:
    script = ScriptConfig(kind="custom", events=EVENTS, loop=False)
    return EmgSimulator(SimulatorConfig(seed=seed, script=script, faults=list(faults)))


def monitor(sim: EmgSimulator, config: QualityConfig | None = None) -> QualityMonitor:
    scheme = sim.scheme
    return QualityMonitor(
        scheme.labels,
        sim.rate_hz,
        config if config is not None else load_quality_config(),
        neighbours=nearest_neighbours(scheme.labels, scheme.positions, k=4),
        channel_targets=channel_targets(
            load_movement_levels(config_path("movements.toml")), scheme.muscles
        ),
    )


def markers(sim: EmgSimulator) -> list[tuple[int, str | None]]:
    """The protocol's start/stop markers as sample indices."""
    marks = []
    for e in sim.script.events:
        marks += [(round(e.start_s * FS), e.movement), (round(e.end_s * FS), None)]
    return sorted(marks, key=lambda m: m[0])


def run(
    mon: QualityMonitor,
    x: np.ndarray,
    marks: list[tuple[int, str | None]] = (),
    chunks: list[slice] | None = None,
) -> list[QualityReport]:
    """Feed ``x`` in ``chunks`` (default 32 samples, as an amplifier delivers), announcing each
    marker before the chunk that holds its sample."""
    chunks = chunks or [slice(i, i + 32) for i in range(0, len(x), 32)]
    pending = list(marks)
    reports = []
    for sl in chunks:
        while pending and pending[0][0] < sl.stop:
            at, movement = pending.pop(0)
            mon.set_movement(movement, at_sample=at)
        reports += mon.process_all(x[sl], t_lsl_end=100.0 + (sl.stop - 1) / FS)
    return reports


def clean_signal(seconds: float = SECONDS, seed: int = 3) -> tuple[EmgSimulator, np.ndarray]:
    sim = simulator(seed=seed)
    return sim, sim.generate(round(seconds * FS))[0].astype(np.float64)


def times(reports: list[QualityReport]) -> np.ndarray:
    return np.array([r.sample_index / FS for r in reports])


def flagged(reports: list[QualityReport], label: str, reason: str) -> np.ndarray:
    """Per report: is ``label`` not good with a reason starting with ``reason``?"""
    return np.array(
        [
            r.state(label) != GOOD and any(x.startswith(reason) for x in r.reasons_of(label))
            for r in reports
        ]
    )


def assert_flagged_and_cleared(
    reports: list[QualityReport],
    label: str,
    reason: str,
    start_s: float,
    end_s: float,
    *,
    onset_s: float | None = None,
) -> None:
    """Flagged from at most 2 s after the start (``onset_s``: of a fault whose first sign comes
    later, e.g. the first motion spike) until the end, and clear from 2 s after the end on."""
    t, f = times(reports), flagged(reports, label, reason)
    first = t[f & (t >= start_s)]
    assert first.size, f"{label}: {reason} never flagged"
    assert first[0] - (onset_s if onset_s is not None else start_s) <= DETECT_S, (
        f"{label}: {reason} flagged {first[0] - start_s:.2f} s after the start"
    )
    held = f[(t >= first[0]) & (t <= end_s)]
    assert held.mean() >= 0.9, f"{label}: {reason} held in only {held.mean():.0%} of the fault"
    after = t >= end_s + DETECT_S
    assert not f[after].any(), f"{label}: {reason} still flagged at {t[after & f][:3]} s"
    assert all(r.state(label) == GOOD for r, a in zip(reports, after, strict=True) if a), (
        f"{label} not good 2 s after its fault ended"
    )


def assert_never_bad(reports: list[QualityReport], exclude: set[str]) -> None:
    bad = {(lab, r.sample_index / FS) for r in reports for lab in r.bad_channels}
    bad = sorted((lab, t) for lab, t in bad if lab not in exclude)
    assert not bad, f"clean channels bad: {bad[:5]}"


def test_a_clean_session_with_movements_is_good_throughout() -> None:
    sim, x = clean_signal()
    reports = run(monitor(sim), x, markers(sim))
    assert len(reports) == round(SECONDS / 0.5)
    not_good = {(lab, s) for r in reports for lab, s in zip(r.channels, r.states, strict=True)}
    assert {s for _, s in not_good} == {GOOD}, sorted(x for x in not_good if x[1] != GOOD)[:5]
    # the rest baseline is the simulator's resting tone (3 uV) plus amplifier noise (0.5 uV)
    rest = np.array(reports[-1].metrics["rest_rms_uv"])
    assert np.all((rest > 2.0) & (rest < 4.0)), rest
    assert reports[-1].mains_hz == 50.0


@pytest.mark.parametrize(
    ("kind", "reason", "extra"),
    [
        ("flat", "flat", {}),
        ("railed", "railed", {}),
        ("spikes", "motion", {"rate_hz": 3.0}),
        ("dropout", "nan", {"rate_hz": 3.0}),
    ],
)
def test_each_simulated_fault_is_flagged_on_its_channel_and_cleared(
    kind: str, reason: str, extra: dict
) -> None:
    label = "F12"  # orbicularis oris: active in Snarl and Lip-Pucker during the fault
    start, end = FAULT
    fault = FaultConfig(channel=label, kind=kind, start_s=start, duration_s=end - start, **extra)
    sim = simulator([fault])
    x = sim.generate(round(SECONDS * FS))[0].astype(np.float64)
    reports = run(monitor(sim), x, markers(sim))
    onset = None
    if kind in ("spikes", "dropout"):  # intermittent: flagged from its first event
        bad = ~np.isfinite(x[:, 11]) if kind == "dropout" else np.abs(np.diff(x[:, 11])) > 100
        onset = np.flatnonzero(bad)[0] / FS
    assert_flagged_and_cleared(reports, label, reason, start, end, onset_s=onset)
    assert_never_bad(reports, exclude={label})


def fault_window_s(sim: EmgSimulator, kind: str) -> tuple[float, float]:
    """The simulator's own window of its (one) fault of ``kind``, in seconds."""
    (window,) = [w for w in sim.fault_windows() if w.kind == kind]
    return window.start / FS, window.stop / FS


def faulty_run(fault: FaultConfig) -> tuple[EmgSimulator, list[QualityReport]]:
    sim = simulator([fault])
    x = sim.generate(round(SECONDS * FS))[0].astype(np.float64)
    return sim, run(monitor(sim), x, markers(sim))


def test_mains_hum_on_one_channel_is_flagged_there_only() -> None:
    start, end = FAULT  # F4, frontalis lateralis: contracts in Forehead-Raise at 10 s
    fault = FaultConfig(channel="F4", kind="hum", start_s=start, duration_s=end - start,
                        amplitude_uv=60.0)  # fmt: skip
    sim, reports = faulty_run(fault)
    assert fault_window_s(sim, "hum") == (start, end)
    assert_flagged_and_cleared(reports, "F4", "mains", *fault_window_s(sim, "hum"))
    assert_never_bad(reports, exclude={"F4"})
    others = [lab for lab in sim.labels if lab != "F4"]
    assert not any(flagged(reports, lab, "mains").any() for lab in others)
    mid = reports[round(16.0 / 0.5)]
    assert mid.metric("mains_db", "F4") > 10.0 and mid.metric("mains_uv", "F4") > 20.0


def test_a_gel_bridge_names_the_partner_on_both_channels() -> None:
    start, end = FAULT  # orbicularis oculi / zygomaticus, face neighbours
    fault = FaultConfig(channel="F17", kind="bridge", partner="F19", start_s=start,
                        duration_s=end - start)  # fmt: skip
    sim, reports = faulty_run(fault)
    assert "F19" in nearest_neighbours(sim.labels, sim.scheme.positions)["F17"]
    window = fault_window_s(sim, "bridge")
    assert_flagged_and_cleared(reports, "F17", "bridged:F19", *window)
    assert_flagged_and_cleared(reports, "F19", "bridged:F17", *window)
    assert_never_bad(reports, exclude={"F17", "F19"})
    assert reports[round(16.0 / 0.5)].metric("bridge_corr", "F17") > 0.97


def test_a_lifting_electrode_is_flagged_as_it_comes_off_and_cleared_when_pressed_back() -> None:
    start, end = FAULT  # F9, levator labii: drives Snarl (13 s) and Lip-Pucker (18 s)
    fault = FaultConfig(channel="F9", kind="lifting", start_s=start, duration_s=end - start,
                        ramp_s=6.0, noise_uv=50.0, amplitude_uv=100.0)  # fmt: skip
    sim, reports = faulty_run(fault)
    assert_flagged_and_cleared(reports, "F9", "noise", *fault_window_s(sim, "lifting"))
    assert reports[round(20.0 / 0.5)].state("F9") == BAD  # an open input
    assert_never_bad(reports, exclude={"F9"})


def test_a_channel_silent_in_a_movement_that_drives_its_muscle_is_checked() -> None:
    sim, x = clean_signal()
    # the right zygomaticus electrode sees only resting tone: a channel of a resting face
    rest = EmgSimulator(SimulatorConfig(seed=11, script=ScriptConfig(kind="rest")))
    ch = sim.labels.index("F19")
    x[:, ch] = rest.generate(len(x))[0][:, ch]
    reports = run(monitor(sim), x, markers(sim))
    t, f = times(reports), flagged(reports, "F19", "silent")
    # Smile-Open (3-6.5 s) drives zygomaticus at 0.9: judged from 1.5 s into the movement
    assert f[(t >= 4.5) & (t <= 6.5)].any()
    assert not flagged(reports, "F20", "silent").any()  # its partner smiles
    assert all(r.state("F19") != BAD for r in reports)  # a suspicion, not a verdict
    snr = reports[round(5.5 / 0.5)].metrics["activity_snr_db"]
    assert snr[ch] < 3.0 < snr[sim.labels.index("F20")]


def test_railed_at_a_declared_range_counts_samples_at_the_range() -> None:
    sim, x = clean_signal(12.0)
    ch = sim.labels.index("F5")
    x[4 * 4096 : 8 * 4096, ch] = np.clip(40.0 * x[4 * 4096 : 8 * 4096, ch], -100.0, 100.0)
    mon = QualityMonitor(sim.labels, FS, neighbours=None, range_uv=100.0)
    reports = run(mon, x)
    assert_flagged_and_cleared(reports, "F5", "railed", 4.0, 8.0)
    assert reports[12].metric("railed_fraction", "F5") > 0.02


def test_reports_do_not_depend_on_the_chunking() -> None:
    sim = simulator([FaultConfig(channel="F3", kind="dropout", start_s=2.0, rate_hz=4.0)])
    x = sim.generate(round(8.0 * FS))[0].astype(np.float64)
    marks = [(round(3.1 * FS), "Smile-Open"), (round(6.2 * FS), None)]
    rng = np.random.default_rng(0)
    cuts = np.cumsum(rng.integers(1, 3000, size=200))
    cuts = np.concatenate([[0], cuts[cuts < len(x)], [len(x)]])
    chunkings = [
        None,
        [slice(int(a), int(b)) for a, b in itertools.pairwise(cuts)],
        [slice(0, len(x))],
    ]
    results = [run(monitor(sim), x, marks, chunks) for chunks in chunkings]
    ref = [r.to_dict() for r in results[0]]
    assert len(ref) == 16
    assert any(r["states"] != ["good"] * 22 for r in ref)  # the dropout is seen
    t_ref = [r.pop("t_lsl") for r in ref]
    for other in results[1:]:
        got = [r.to_dict() for r in other]
        assert [r.pop("t_lsl") for r in got] == pytest.approx(t_ref, abs=1e-9)
        assert json.dumps(got) == json.dumps(ref)  # bit for bit (NaN included)


def test_a_report_is_plain_data_and_round_trips() -> None:
    sim, x = clean_signal(2.0)
    report = monitor(sim).process(x, t_lsl_end=50.0)
    assert report is not None and report.t_lsl == pytest.approx(50.0 - 0.0 / FS)
    data = report.to_dict()
    text = json.dumps(data)  # only lists, floats, ints, strings, None
    assert QualityReport.from_dict(json.loads(text)) == report
    assert set(data["metrics"]) == set(METRICS)
    assert all(len(v) == 22 for v in data["metrics"].values())


def test_process_returns_a_report_every_update_and_none_between() -> None:
    sim, x = clean_signal(1.2)
    mon = monitor(sim)
    got = [mon.process(x[i : i + 1024]) for i in range(0, 4 * 1024, 1024)]
    assert [g is None for g in got] == [True, False, True, False]
    assert got[1].sample_index == 2048 and got[3].sample_index == 4096


def test_bad_input_is_refused() -> None:
    mon = QualityMonitor(["A", "B"], FS)
    with pytest.raises(StreamFormatError, match="shape"):
        mon.process(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="unknown channel"):
        QualityMonitor(["A", "B"], FS, neighbours={"A": ["C"]})
    for mains_hz in (0.5, 2000.0):  # every consumer would drop its reports (bus contract)
        with pytest.raises(ValueError, match=r"power-line frequency in \[1, 1000\] Hz"):
            load_quality_config(overrides=(f"mains_hz={mains_hz}",))


def test_nearest_neighbours_of_the_fridlund_scheme_are_its_face_neighbours() -> None:
    from streaming.acquisition.electrodes import load_scheme

    scheme = load_scheme("fridlund")
    nb = nearest_neighbours(scheme.labels, scheme.positions, k=3)
    assert len(nb) == 22 and all(len(v) == 3 and lab not in v for lab, v in nb.items())
    assert "F2" in nb["F1"]  # the medial frontalis pair sits either side of the midline


def test_mains_frequency_is_detected_from_the_data() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(round(4 * FS)) / FS
    x = 3.0 * rng.standard_normal((len(t), 2)) + 20.0 * np.sin(2 * np.pi * 60.0 * t)[:, None]
    reports = QualityMonitor(["A", "B"], FS).process_all(x)
    assert reports[-1].mains_hz == 60.0
    assert reports[-1].metric("mains_db", "A") > 10.0

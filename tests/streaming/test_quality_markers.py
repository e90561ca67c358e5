"""The quality stage's movements from the protocol's markers (issue 21: the ``silent`` check live).

Without sockets: the stage's own thread fed simulator chunks stamped as the EMG feed stamps them,
and markers queued as the marker reader queues them. Live over LSL and the bus:
tests/streaming/test_pipeline_quality_markers.py."""

from __future__ import annotations

import time

import numpy as np
import pytest

from simulation import EmgSimulator, SimulatorConfig
from streaming.config import validate
from streaming.pipeline.quality_markers import marker_movement, marker_sample, markers_stream_name
from streaming.pipeline.quality_stage import QualityStage, QualityStageConfig, movement_targets

FS = 4096
T0 = 1000.0  # LSL time of sample 0
CHUNK = 32


def test_markers_stream_name_follows_the_sessions_naming() -> None:
    assert markers_stream_name("auto", "EMG") == "Markers"  # configs/sessions/lab.toml
    assert markers_stream_name("auto", "EMG-demo42") == "Markers-demo42"  # demo.toml's suffix
    assert markers_stream_name("auto", "TMSi") == "Markers"
    assert markers_stream_name("auto", None) == "Markers"
    assert markers_stream_name("MyMarkers", "EMG") == "MyMarkers"
    assert markers_stream_name("", "EMG") is None  # off


def test_marker_grammar_to_movements() -> None:
    assert marker_movement("start:Smile-Open:2") == (True, "Smile-Open")
    assert marker_movement("stop:Smile-Open:2") == (True, None)
    assert marker_movement("protocol:abort") == (True, None)
    assert marker_movement("show:Smile-Open:2") == (False, None)  # instruction: still rest
    assert marker_movement("protocol:start") == (False, None)


def test_marker_sample_is_the_first_sample_at_or_after_the_stamp() -> None:
    # chunk's last sample 4095 at T0 + 4095 / FS
    t_end = T0 + 4095 / FS
    assert marker_sample(T0 + 100 / FS, t_end, 4095, FS) == 100  # on a sample
    assert marker_sample(T0 + 100.2 / FS, t_end, 4095, FS) == 101  # between two
    assert marker_sample(T0 + 4095 / FS, t_end, 4095, FS) == 4095
    assert marker_sample(T0 - 5.0, t_end, 4095, FS) == 0  # before the data
    # after a gap the chunk's own mapping places it: 1000 samples lost before this chunk
    assert marker_sample(T0 + 5000 / FS, T0 + 5095 / FS, 4095, FS) == 4000


def test_movement_targets_from_the_scheme_muscles() -> None:
    labels = ["F19", "F20", "F1", "extra"]
    targets = movement_targets("fridlund", labels)
    assert targets["Smile-Open"].tolist() == pytest.approx([0.9, 0.9, 0.0, 0.0])  # zygomaticus
    assert set(targets) >= {"Face-At-Rest", "Smile-Open", "happy"}
    assert movement_targets("", labels) == {}


def _next_reports(stage: QualityStage, timeout_s: float = 10.0) -> list:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = stage.take()
        if got:
            return got
        time.sleep(0.002)
    raise AssertionError("the quality stage gave no report")


def _run_stage(
    markers: list[tuple[float, str | None]], seconds: float, gap: tuple[int, int] | None
):
    """F19 off its muscle, Smile-Open 6-10 s (simulator time): the stage's reports, with the
    markers queued up front (as a marker stream ahead of the EMG delivers them)."""
    cfg = validate(
        SimulatorConfig,
        {
            "seed": 3,
            "script": {"kind": "custom", "events": [["Smile-Open", 6.0, 4.0]], "ramp_s": 0.2},
            "faults": [{"channel": "F19", "kind": "misplaced"}],
        },
    )
    sim = EmgSimulator(cfg)
    x = sim.generate(round(seconds * FS))[0].astype(np.float64)
    stage = QualityStage(QualityStageConfig(markers_stream=""), "fridlund")
    assert stage.markers is None
    stage.begin(sim.labels, FS)
    for t, movement in markers:
        stage.mark(t, movement)
    stage.start()
    reports = []
    try:
        for first in range(0, len(x), CHUNK):
            if gap is not None and gap[0] <= first < gap[1]:
                continue  # lost in transit: the feed hands over what arrives
            stage.feed(x[first : first + CHUNK], T0 + (first + CHUNK - 1) / FS)
            if (first + CHUNK) % (FS // 2) == 0:  # a block complete: its report, in real time
                reports += _next_reports(stage)
    finally:
        stage.stop()
    assert stage.reports_dropped == 0
    return sim, reports, stage


@pytest.mark.timeout(120)
def test_a_channel_off_its_muscle_is_silent_in_the_movement_the_markers_announce() -> None:
    marks = [(T0 + 6.0, "Smile-Open"), (T0 + 10.0, None)]
    _, reports, stage = _run_stage(marks, 14.0, None)
    assert stage.movements_placed == 2
    t = np.array([r.sample_index / FS for r in reports])
    moving = np.array([r.movement == "Smile-Open" for r in reports])
    # the movement is announced from the block holding 6.0 s to the one holding 10.0 s
    assert t[moving].min() == pytest.approx(6.5) and t[moving].max() == pytest.approx(10.0)
    silent = np.array(["silent" in r.reasons_of("F19") for r in reports])
    assert not silent[t <= 6.0].any()
    first = t[silent].min()
    assert first - 6.0 <= 2.5, f"F19 named silent {first - 6.0:.1f} s into the smile"
    assert all(r.state("F19") == "check" for r in np.array(reports)[silent])
    assert not any("silent" in r.reasons_of("F20") for r in reports)  # its partner smiles
    assert not any(r.bad_channels for r in reports)
    others = {c for r in reports for c in r.channels if c != "F19" and r.state(c) != "good"}
    assert not others, f"clean channels flagged: {others}"


@pytest.mark.timeout(120)
def test_without_markers_no_channel_is_judged_silent() -> None:
    _, reports, stage = _run_stage([], 14.0, None)
    assert stage.movements_placed == 0
    assert all(r.movement is None for r in reports)
    assert not any("silent" in r.reasons_of("F19") for r in reports)


@pytest.mark.timeout(120)
def test_a_gap_in_the_emg_does_not_shift_the_movement() -> None:
    """1 s of EMG lost at 2-3 s: the monitor counts received samples only, so its index runs 1 s
    behind simulator time afterwards; the markers still land on the samples stamped with their
    time (sample index 5 s = simulator time 6 s)."""
    marks = [(T0 + 6.0, "Smile-Open"), (T0 + 10.0, None)]
    _, reports, _ = _run_stage(marks, 14.0, (2 * FS, 3 * FS))
    t = np.array([r.sample_index / FS for r in reports])  # the monitor's own sample count
    moving = np.array([r.movement == "Smile-Open" for r in reports])
    assert t[moving].min() == pytest.approx(5.5) and t[moving].max() == pytest.approx(9.0)

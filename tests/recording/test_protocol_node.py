"""Protocol node: the Mimics-and-Muscles schedule, LSL markers and bus instructions."""

from __future__ import annotations

import multiprocessing as mp
import socket
import time
from collections import Counter
from typing import Any

import numpy as np
import pytest

from streaming.acquisition.protocol import (
    ProtocolRunner,
    build_markers,
    build_schedule,
    load_protocol,
    trials,
)
from streaming.config import ConfigError

FUNCTIONAL = [
    "Face-At-Rest", "Forehead-Raise", "Eye-Gentle", "Eye-Tight", "Smile-Closed", "Smile-Open",
    "Nose-Wrinkler", "Cheeks-Blow", "Lip-Pucker", "Snarl", "Depress-Lip",
]  # fmt: skip
EMOTIONS = {"angry", "disgusted", "fearful", "happy", "sad", "surprised"}


def test_default_protocol_is_functional_movements_in_order_then_shuffled_emotions() -> None:
    order = [(m, r) for m, r, _ in trials(load_protocol(None))]
    assert order[:33] == [(m, r) for m in FUNCTIONAL for r in (1, 2, 3)]
    emotions = order[33:]
    assert len(emotions) == 24 and {m for m, _ in emotions} == EMOTIONS
    assert Counter(m for m, _ in emotions) == {e: 4 for e in EMOTIONS}
    for emotion in EMOTIONS:  # repetitions numbered in the order shown
        assert [r for m, r in emotions if m == emotion] == [1, 2, 3, 4]
    assert [m for m, _ in emotions] != sorted(m for m, _ in emotions)  # really shuffled


def test_emotion_order_is_seeded() -> None:
    same = [m for m, _, _ in trials(load_protocol(None))]
    assert same == [m for m, _, _ in trials(load_protocol(None))]
    other = [m for m, _, _ in trials(load_protocol(None, ["seed=5"]))]
    assert other[:33] == same[:33] and other[33:] != same[33:]


def test_emotion_trial_shows_the_face_3_s_then_3_s_to_repeat_it() -> None:
    steps = build_schedule(load_protocol(None))
    first = next(i for i, s in enumerate(steps) if s.movement in EMOTIONS)
    show, perform = steps[first], steps[first + 1]
    assert (show.phase, show.duration_s, perform.phase, perform.duration_s) == (
        "show",
        3.0,
        "perform",
        3.0,
    )
    assert perform.start_s + 1.5 - show.start_s == pytest.approx(4.5)  # peak as in the paper


def test_markers_pair_every_start_with_a_stop_in_time_order() -> None:
    markers = build_markers(build_schedule(load_protocol(None)))
    texts = [m for _, m in markers]
    assert texts[0] == "protocol:start" and texts[-1] == "protocol:end"
    starts = [m[6:] for m in texts if m.startswith("start:")]
    stops = [m[5:] for m in texts if m.startswith("stop:")]
    assert starts == stops and len(starts) == 57
    assert "start:Smile-Open:2" in texts
    times = [t for t, _ in markers]
    assert times == sorted(times)


def test_what_the_protocol_writes_the_follower_and_the_exporter_read_back() -> None:
    """One grammar (streaming.acquisition.markers): every marker parses, and the exporter turns the
    protocol's start/stop pairs into one annotation per trial lasting its perform phase."""
    from streaming.acquisition.markers import PROTOCOL_END, PROTOCOL_START, parse_trial_marker
    from streaming.recording.export import marker_annotations

    config = load_protocol(None)
    steps = build_schedule(config)
    markers = build_markers(steps)
    for _, text in markers:
        assert parse_trial_marker(text) is not None or text in (PROTOCOL_START, PROTOCOL_END)
    times = np.array([t for t, _ in markers])
    onsets, durations, descriptions, extras = marker_annotations(
        times, [m for _, m in markers], 0.0, float(times[-1])
    )
    trials_ = [i for i, e in enumerate(extras) if "repetition" in e]
    perform = [s for s in steps if s.phase == "perform"]
    assert len(trials_) == len(perform) == 57
    for i, step in zip(trials_, perform, strict=True):
        assert (descriptions[i], extras[i]["repetition"]) == (step.movement, step.repetition)
        assert onsets[i] == pytest.approx(step.start_s)
        assert durations[i] == pytest.approx(step.duration_s)  # functional 4 s, emotions 3 s
    assert parse_trial_marker("start:Smile:Open:12").movement == "Smile:Open"  # colons in names
    assert parse_trial_marker("start:Smile-Open:x") is None


def test_bad_protocol_file_names_the_key(tmp_path: Any) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text('[[blocks]]\nmovements = ["Snarl"]\nrepetitions = 0\n')
    with pytest.raises(ConfigError, match=r"blocks\.0\.repetitions"):
        load_protocol(bad)


def test_runner_stop_closes_the_open_trial_and_aborts() -> None:
    config = load_protocol(None, ["lead_in_s=0.0"])
    markers: list[str] = []
    runner = ProtocolRunner(config, lambda m, t: markers.append(m), lambda f, t: None, speed=20.0)
    clock_start = time.monotonic()
    import threading

    threading.Timer(0.25, runner.stop).start()  # inside the first perform phase (0.15..0.35 s)
    assert runner.run() is False
    assert time.monotonic() - clock_start < 2.0
    assert markers == [
        "protocol:start", "show:Face-At-Rest:1", "start:Face-At-Rest:1", "stop:Face-At-Rest:1",
        "protocol:abort",
    ]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_SHORT = [
    "lead_in_s=0.5",
    'blocks=[{movements = ["Smile-Open", "Snarl"], repetitions = 2, show_s = 1.0, '
    "perform_s = 1.0, pause_s = 0.5}, "
    '{movements = ["happy", "sad"], repetitions = 2, order = "random", show_s = 1.0, '
    "perform_s = 1.0, pause_s = 0.0}]",
    "instruction_period_s=0.1",
    "wait_for_consumers_s=20",
]


def _run_node(argv: list[str]) -> None:
    from nodes.cli import main

    main(argv)


def test_node_emits_markers_on_lsl_and_instructions_on_the_bus(unique_name: str) -> None:
    import pylsl

    from streaming.acquisition.lsl_io import ChunkInlet
    from streaming.bus.pubsub import Subscriber

    address = f"tcp://127.0.0.1:{_free_port()}"
    overrides = [*_SHORT, f'stream_name="{unique_name}"', f'source_id="{unique_name}"',
                 f'bus="{address}"']  # fmt: skip
    argv = ["node", "protocol", "--speed", "10", "--log-level", "WARNING"]
    for item in overrides:
        argv += ["--set", item]
    expected = [m for _, m in build_markers(build_schedule(load_protocol(None, overrides)))]
    subscriber = Subscriber(address, ["instruction"])
    process = mp.get_context("spawn").Process(target=_run_node, args=(argv,))
    process.start()
    try:
        found = pylsl.resolve_byprop("name", unique_name, 1, 20.0)
        assert found, "marker stream not found"
        assert found[0].type() == "Markers" and found[0].channel_format() == pylsl.cf_string
        markers: list[str] = []
        stamps: list[float] = []
        messages = []
        with ChunkInlet(found[0]) as inlet:
            inlet.open(10.0)
            deadline = time.monotonic() + 30.0
            while time.monotonic() < deadline and (not markers or markers[-1] != "protocol:end"):
                rows, ts = inlet.pull(0.02)
                markers += [r[0] for r in rows]
                stamps += list(ts)
                while (message := subscriber.receive(0.0)) is not None:
                    messages.append(message)
        assert markers == expected
        # stamps follow the 10x schedule: start -> stop of one trial = 1.0 s / 10
        i = markers.index("start:Smile-Open:1")
        assert stamps[i + 1] - stamps[i] == pytest.approx(0.1, abs=0.02)
        assert np.all(np.diff(stamps) >= 0)
        phases = {m.fields["phase"] for m in messages}
        assert {"show", "perform", "pause"} <= phases
        perform = next(m for m in messages if m.fields["phase"] == "perform")
        assert perform.fields["movement"] == "Smile-Open" and perform.fields["total"] == 8
        assert perform.fields["text"] == "Smile broadly, showing your teeth"
        assert 0.0 <= perform.fields["remaining_s"] <= 0.1 + 1e-6
        assert isinstance(perform.t, float)
    finally:
        subscriber.close()
        process.join(20)
        if process.is_alive():
            process.kill()
    assert process.exitcode == 0


def test_emg_simulator_script_performs_what_the_protocol_node_asks_when() -> None:
    """The simulator's built-in protocol script and this node agree (same seed, same timing)."""
    from simulation.movements import MovementScript

    perform = [s for s in build_schedule(load_protocol(None)) if s.phase == "perform"]
    script = MovementScript.from_protocol(seed=0)
    assert [(e.movement, e.repetition) for e in script.events] == [
        (s.movement, s.repetition) for s in perform
    ]
    np.testing.assert_allclose([e.start_s for e in script.events], [s.start_s for s in perform])
    np.testing.assert_allclose(
        [e.duration_s for e in script.events], [s.duration_s for s in perform]
    )

"""Replay over real LSL: a child process replays, this process resolves and pulls."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from streaming.recording.replay_timeline import ReplayConfig, Timeline
from streaming.recording.session_reader import load_recording


def _relative(stamps: np.ndarray, origin: float) -> np.ndarray:
    return np.asarray(stamps) - origin


def test_minimal_xdf_replays_names_layout_values_and_timing(
    shared_data: Path, replay: Callable[..., Any]
) -> None:
    path = shared_data / "xdf" / "minimal.xdf"
    got = replay(path, ["SendDataC", "SendDataString"])
    rec = load_recording(path)
    data, text = got["SendDataC"], got["SendDataString"]
    assert (data.channel_count, data.rate_hz, len(data.stamps)) == (3, 10.0, 9)
    assert (text.channel_count, len(text.stamps)) == (1, 9)
    assert "<type>EEG</type>" in data.xml and "<channel_format>int16</channel_format>" in data.xml
    np.testing.assert_array_equal(data.data, rec.stream("SendDataC").data)
    assert text.data == rec.stream("SendDataString").data
    # one shift for all streams: inter-stream offsets as recorded (to float precision)
    origin_out = data.stamps[0]
    origin_rec = rec.stream("SendDataC").timestamps[0]
    for name in ("SendDataC", "SendDataString"):
        np.testing.assert_allclose(
            _relative(got[name].stamps, origin_out),
            _relative(rec.stream(name).timestamps, origin_rec),
            atol=1e-3,
        )
    # paced against local_clock: every sample arrived close to its stamp (loose, shared CPU)
    assert np.all(np.abs(data.arrival - data.stamps) < 0.25)


def test_empty_streams_xdf_replays_all_four_streams(
    shared_data: Path, replay: Callable[..., Any]
) -> None:
    path = shared_data / "xdf" / "empty_streams.xdf"
    names = [s.name for s in load_recording(path).streams]
    got = replay(path, names, speed="max")
    counts = {name: len(got[name].stamps) for name in names}
    assert sorted(counts.values()) == [0, 0, 1, 10]
    counter = next(p for p in got.values() if len(p.stamps) == 10)
    np.testing.assert_allclose(np.diff(counter.stamps), 1.0, atol=1e-3)  # 1 Hz spacing kept


@pytest.mark.slow
def test_clock_resets_xdf_replays_every_sample_without_negative_jumps(
    shared_data: Path, replay: Callable[..., Any]
) -> None:
    path = shared_data / "xdf" / "clock_resets.xdf"
    expect = {"BioSemi": 27815, "MyMarkerStream": 175}
    got = replay(path, list(expect), speed="max", timeout_s=90.0, expect=expect)
    eeg, markers = got["BioSemi"], got["MyMarkerStream"]
    assert (eeg.channel_count, eeg.rate_hz, len(eeg.stamps)) == (8, 100.0, 27815)
    assert len(markers.stamps) == 175
    assert np.all(np.diff(eeg.stamps) >= 0) and np.all(np.diff(markers.stamps) >= 0)
    assert np.max(np.diff(eeg.stamps)) <= 5.0 + 1e-6  # the reboot gap is shortened


def test_clock_reset_segment_boundary_replays_in_real_time(
    shared_data: Path, replay: Callable[..., Any]
) -> None:
    # 10 s of recording around the (shortened) gap between the two clock segments, at 5x
    path = shared_data / "xdf" / "clock_resets.xdf"
    config = {"speed": 5.0, "start_s": 136.0, "stop_s": 146.0, "streams": ["BioSemi"]}
    track = Timeline(load_recording(path), ReplayConfig(**config)).tracks[0]
    assert np.max(np.diff(track.times)) > 4.0  # the window holds the segment boundary
    eeg = replay(path, ["BioSemi"], **config)["BioSemi"]
    assert len(eeg.stamps) == len(track.times)
    np.testing.assert_allclose(np.diff(eeg.stamps), np.diff(track.times) / 5.0, atol=1e-4)
    assert np.all(np.abs(eeg.arrival - eeg.stamps) < 0.25)


def test_speed_2x_halves_stamps_and_wall_time(
    tmp_path: Path, xdf_tools: SimpleNamespace, replay: Callable[..., Any]
) -> None:
    path = xdf_tools.write(tmp_path / "r.xdf", [xdf_tools.emg(2.0, rate_hz=256.0)])
    got = replay(path, ["EMG"], speed=2.0)["EMG"]
    assert len(got.stamps) == 512 and got.channel_count == 22
    np.testing.assert_allclose(np.diff(got.stamps), 1 / 512.0, atol=1e-6)
    assert got.arrival[-1] - got.arrival[0] == pytest.approx(1.0, abs=0.3)
    assert np.all(np.abs(got.arrival - got.stamps) < 0.25)
    assert "<label>F22</label>" in got.xml and "<unit>microvolts</unit>" in got.xml


def test_as_fast_as_possible_delivers_everything_quickly(
    tmp_path: Path, xdf_tools: SimpleNamespace, replay: Callable[..., Any]
) -> None:
    path = xdf_tools.write(tmp_path / "r.xdf", [xdf_tools.emg(20.0, rate_hz=512.0)])
    got = replay(path, ["EMG"], speed="max", expect={"EMG": 20 * 512})["EMG"]
    assert len(got.stamps) == 20 * 512
    np.testing.assert_array_equal(got.data[:, 3], np.float32(3 + np.arange(20 * 512) / 1000.0))
    assert got.arrival[-1] - got.arrival[0] < 10.0  # 20 s of recording, far less wall time


def test_cli_loop_plays_the_recording_again_with_increasing_stamps(
    tmp_path: Path, xdf_tools: SimpleNamespace, replay: Callable[..., Any]
) -> None:
    path = xdf_tools.write(tmp_path / "r.xdf", [xdf_tools.emg(0.5, rate_hz=200.0)])
    got = replay(path, ["EMG"], via_cli=True, repeat=3, speed=2.0)["EMG"]
    assert len(got.stamps) == 300
    assert np.all(np.diff(got.stamps) > 0)
    np.testing.assert_array_equal(got.data[:100], got.data[200:])


@pytest.mark.slow  # offsets and selection are also covered without LSL (test_replay_timeline)
def test_start_stop_offsets_and_chosen_streams(
    tmp_path: Path, xdf_tools: SimpleNamespace, replay: Callable[..., Any]
) -> None:
    path = xdf_tools.write(
        tmp_path / "r.xdf",
        [
            xdf_tools.emg(3.0, rate_hz=100.0),
            xdf_tools.markers([(1000.5, "a"), (1001.5, "b"), (1002.5, "c")]),
        ],
    )
    got = replay(path, ["Markers"], streams=["Markers"], start_s=1.0, stop_s=2.0)
    assert got["Markers"].data == [["b"]]
    got = replay(path, ["EMG"], streams=["EMG"], start_s=1.0, stop_s=2.0, speed=4.0)
    emg = got["EMG"]
    assert len(emg.stamps) == 101
    np.testing.assert_allclose(emg.data[0, 0], 100 / 1000.0, rtol=1e-6)  # sample 100 = 1.0 s


def test_session_folder_replays_video_frames_from_the_video_file(
    session_dir: Path, replay: Callable[..., Any]
) -> None:
    got = replay(session_dir, ["EMG", "Markers", "Camera"], speed=3.0, repeat=2)
    camera, emg, markers = got["Camera"], got["EMG"], got["Markers"]
    assert "<type>Video</type>" in camera.xml and "<width>64</width>" in camera.xml
    assert camera.channel_count == 64 * 48 * 3 and len(camera.stamps) == 2 * 90
    frames = camera.data.view(np.uint8).reshape(-1, 48, 64, 3)
    # each frame at its time, and again in the second loop
    np.testing.assert_array_equal(frames[:, 0, 0, 0], np.tile(np.arange(90), 2))
    assert len(emg.stamps) == 2 * 3 * 512
    assert [m[0] for m in markers.data][1] == "start:Smile-Open:1"
    # video and EMG keep their recorded alignment (camera starts 20 ms after EMG), at 3x
    assert camera.stamps[0] - emg.stamps[0] == pytest.approx(0.02 / 3, abs=1e-3)
    np.testing.assert_allclose(np.diff(camera.stamps[:90]), 1 / 30 / 3, atol=1e-3)
    assert np.all(np.diff(camera.stamps) > 0)


@pytest.mark.slow
def test_replay_pacing_of_a_realistic_session(
    tmp_path: Path, xdf_tools: SimpleNamespace, replay: Callable[..., Any]
) -> None:
    """10 s of 4096 Hz x 22 EMG plus 320x240 video at 30 fps, at 1x: regular chunks, on time."""
    from streaming.recording.video_file import VideoWriter

    folder = tmp_path / "session"
    folder.mkdir()
    rng = np.random.default_rng(0)
    with VideoWriter(folder / "Camera.mkv", 320, 240, 30.0) as writer:
        base = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        for i in range(300):
            writer.write(np.roll(base, i, axis=1))
    frames = xdf_tools.Stream(
        "Camera", "VideoFrames", "int32", 30.0, 1000.0 + np.arange(300) / 30.0,
        np.arange(300)[:, None], desc={"video": {"file": "Camera.mkv"}},
    )  # fmt: skip
    xdf_tools.write(folder / "session.xdf", [xdf_tools.emg(10.0, rate_hz=4096.0), frames])
    got = replay(folder, ["EMG", "Camera"], timeout_s=60.0)
    emg, camera = got["EMG"], got["Camera"]
    assert len(emg.stamps) == 40960 and len(camera.stamps) == 300
    figures = {}
    for name, pulled in (("EMG", emg), ("Camera", camera)):
        late_ms = (pulled.arrival - pulled.stamps) * 1000.0
        figures[name] = (float(np.percentile(late_ms, 50)), float(np.percentile(late_ms, 99)))
    print(
        "\narrival - stamp (ms) p50/p99:",
        {k: tuple(round(v, 1) for v in f) for k, f in figures.items()},
    )
    # what the player guarantees, with margins for a loaded machine (the p99 is a benchmark
    # figure, not a test): never ahead of the recorded timing, typically within a few push
    # cycles, and no backlog: the last samples are as current as the first
    for name, pulled in (("EMG", emg), ("Camera", camera)):
        late_ms = (pulled.arrival - pulled.stamps) * 1000.0
        assert late_ms.min() > -5.0, f"{name} pushed ahead of its stamps"
        assert figures[name][0] < 50.0, f"{name} median lateness {figures[name][0]:.1f} ms"
        assert np.median(late_ms[-len(late_ms) // 10 :]) < 250.0, f"{name} fell behind"


@pytest.mark.slow
def test_looping_cli_replay_stops_cleanly_on_sigint(
    tmp_path: Path, xdf_tools: SimpleNamespace
) -> None:
    import signal
    import subprocess
    import sys
    import time

    path = xdf_tools.write(tmp_path / "r.xdf", [xdf_tools.emg(0.5, rate_hz=100.0)])
    command = [sys.executable, "-m", "nodes.cli", "replay", str(path), "--loop", "--quiet",
               "--set", f'name_suffix="_{tmp_path.name}"']  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    time.sleep(3.0)
    assert process.poll() is None  # still looping
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err

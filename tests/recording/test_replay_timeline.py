"""The replay timing core, without LSL: time base, selection, offsets, speed, loops."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from streaming.errors import SessionFileError
from streaming.recording.replay import outlet_info
from streaming.recording.replay_timeline import (
    ReplayConfig,
    Timeline,
    remove_negative_jumps,
    shorten_gaps,
)
from streaming.recording.session_reader import load_recording, read_stream_headers


def test_example_files_load_with_their_stream_layout(shared_data: Path) -> None:
    xdf = shared_data / "xdf"
    minimal = load_recording(xdf / "minimal.xdf")
    assert [(s.name, s.channel_count, s.rate_hz, s.n_samples) for s in minimal.streams] == [
        ("SendDataC", 3, 10.0, 9),
        ("SendDataString", 1, 10.0, 9),
    ]
    empty = load_recording(xdf / "empty_streams.xdf")
    assert sorted((s.channel_format, s.n_samples) for s in empty.streams) == [
        ("float32", 0),
        ("int32", 10),
        ("string", 0),
        ("string", 1),
    ]
    resets = load_recording(xdf / "clock_resets.xdf")
    assert {s.name: s.n_samples for s in resets.streams} == {
        "MyMarkerStream": 175,
        "BioSemi": 27815,
    }


def test_headers_are_kept_as_recorded_xml(shared_data: Path) -> None:
    headers = read_stream_headers(shared_data / "xdf" / "minimal.xdf")
    assert set(headers) == {0, 46202862}
    assert "<name>SendDataC</name>" in headers[0]


def test_clock_reset_recording_replays_without_negative_jumps(shared_data: Path) -> None:
    timeline = Timeline(load_recording(shared_data / "xdf" / "clock_resets.xdf"), ReplayConfig())
    for track in timeline.tracks:
        assert np.all(np.diff(track.times) >= 0)
    # the 273 s silence between the two clock segments is shortened to max_gap_s
    assert timeline.removed_gap_s == pytest.approx(273.6 - 5.0, abs=1.0)
    biosemi = next(t for t in timeline.tracks if t.stream.name == "BioSemi")
    assert np.max(np.diff(biosemi.times)) <= 5.0 + 1e-9


def test_negative_jumps_continue_one_sample_later() -> None:
    t, resets = remove_negative_jumps(np.array([10.0, 10.1, 10.2, 3.0, 3.1]), 10.0)
    assert resets == 1
    np.testing.assert_allclose(t, [10.0, 10.1, 10.2, 10.3, 10.4])


def test_long_common_silences_shift_all_streams_alike() -> None:
    a = np.array([0.0, 1.0, 100.0, 101.0])
    b = np.array([0.5, 100.5])
    (a2, b2), removed = shorten_gaps([a, b], 2.0)
    assert removed == pytest.approx(97.0)
    np.testing.assert_allclose(a2, [0.0, 1.0, 3.0, 4.0])
    np.testing.assert_allclose(b2, [0.5, 3.5])  # alignment kept: b is still 0.5 s after a


def _recording(tmp_path: Path, xdf_tools: SimpleNamespace) -> Path:
    return xdf_tools.write(
        tmp_path / "r.xdf",
        [xdf_tools.emg(4.0, rate_hz=100.0), xdf_tools.markers([(1001.0, "a"), (1003.5, "b")])],
    )


def test_start_and_stop_offsets_choose_the_samples_between(
    tmp_path: Path, xdf_tools: SimpleNamespace
) -> None:
    rec = load_recording(_recording(tmp_path, xdf_tools))
    timeline = Timeline(rec, ReplayConfig(start_s=1.0, stop_s=3.0))
    emg, markers = timeline.tracks
    assert emg.times[0] == pytest.approx(1001.0) and emg.times[-1] == pytest.approx(1003.0)
    assert len(emg.times) == 201 and emg.first == 100
    assert list(markers.times) == [1001.0]
    assert timeline.duration_s == pytest.approx(2.0)


def test_speed_scales_output_stamps_and_due_times(
    tmp_path: Path, xdf_tools: SimpleNamespace
) -> None:
    rec = load_recording(_recording(tmp_path, xdf_tools))
    timeline = Timeline(rec, ReplayConfig(speed=2.0))
    emg = timeline.tracks[0]
    stamps = timeline.stamps(emg, 0, 5, base=50.0, loop=0)
    np.testing.assert_allclose(stamps, 50.0 + np.arange(5) / 100.0 / 2.0)
    assert timeline.due(emg, 0.5) == 101  # 0.5 s of output = 1 s of recording
    # the next loop starts loop_gap_s after this one ends
    assert timeline.stamps(emg, 0, 1, 50.0, 1)[0] == pytest.approx(50.0 + 3.99 / 2 + 0.1)


def test_as_fast_as_possible_keeps_the_recorded_spacing(
    tmp_path: Path, xdf_tools: SimpleNamespace
) -> None:
    timeline = Timeline(load_recording(_recording(tmp_path, xdf_tools)), ReplayConfig(speed="max"))
    np.testing.assert_allclose(
        np.diff(timeline.stamps(timeline.tracks[0], 0, 3, 0.0, 0)), [0.01, 0.01]
    )


def test_chosen_streams_by_name_or_type(tmp_path: Path, xdf_tools: SimpleNamespace) -> None:
    rec = load_recording(_recording(tmp_path, xdf_tools))
    assert [t.stream.name for t in Timeline(rec, ReplayConfig(streams=["Markers"])).tracks] == [
        "Markers"
    ]
    assert [t.stream.name for t in Timeline(rec, ReplayConfig(streams=["EMG"])).tracks] == ["EMG"]
    with pytest.raises(SessionFileError, match="no stream named or typed"):
        Timeline(rec, ReplayConfig(streams=["Nope"]))


def test_start_past_the_end_is_a_clear_error(tmp_path: Path, xdf_tools: SimpleNamespace) -> None:
    rec = load_recording(_recording(tmp_path, xdf_tools))
    with pytest.raises(SessionFileError, match="past the end"):
        Timeline(rec, ReplayConfig(start_s=60.0))


def test_session_folder_video_stream_is_recreated_as_the_camera_stream(session_dir: Path) -> None:
    rec = load_recording(session_dir)
    camera = rec.stream("Camera")
    assert camera.video is not None and camera.video.path.name == "Camera.mkv"
    info = outlet_info(camera, "_x")
    assert (info.name(), info.type(), info.channel_count()) == ("Camera_x", "Video", 64 * 48 * 3)
    xml = info.as_xml()
    assert "<width>64</width>" in xml and "<pixel_format>rgb24</pixel_format>" in xml
    assert "<can_drop_samples>true</can_drop_samples>" in xml and "<video>" not in xml


def test_missing_video_file_is_named(session_dir: Path) -> None:
    (session_dir / "Camera.mkv").unlink()
    with pytest.raises(SessionFileError, match=r"Camera\.mkv.*missing"):
        load_recording(session_dir)


def test_not_an_xdf_file_is_a_session_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xdf"
    bad.write_bytes(b"hello world")
    with pytest.raises(SessionFileError, match="not an XDF"):
        load_recording(bad)


def test_progress_line_shows_position_loop_and_state() -> None:
    from streaming.recording.replay import Progress

    line = Progress(12.5, 50.0, 1, 1234, 3.2).line()
    assert "12.50 / 50.00 s" in line and "25.0 %" in line and "loop 2" in line
    assert "lag" in line and "done" in Progress(50.0, 50.0, 0, 9, 0.0, done=True).line()


def test_gzipped_xdf_loads_like_the_plain_file(shared_data: Path, tmp_path: Path) -> None:
    import gzip

    packed = tmp_path / "minimal.xdfz"
    packed.write_bytes(gzip.compress((shared_data / "xdf" / "minimal.xdf").read_bytes()))
    rec = load_recording(packed)
    assert [(s.name, s.n_samples) for s in rec.streams] == [
        ("SendDataC", 9),
        ("SendDataString", 9),
    ]
    assert "<name>SendDataC</name>" in rec.streams[0].header_xml

"""``eifer record`` over real LSL: session folders that pyxdf loads, video files, crash safety."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyxdf

from streaming.errors import SessionFileError
from streaming.recording.recorder import Recorder, RecorderConfig
from streaming.recording.video_file import VideoReader

RATE_HZ = 1000.0


def _serve(name: str, kind: str, ready: Any, stop: Any, counter: Any) -> None:
    """EMG with a counter channel, string markers, or a small camera; in a child process."""
    import pylsl

    from streaming.acquisition.camera_frames import encode_frame, video_stream_info
    from streaming.acquisition.lsl_io import ChunkOutlet, stream_info

    if kind == "emg":
        info = stream_info(name, "EMG", 3, RATE_HZ, "float32", name,
                           channel_labels=["F1", "F2", "counter"], channel_unit="microvolts")  # fmt: skip
    elif kind == "markers":
        info = stream_info(name, "Markers", 1, 0.0, "string", name)
    else:
        info = video_stream_info(name, 32, 24, 30.0, name)
    outlet = ChunkOutlet(info, max_buffered_s=60)
    ready.set()
    k, t0 = 0, pylsl.local_clock()
    while not stop.is_set():
        if kind == "emg":
            n = 20
            data = np.zeros((n, 3), np.float32)
            data[:, 0] = np.sin(np.arange(k, k + n) / 10)
            data[:, 2] = np.arange(k, k + n)
            outlet.push(data, t0 + (k + n - 1) / RATE_HZ)
            k += n
            counter.value = k
            time.sleep(max(0.0, t0 + k / RATE_HZ - pylsl.local_clock()))
        elif kind == "markers":
            outlet.push([[f"start:Smile:{k}"]])
            k += 1
            time.sleep(0.2)
        else:
            frame = np.full((24, 32, 3), k % 256, np.uint8)
            outlet.push(encode_frame(frame), pylsl.local_clock())
            k += 1
            counter.value = k
            time.sleep(1 / 30)


class Outlets:
    def __init__(self) -> None:
        self.ctx = mp.get_context("spawn")
        self.running: list[tuple[Any, Any, Any]] = []

    def start(self, name: str, kind: str) -> tuple[Any, Any]:
        ready, stop, counter = self.ctx.Event(), self.ctx.Event(), self.ctx.Value("q", 0)
        process = self.ctx.Process(
            target=_serve, args=(name, kind, ready, stop, counter), daemon=True
        )
        process.start()
        assert ready.wait(20)
        self.running.append((process, stop, counter))
        return stop, counter

    def stop_all(self) -> None:
        for process, stop, _ in self.running:
            stop.set()
            process.join(5)
            if process.is_alive():
                process.kill()


@pytest.fixture
def outlets():
    o = Outlets()
    yield o
    o.stop_all()


def _record(config: RecorderConfig, seconds: float, during=None) -> Recorder:
    recorder = Recorder(config)
    deadline = time.monotonic() + seconds
    fired = False
    while time.monotonic() < deadline:
        recorder.poll()
        if during is not None and not fired and time.monotonic() > deadline - seconds / 2:
            during()
            fired = True
        time.sleep(0.05)
    recorder.close()
    return recorder


def _samples(recorder: Recorder, name: str) -> int:
    return sum(r.stats.samples for r in recorder.streams.values() if r.stats.name == name)


def _poll_until(recorder: Recorder, done, timeout_s: float) -> None:
    """Poll the recorder until ``done()`` (what the test waits for), with a generous bound."""
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        recorder.poll()
        time.sleep(0.05)


def _streams_by_name(path: Path) -> dict[str, dict]:
    streams, _ = pyxdf.load_xdf(str(path), synchronize_clocks=False, dejitter_timestamps=False)
    return {s["info"]["name"][0]: s for s in streams}


def test_records_numeric_string_and_video_streams_that_pyxdf_loads(outlets, unique_name, tmp_path):
    for kind in ("emg", "markers", "camera"):
        outlets.start(f"{unique_name}-{kind}", kind)
    config = RecorderConfig(
        root=str(tmp_path), session="s1", participant="P07", notes="test",
        streams=[{"name": f"{unique_name}-{k}"} for k in ("emg", "markers", "camera")],
    )  # fmt: skip
    recorder = _record(config, 4.0)
    folder = recorder.folder
    streams = _streams_by_name(folder / "session.xdf")
    emg = streams[f"{unique_name}-emg"]
    counter = emg["time_series"][:, 2]
    assert len(counter) > 1000 and np.all(np.diff(counter) == 1), "EMG samples lost"
    labels = [c["label"][0] for c in emg["info"]["desc"][0]["channels"][0]["channel"]]
    assert labels == ["F1", "F2", "counter"]
    assert len(emg["clock_times"]) >= 1  # ClockOffset chunks
    markers = streams[f"{unique_name}-markers"]["time_series"]
    assert markers[0][0].startswith("start:Smile:")
    video = streams[f"{unique_name}-camera"]
    desc = video["info"]["desc"][0]
    assert desc["video"][0]["file"][0] == f"{unique_name}-camera.mkv"
    assert desc["width"][0] == "32" and desc["synchronization"][0]["can_drop_samples"][0] == "true"
    index = video["time_series"][:, 0].astype(int)
    reader = VideoReader(folder / f"{unique_name}-camera.mkv")
    assert len(reader) == len(index) > 30 and list(index) == list(range(len(index)))
    first_value = int(reader.read(0)[0, 0, 0])
    assert all(int(reader.read(i)[0, 0, 0]) == (first_value + i) % 256 for i in range(10))
    info = json.loads((folder / "session.json").read_text())
    assert info["participant"] == "P07" and info["stopped"] and len(info["streams"]) == 3


def test_a_session_is_never_overwritten(tmp_path):
    Recorder(RecorderConfig(root=str(tmp_path), session="same")).close()
    with pytest.raises(SessionFileError, match="never overwritten"):
        Recorder(RecorderConfig(root=str(tmp_path), session="same"))


def test_a_stream_that_starts_late_is_recorded(outlets, unique_name, tmp_path):
    config = RecorderConfig(root=str(tmp_path), session="late", streams=[{"name": unique_name}],
                            discover_interval_s=0.5)  # fmt: skip
    recorder = Recorder(config)
    time.sleep(1.0)
    outlets.start(unique_name, "emg")  # after the recorder's first discovery
    _poll_until(recorder, lambda: _samples(recorder, unique_name) > 600, timeout_s=60)
    recorder.close()
    counter = _streams_by_name(recorder.folder / "session.xdf")[unique_name]["time_series"][:, 2]
    assert len(counter) > 500 and np.all(np.diff(counter) == 1)


def test_a_stream_that_drops_out_and_returns_is_recorded_on_both_sides(
    outlets, unique_name, tmp_path
):
    stop, _ = outlets.start(unique_name, "emg")
    config = RecorderConfig(
        root=str(tmp_path), session="outage", streams=[{"name": unique_name}], gap_threshold_s=0.5
    )
    recorder = Recorder(config)
    _poll_until(recorder, lambda: _samples(recorder, unique_name) > 600, timeout_s=60)
    stop.set()
    outlets.running[0][0].join(20)  # the sender is gone (on a loaded machine, not at once)
    time.sleep(1.0)
    before_return = _samples(recorder, unique_name)
    outlets.start(unique_name, "emg")  # same source id: liblsl recovers the inlet
    _poll_until(recorder, lambda: _samples(recorder, unique_name) > before_return + 600, 60)
    recorder.close()
    counter = _streams_by_name(recorder.folder / "session.xdf")[unique_name]["time_series"][:, 2]
    restarts = np.flatnonzero(np.diff(counter) < 0)
    assert len(restarts) == 1, "expected one restart of the sender's counter"
    before, after = counter[: restarts[0] + 1], counter[restarts[0] + 1 :]
    assert len(before) > 500 and len(after) > 500
    assert np.all(np.diff(before) == 1) and np.all(np.diff(after) == 1)
    # the session states the outage: nothing received, and the stamps jump over it
    (entry,) = json.loads((recorder.folder / "session.json").read_text())["streams"]
    stated = {i["what"]: i for i in entry["interruptions"]}
    assert set(stated) == {"no data received", "gap in the data"}, entry
    assert all(i["seconds"] >= 0.9 and i["to"] > i["from"] for i in stated.values()), stated


def test_a_recording_without_pauses_states_none(outlets, unique_name, tmp_path):
    outlets.start(unique_name, "emg")
    outlets.start(f"{unique_name}-markers", "markers")  # irregular: silence is no pause
    config = RecorderConfig(root=str(tmp_path), session="steady", gap_threshold_s=0.5,
                            streams=[{"name": unique_name}, {"name": f"{unique_name}-markers"}])  # fmt: skip
    _record(config, 4)
    streams = json.loads((tmp_path / "steady" / "session.json").read_text())["streams"]
    assert len(streams) == 2 and all("interruptions" not in s for s in streams), streams


def _record_cli(tmp_path: Path, name: str, extra_env: dict | None = None, preexec=None):
    return subprocess.Popen(
        [sys.executable, "-m", "nodes.cli", "record", "--root", str(tmp_path), "--session", "crash",
         "--stream", name, "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(extra_env or {})}, preexec_fn=preexec,
    )  # fmt: skip


def test_sigkill_loses_at_most_the_last_second(outlets, unique_name, tmp_path):
    _, counter = outlets.start(unique_name, "emg")
    process = _record_cli(tmp_path, unique_name)
    time.sleep(6.0)
    sent = counter.value
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    streams = _streams_by_name(tmp_path / "crash" / "session.xdf")
    recorded = streams[unique_name]["time_series"][:, 2]
    assert len(recorded) > 1000 and np.all(np.diff(recorded) == 1)
    lost_s = (sent - recorded[-1]) / RATE_HZ
    assert lost_s <= 1.0, f"{lost_s:.2f} s lost"


def _limit_file_size() -> None:
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


def test_a_full_disk_stops_with_a_clear_message_and_a_loadable_file(outlets, unique_name, tmp_path):
    outlets.start(unique_name, "emg")
    process = _record_cli(tmp_path, unique_name, preexec=_limit_file_size)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "disk full" in stderr and "Traceback" not in stderr
    xdf = tmp_path / "crash" / "session.xdf"
    assert xdf.stat().st_size <= 200_000
    recorded = _streams_by_name(xdf)[unique_name]["time_series"][:, 2]
    assert len(recorded) > 1000 and np.all(np.diff(recorded) == 1)
    info = json.loads((tmp_path / "crash" / "session.json").read_text())
    assert "disk full" in info["stop_reason"]


@pytest.mark.slow
def test_record_replay_record_round_trip_keeps_samples_and_relative_times(
    outlets, unique_name, tmp_path
):
    """Record a session, replay it over LSL while recording again: identical samples, and time
    stamps equal to the original ones within 0.1 ms after the replay's single time shift."""
    outlets.start(f"{unique_name}-emg", "emg")
    outlets.start(f"{unique_name}-markers", "markers")
    names = [f"{unique_name}-emg", f"{unique_name}-markers"]
    first = _record(
        RecorderConfig(root=str(tmp_path), session="a", streams=[{"name": n} for n in names]), 4.0
    )
    outlets.stop_all()
    replayed = [n + "-replay" for n in names]
    second = Recorder(RecorderConfig(root=str(tmp_path), session="b", streams=[{"name": n} for n in replayed],
                                     discover_interval_s=0.5))  # fmt: skip
    time.sleep(0.5)
    replay = subprocess.Popen(
        [sys.executable, "-m", "nodes.cli", "replay", str(first.folder), "--quiet",
         "--set", 'name_suffix="-replay"', "--set", "wait_for_consumers_s=10", "--set", "lead_s=1.0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while replay.poll() is None and time.monotonic() < deadline:
        second.poll()
        time.sleep(0.05)
    for _ in range(20):  # what is still in flight
        second.poll()
        time.sleep(0.05)
    second.close()
    assert replay.returncode == 0, replay.stdout.read() if replay.stdout else ""
    original = _streams_by_name(first.folder / "session.xdf")
    again = _streams_by_name(second.folder / "session.xdf")
    a, b = original[names[0]], again[replayed[0]]
    np.testing.assert_array_equal(b["time_series"], a["time_series"])
    shift = b["time_stamps"][0] - a["time_stamps"][0]
    np.testing.assert_allclose(b["time_stamps"] - shift, a["time_stamps"], atol=1e-4)
    ma, mb = original[names[1]], again[replayed[1]]
    assert mb["time_series"] == ma["time_series"]
    np.testing.assert_allclose(mb["time_stamps"] - shift, ma["time_stamps"], atol=1e-4)


# ------------------------------------------------------------------ data a user must never lose

BURST_FRAMES = 90  # 3 s of 30 fps video that the recorder has not yet taken at the stop


def _serve_camera_with_backlog(
    name: str, ready: Any, go: Any, burst_done: Any, stop: Any, last_frame: Any
) -> None:
    """320x240 noise frames (slow to encode losslessly) numbered in pixel (0, 0); on ``go``,
    3 s of frames arrive at once (a recorder behind by 3 s), then 30 fps again."""
    import pylsl

    from streaming.acquisition.camera_frames import encode_frame, video_stream_info
    from streaming.acquisition.lsl_io import ChunkOutlet

    rng = np.random.default_rng(3)
    outlet = ChunkOutlet(video_stream_info(name, 320, 240, 30.0, name), max_buffered_s=60)

    def frame(k: int) -> np.ndarray:
        rgb = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        rgb[0, 0] = (k % 256, k // 256, 0)
        return encode_frame(rgb)

    ready.set()
    k, burst = 0, False
    while not stop.is_set():
        if go.is_set() and not burst:
            now = pylsl.local_clock()
            chunk = np.concatenate([frame(k + i) for i in range(BURST_FRAMES)])
            outlet.push_stamped(chunk, now - np.arange(BURST_FRAMES)[::-1] / 30.0)
            k += BURST_FRAMES
            last_frame.value, burst = k - 1, True
            burst_done.set()
        outlet.push(frame(k), pylsl.local_clock())
        last_frame.value = k
        k += 1
        time.sleep(1 / 30)


def test_a_stop_saves_every_frame_sent_before_it_even_when_the_recorder_is_behind(
    outlets, unique_name, tmp_path
):
    """The recorder drains everything pending: a 3 s video backlog at the stop is saved, and
    the video runs to the end of the session like the EMG does."""
    outlets.start(f"{unique_name}-emg", "emg")
    ctx = outlets.ctx
    ready, go, burst_done, stop = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Event()
    last_frame = ctx.Value("q", -1)
    camera = ctx.Process(
        target=_serve_camera_with_backlog,
        args=(f"{unique_name}-camera", ready, go, burst_done, stop, last_frame),
        daemon=True,
    )
    camera.start()
    outlets.running.append((camera, stop, last_frame))
    assert ready.wait(20)
    config = RecorderConfig(
        root=str(tmp_path), session="drain",
        streams=[{"name": f"{unique_name}-{k}"} for k in ("emg", "camera")],
    )  # fmt: skip
    recorder = Recorder(config)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        len(recorder.streams) < 2 or min(r.stats.samples for r in recorder.streams.values()) < 10
    ):
        recorder.poll()
        time.sleep(0.05)
    go.set()
    assert burst_done.wait(20)
    sent_before_stop = last_frame.value
    recorder.close()

    streams = _streams_by_name(recorder.folder / "session.xdf")
    index = streams[f"{unique_name}-camera"]["time_series"][:, 0].astype(int)
    reader = VideoReader(recorder.folder / f"{unique_name}-camera.mkv")
    assert len(reader) == len(index)
    numbers = [int(reader.read(i)[0, 0, 0]) + 256 * int(reader.read(i)[0, 0, 1]) for i in range(len(reader))]  # fmt: skip
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "frames missing"
    assert numbers[-1] >= sent_before_stop, (
        f"frames {numbers[-1] + 1}..{sent_before_stop} were sent before the stop and not saved"
    )
    video_end = streams[f"{unique_name}-camera"]["time_stamps"][-1]
    emg_end = streams[f"{unique_name}-emg"]["time_stamps"][-1]
    assert video_end >= emg_end - 0.5, f"video ends {emg_end - video_end:.2f} s before the EMG"
    info = json.loads((recorder.folder / "session.json").read_text())
    assert {s["name"]: s["samples"] for s in info["streams"]}[f"{unique_name}-camera"] == len(index)


def test_a_full_disk_with_video_ends_in_one_line_and_a_complete_session_json(
    outlets, unique_name, tmp_path
):
    """The video file hits the limit first: no traceback, session.json has the stop time and
    every stream, no temporary file is left."""
    outlets.start(f"{unique_name}-emg", "emg")
    outlets.start(f"{unique_name}-camera", "camera")
    process = subprocess.Popen(
        [sys.executable, "-m", "nodes.cli", "record", "--root", str(tmp_path), "--session", "full",
         "--stream", f"{unique_name}-emg", "--stream", f"{unique_name}-camera", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_limit_file_size,
    )  # fmt: skip
    _, stderr = process.communicate(timeout=180)
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "disk full" in errors[0], stderr
    folder = tmp_path / "full"
    info = json.loads((folder / "session.json").read_text())
    assert info["stopped"] and "disk full" in info["stop_reason"]
    assert sorted(s["name"] for s in info["streams"]) == sorted(
        f"{unique_name}-{k}" for k in ("emg", "camera")
    )
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["session.json", "session.xdf", f"{unique_name}-camera.mkv"]
    )
    recorded = _streams_by_name(folder / "session.xdf")[f"{unique_name}-emg"]["time_series"]
    assert len(recorded) > 100 and np.all(np.diff(recorded[:, 2]) == 1)


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MB file system (tmpfs): writes end in ENOSPC. Needs root and mount rights."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_really_full_disk_still_gets_the_final_session_json(outlets, unique_name, small_disk):
    outlets.start(unique_name, "emg")
    outlets.start(f"{unique_name}-camera", "camera")
    process = subprocess.Popen(
        [sys.executable, "-m", "nodes.cli", "record", "--root", str(small_disk), "--session", "s",
         "--stream", unique_name, "--stream", f"{unique_name}-camera", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _, stderr = process.communicate(timeout=180)
    assert process.returncode == 1 and "Traceback" not in stderr, stderr
    assert "disk full" in stderr
    folder = small_disk / "s"
    info = json.loads((folder / "session.json").read_text())
    assert info["stopped"] and "disk full" in info["stop_reason"] and len(info["streams"]) == 2
    assert not list(folder.glob("session.json.*")), "a temporary file was left"
    recorded = _streams_by_name(folder / "session.xdf")[unique_name]["time_series"][:, 2]
    assert len(recorded) > 100 and np.all(np.diff(recorded) == 1)


def _write_info_with_file_limit(folder: str, limit: int, notes: str) -> None:
    import resource

    from streaming.errors import SessionFileError
    from streaming.recording.session_folder import SessionInfo, write_session_info

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        write_session_info(Path(folder), SessionInfo(participant="P01", notes=notes))
    except SessionFileError as exc:
        print(exc)
        raise SystemExit(3) from None


def test_a_failed_session_json_update_keeps_the_previous_version_and_no_temporary_file(tmp_path):
    from streaming.recording.session_folder import (
        SessionInfo,
        read_session_info,
        write_session_info,
    )

    write_session_info(tmp_path, SessionInfo(participant="P01", notes="first"))
    process = mp.get_context("spawn").Process(
        target=_write_info_with_file_limit, args=(str(tmp_path), 300, "x" * 1000)
    )
    process.start()
    process.join(30)
    assert process.exitcode == 3
    assert read_session_info(tmp_path).notes == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["session.json"]


def test_participant_and_notes_reach_session_json_exactly(tmp_path):
    participant, notes = 'P"01', 'said "stop"; x = 1 \\ [table] # not a comment'
    done = subprocess.run(
        [sys.executable, "-m", "nodes.cli", "record", "--root", str(tmp_path), "--session", "q",
         "--participant", participant, "--notes", notes, "--stream", 'no"such', "--duration", "0.5",
         "--quiet"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    info = json.loads((tmp_path / "q" / "session.json").read_text())
    assert info["participant"] == participant and info["notes"] == notes
    assert "duration" in info["stop_reason"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_closed_terminal_or_sigterm_ends_the_recording_cleanly(
    outlets, unique_name, tmp_path, signum
):
    outlets.start(unique_name, "emg")
    process = _record_cli(tmp_path, unique_name)
    folder = tmp_path / "crash"
    xdf = folder / "session.xdf"
    deadline = time.monotonic() + 60  # until EMG data reach the file
    while time.monotonic() < deadline and (not xdf.exists() or xdf.stat().st_size < 50_000):
        time.sleep(0.2)
    process.send_signal(signum)
    process.communicate(timeout=60)
    assert process.returncode == 0
    info = json.loads((folder / "session.json").read_text())
    assert info["stopped"] and info["streams"][0]["samples"] > 1000
    stream = _streams_by_name(folder / "session.xdf")[unique_name]
    assert int(stream["footer"]["info"]["sample_count"][0]) == len(stream["time_stamps"])


def test_sigkill_loses_at_most_the_last_second_of_video(outlets, unique_name, tmp_path):
    _, sent = outlets.start(unique_name, "camera")
    process = _record_cli(tmp_path, unique_name)
    video = tmp_path / "crash" / f"{unique_name}.mkv"
    deadline = time.monotonic() + 60  # until frames reach the video file
    while time.monotonic() < deadline and (not video.exists() or video.stat().st_size < 20_000):
        time.sleep(0.2)
    time.sleep(3.0)
    sent_at_kill = sent.value
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    index = _streams_by_name(tmp_path / "crash" / "session.xdf")[unique_name]["time_series"]
    saved = len(VideoReader(video))
    assert len(index) - saved <= 30, f"{len(index) - saved} indexed frames not in the video"
    first_value = int(VideoReader(video).read(0)[0, 0, 0])
    last_value = int(VideoReader(video).read(saved - 1)[0, 0, 0])
    assert (last_value - first_value) % 256 == saved - 1, "frames missing inside the video"
    lost = (sent_at_kill - 1 - last_value) % 256  # frames sent before the kill, not saved
    assert lost <= 30, f"the last {lost} frames (> 1 s at 30 fps) before the kill are lost"

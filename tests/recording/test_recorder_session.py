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
from streaming.recorder import Recorder, RecorderConfig
from streaming.video_file import VideoReader

RATE_HZ = 1000.0


def _serve(name: str, kind: str, ready: Any, stop: Any, counter: Any) -> None:
    """EMG with a counter channel, string markers, or a small camera; in a child process."""
    import pylsl

    from streaming.camera.frames import encode_frame, video_stream_info
    from streaming.lsl_io import ChunkOutlet, stream_info

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
    recorder = _record(config, 5.0, during=lambda: outlets.start(unique_name, "emg"))
    counter = _streams_by_name(recorder.folder / "session.xdf")[unique_name]["time_series"][:, 2]
    assert len(counter) > 500 and np.all(np.diff(counter) == 1)


def test_a_stream_that_drops_out_and_returns_is_recorded_on_both_sides(
    outlets, unique_name, tmp_path
):
    stop, _ = outlets.start(unique_name, "emg")
    config = RecorderConfig(root=str(tmp_path), session="outage", streams=[{"name": unique_name}])

    def outage() -> None:
        stop.set()
        time.sleep(1.0)
        outlets.start(unique_name, "emg")  # same source id: liblsl recovers the inlet

    recorder = _record(config, 8.0, during=outage)
    counter = _streams_by_name(recorder.folder / "session.xdf")[unique_name]["time_series"][:, 2]
    restarts = np.flatnonzero(np.diff(counter) < 0)
    assert len(restarts) == 1, "expected one restart of the sender's counter"
    before, after = counter[: restarts[0] + 1], counter[restarts[0] + 1 :]
    assert len(before) > 500 and len(after) > 500
    assert np.all(np.diff(before) == 1) and np.all(np.diff(after) == 1)


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

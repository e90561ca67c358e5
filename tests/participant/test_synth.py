"""``eifer synth``: session folders in the recorder's format that pyxdf loads, ``eifer replay``
plays and ``eifer export`` exports; a seed gives the same files."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import pyxdf

from simulation.synth import SynthConfig, synthesise
from streaming.acquisition.camera_frames import decode_frame
from streaming.acquisition.lsl_io import ChunkInlet, StreamSelector, find_stream
from streaming.recording.session_folder import read_session_info
from streaming.recording.video_file import VideoReader

TINY = {"minutes": 0.03, "width": 320, "height": 180, "face_px": 96}  # 1.8 s per session


def _cli(*argv: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nodes.cli", *argv], capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


@pytest.fixture(scope="module")
def sessions(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    result = _cli(
        "synth", "--participants", "1", "--minutes", str(TINY["minutes"]), "--seed", "7",
        "--size", "320x180", "--set", "face_px=96", "--out", str(out / "a"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "100.0%" in result.stderr  # the progress bar ran to the end
    return out


def _streams(path: Path) -> dict[str, dict]:
    streams, _ = pyxdf.load_xdf(str(path))
    return {s["info"]["name"][0]: s for s in streams}


def test_occluded_session_loads_with_pyxdf_and_holds_the_truth(sessions) -> None:
    folder = sessions / "a" / "P0007" / "occluded-1"
    streams = _streams(folder / "session.xdf")
    assert set(streams) == {"EMG", "EMG-truth", "Markers", "Camera", "Camera-truth"}
    emg, truth = streams["EMG"], streams["EMG-truth"]
    assert emg["info"]["type"] == ["EMG"] and emg["time_series"].shape == (7360, 23)
    assert float(emg["info"]["nominal_srate"][0]) == 4096.0
    np.testing.assert_array_equal(emg["time_series"][:, -1], np.arange(7360))  # counter
    video, vtruth = streams["Camera"], streams["Camera-truth"]
    assert video["info"]["desc"][0]["video"][0]["file"] == ["Camera.mkv"]
    assert len(video["time_stamps"]) == 54 == len(vtruth["time_stamps"])
    assert vtruth["info"]["type"] == ["VideoTruth"]
    with VideoReader(folder / "Camera.mkv") as reader:
        assert len(reader) == 54 and reader.read(0).shape == (180, 320, 3)
    # the video truth's activations are the EMG truth's at the frame times
    labels = [c["label"][0] for c in vtruth["info"]["desc"][0]["channels"][0]["channel"]]
    act = [i for i, x in enumerate(labels) if x.startswith("act_")]
    t_emg = truth["time_stamps"]
    expected = np.stack(
        [np.interp(vtruth["time_stamps"], t_emg, truth["time_series"][:, 1 + j])
         for j in range(len(act))], 1,
    )  # fmt: skip
    np.testing.assert_allclose(vtruth["time_series"][:, act], expected, atol=0.02)
    info = read_session_info(folder)
    assert info.participant == "synth-0007" and info.electrode_scheme == "fridlund"
    assert {s["name"] for s in info.streams} == set(streams)


def test_free_session_has_no_electrodes_and_no_emg(sessions) -> None:
    folder = sessions / "a" / "P0007" / "free"
    streams = _streams(folder / "session.xdf")
    assert set(streams) == {"Markers", "Camera", "Camera-truth"}
    occluded = VideoReader(sessions / "a" / "P0007" / "occluded-1" / "Camera.mkv")
    free = VideoReader(folder / "Camera.mkv")
    # the same face; the occluded one carries bright electrode collars
    a, b = occluded.read(0).astype(int), free.read(0).astype(int)
    white = lambda img: ((img > 225).all(axis=2)).sum()  # noqa: E731
    assert white(a) > white(b) + 50
    occluded.close()
    free.close()


def _same_files(first: Path, again: Path) -> None:
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == 6
    for rel in files:
        assert (first / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_same_seed_gives_the_same_files_and_another_seed_does_not(sessions, tmp_path) -> None:
    config = SynthConfig(participants=1, seed=7, **TINY)
    synthesise(config, tmp_path / "again")
    _same_files(sessions / "a", tmp_path / "again")
    synthesise(config.model_copy(update={"seed": 8, "occluded_sessions": 0}), tmp_path / "other")
    other = tmp_path / "other" / "P0008" / "free" / "Camera.mkv"
    assert other.read_bytes() != (sessions / "a" / "P0007" / "free" / "Camera.mkv").read_bytes()


@pytest.mark.slow
def test_parallel_jobs_write_the_same_files(sessions, tmp_path) -> None:
    config = SynthConfig(participants=1, seed=7, jobs=2, **TINY)
    synthesise(config, tmp_path / "parallel")
    _same_files(sessions / "a", tmp_path / "parallel")


def test_existing_output_is_never_overwritten(sessions) -> None:
    result = _cli("synth", "--minutes", "0.01", "--seed", "7", "--out", str(sessions / "a"))
    assert result.returncode == 1
    assert "never overwritten" in result.stderr.strip().splitlines()[-1]


def test_export_to_mne(sessions, tmp_path) -> None:
    mne = pytest.importorskip("mne")
    folder = sessions / "a" / "P0007" / "occluded-1"
    result = _cli("export", str(folder), "--to", "mne", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    raw = mne.io.read_raw_fif(next(tmp_path.glob("*.fif")), verbose="error")
    assert raw.info["sfreq"] == 4096.0 and len(mne.pick_types(raw.info, emg=True)) == 22


def test_replay_plays_the_synthetic_video(sessions, unique_name) -> None:
    folder = sessions / "a" / "P0007" / "occluded-1"
    suffix = f"-{unique_name}"
    player = subprocess.Popen(
        [sys.executable, "-m", "nodes.cli", "replay", str(folder), "--quiet", "--loop",
         "--set", f'name_suffix="{suffix}"'],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        info = find_stream(StreamSelector(name=f"Camera{suffix}", type="Video"), timeout_s=120)
        truth = find_stream(StreamSelector(name=f"Camera-truth{suffix}"), timeout_s=10)
        assert truth.type() == "VideoTruth"
        with ChunkInlet(info, max_buflen_s=5) as inlet:
            inlet.open(10)
            rows: list[np.ndarray] = []
            deadline = time.monotonic() + 30
            while len(rows) < 5 and time.monotonic() < deadline:
                data, _ = inlet.pull(0.5)
                rows += list(data)
        assert len(rows) >= 5
        with VideoReader(folder / "Camera.mkv") as reader:
            frames = [reader.read(k) for k in range(len(reader))]
        got = decode_frame(rows[-1], 180, 320)
        assert any(np.array_equal(got, f) for f in frames), "replayed frame not bit-exact"
    finally:
        player.terminate()
        player.communicate(timeout=20)

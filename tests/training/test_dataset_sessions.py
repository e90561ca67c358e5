"""Training sets from session folders: EMG feature aligned to frames, truth, determinism,
resume, never overwriting, and errors that name the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from streaming.pipeline.features import get_feature
from training.config import DatasetConfig
from training.dataset import build_dataset, load_dataset
from training.errors import DatasetError
from training.sessions import read_session
from training.toy_sessions import MOVEMENTS, ToySpec, true_phi, write_toy_session


def _lag_frames(feature: np.ndarray, truth: np.ndarray, max_lag: int = 6) -> float:
    """Lag (frames, sub-frame by a parabola through the peak) maximising the mean correlation
    of feature and truth over channels; positive = the feature comes late."""
    ok = np.isfinite(feature).all(axis=1) & np.isfinite(truth).all(axis=1)
    idx = np.flatnonzero(ok)[max_lag:-max_lag]
    lags = np.arange(-max_lag, max_lag + 1)
    score = []
    for lag in lags:
        r = [np.corrcoef(feature[idx + lag, c], truth[idx, c])[0, 1] for c in range(truth.shape[1])]
        score.append(np.nanmean(r))
    k = int(np.argmax(score))
    assert 0 < k < len(lags) - 1, f"correlation peak at the edge of the search: {score}"
    a, b, c = score[k - 1], score[k], score[k + 1]
    return float(lags[k] + 0.5 * (a - c) / (a - 2 * b + c))


@pytest.mark.parametrize("method", ["online", "offline"])
def test_emg_feature_is_aligned_to_frames_within_one_frame(toy_sessions: Path, method: str) -> None:
    config = DatasetConfig(method=method, crops=False)
    table = read_session(toy_sessions / "s0", config, get_feature("low_latency"))
    assert table.participant == "P0" and table.occluded
    assert table.emg_truth.shape == table.emg_uv.shape  # one true activation per channel
    lag = _lag_frames(table.emg_uv.astype(float), table.emg_truth.astype(float))
    assert abs(lag) < 1.0, f"{method}: feature lags the truth by {lag:.2f} frames"
    # the online chain's delay (~39 ms, > one frame) is what the reading at t + D compensates
    if method == "online":
        assert table.info["feature_delay_s"] > 1 / 30


def test_truth_and_movements_come_from_the_session_streams(toy_sessions: Path) -> None:
    table = read_session(
        toy_sessions / "s1", DatasetConfig(crops=False), get_feature("low_latency")
    )
    assert set(table.movement) == {*MOVEMENTS, "rest"}
    # EMG-truth comes per 64-sample chunk, interpolated to the frame times: close, not exact
    np.testing.assert_allclose(table.phi, true_phi(table.emg_truth.astype(float)), atol=0.03)
    # movement labels agree with the truth: channels of a movement are active during it
    smile = table.movement == "Smile-Open"
    assert table.emg_truth[smile, 18].mean() > 0.3 and table.emg_truth[~smile, 18].mean() < 0.2


def test_training_set_is_deterministic_resumable_and_never_overwritten(
    toy_sessions: Path, toy_dataset: Path, tmp_path: Path
) -> None:
    index = json.loads((toy_dataset / "dataset.json").read_text())
    assert index["n_frames"] > 2000 and index["participants"] == ["P0", "P1", "P2"]
    assert index["feature"]["name"] == "low_latency" and index["method"] == "online"
    # rebuilding in a fresh folder gives the same content hash
    config = DatasetConfig(sessions=[str(toy_sessions)], output=str(tmp_path), crops=False)
    again = build_dataset(config, progress=False)
    assert json.loads((again / "dataset.json").read_text())["sha256"] == index["sha256"]
    # an interrupted build (one part's completion marker missing) redoes only that part
    parts = sorted((again / "parts").glob("*.json"))
    kept = {p: p.stat().st_mtime_ns for p in parts[1:]}
    parts[0].unlink()
    (again / "dataset.json").unlink()
    build_dataset(config, progress=False)
    assert parts[0].is_file() and all(p.stat().st_mtime_ns == t for p, t in kept.items())
    assert json.loads((again / "dataset.json").read_text())["sha256"] == index["sha256"]
    # another config into the same folder is refused
    other = config.model_copy(update={"offline_rate_hz": 25.0})
    with pytest.raises(DatasetError, match="never overwritten"):
        build_dataset(other, progress=False)
    loaded = load_dataset(again)
    assert len(loaded) == index["n_frames"] and loaded.channels[0] == "F1"


def test_face_crops_use_the_pipelines_cropper(tmp_path: Path) -> None:
    folder = write_toy_session(
        tmp_path / "short", ToySpec("P9", seed=9, repetitions=1, perform_s=0.5, rest_s=0.3)
    )
    config = DatasetConfig(sessions=[str(folder)], output=str(tmp_path / "sets"), crops=True)
    ts = load_dataset(build_dataset(config, progress=False))
    crops = ts.crops(0)
    assert crops.shape == (len(ts), 224, 224, 3) and crops.dtype == np.uint8
    assert ts.arrays["face_found"].mean() > 0.9  # the Haar cascade finds the photographed face
    assert crops[ts.arrays["face_found"]].std() > 20  # real image content, not blank


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("no_emg", r"session\.xdf: no stream 'EMG-missing'"),
        ("truncated", r"session\.xdf: damaged XDF: truncated"),
        ("short_video", r"Video\.mkv: the frame index expects \d+ frames but the video has"),
        ("missing_video", r"Video\.mkv, which is missing"),
    ],
)
def test_bad_sessions_give_errors_naming_the_file(
    toy_sessions: Path, tmp_path: Path, damage: str, match: str
) -> None:
    folder = _copy(toy_sessions / "s2", tmp_path / "bad")
    config = DatasetConfig(sessions=[str(folder)], output=str(tmp_path / "sets"), crops=True)
    if damage == "no_emg":
        config = config.model_copy(update={"emg_stream": "EMG-missing"})
    elif damage == "truncated":
        xdf = folder / "session.xdf"
        xdf.write_bytes(xdf.read_bytes()[:-1000])
    elif damage == "short_video":
        from streaming.recording.video_file import VideoReader, VideoWriter

        with VideoReader(folder / "Video.mkv") as reader:
            frames = [reader.read(i) for i in range(20)]
        (folder / "Video.mkv").unlink()
        with VideoWriter(folder / "Video.mkv", 160, 160, 30.0) as writer:
            for frame in frames:
                writer.write(frame)
    elif damage == "missing_video":
        (folder / "Video.mkv").unlink()
    with pytest.raises(DatasetError, match=match):
        build_dataset(config, progress=False)

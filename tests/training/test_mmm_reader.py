"""The MMM reader on a small fixture in the published layout (MMM.csv, emg/{pid}_{rec}/{id}.csv,
video_noelec_params/{method}/{pid}_{rec}/{id}_params.csv.gz), written here, incl. its errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from streaming.acquisition.electrodes import load_scheme
from training.config import DatasetConfig
from training.dataset import build_dataset, load_dataset
from training.errors import DatasetError
from training.mmm import INDEX_COLUMNS

CLIPS = [  # (pid, rec, mode, seq, task, frames)
    ("99", "2S", "S", "01", "Smile-Open", 40),
    ("99", "2S", "S", "12", "happy", 35),
    ("98", "1S", "S", "03", "Eye-Tight", 30),
]
MMM_CHANNEL_NAMES = [  # the dataset's column order: alphabetical by muscle, _l before _r
    f"{m}_{s}"
    for m in ("Corrugator Supercilii", "Depressor Ang. Oris", "Depressor Supercilii Procerus",
              "Lateraler Frontalis", "Levator Labii Superioris", "Masseter", "Medialer Frontalis",
              "Mentalis", "Orbicularis Oculi", "Orbicularis Oris", "Zygomaticus")
    for s in ("l", "r")
]  # fmt: skip


def clip_id(pid: str, rec: str, mode: str, seq: str, task: str) -> str:
    return f"{pid}_{rec}_{mode}_{seq}_{task}"


def write_mmm(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The layout with known values: EMG column j of clip k = 10 (k + 1) + j + frame / 100."""
    truth = {}
    rows = [",".join(INDEX_COLUMNS)]
    for k, (pid, rec, mode, seq, task, n) in enumerate(CLIPS):
        cid = clip_id(pid, rec, mode, seq, task)
        emg = 10.0 * (k + 1) + np.arange(22)[None, :] + np.arange(n)[:, None] / 100.0
        params = np.random.default_rng(k).uniform(-1, 1, (n, 361))
        emg_dir = root / "emg" / f"{pid}_{rec}"
        emg_dir.mkdir(parents=True, exist_ok=True)
        lines = ["," + ",".join(MMM_CHANNEL_NAMES)]
        lines += [f"{i}," + ",".join(f"{v:.6f}" for v in row) for i, row in enumerate(emg)]
        (emg_dir / f"{cid}.csv").write_text("\n".join(lines) + "\n")
        par_dir = root / "video_noelec_params" / "eifer" / f"{pid}_{rec}"
        par_dir.mkdir(parents=True, exist_ok=True)
        header = (
            [f"idt{i}" for i in range(300)] + [f"exp{i}" for i in range(50)]
            + ["eyelid_l", "eyelid_r"] + [f"jaw{i}" for i in range(3)]
            + [f"pose{i}" for i in range(3)] + [f"cam{i}" for i in range(3)]
        )  # fmt: skip
        text = ",".join(header) + "\n" + "\n".join(",".join(f"{v:.6f}" for v in r) for r in params)
        with gzip.open(par_dir / f"{cid}_params.csv.gz", "wt") as fh:
            fh.write(text + "\n")
        rows.append(
            f"MMM,{k},{pid},{rec},{mode},{task},functional,A,True,video/{cid}.mp4,"
            f"video_no-cut/{cid}.mp4,{cid},video_noelec/{cid}.mp4"
        )
        truth[cid] = (emg, params)
    # a clip without EMG (electrodes off) is listed but skipped
    rows.append("MMM,9,99,2N,N,Smile-Open,functional,A,True,video/x.mp4,video_no-cut/x.mp4,,")
    (root / "MMM.csv").write_text("\n".join(rows) + "\n")
    return truth


def config(root: Path, out: Path, **extra: object) -> DatasetConfig:
    values = {
        "mmm": [str(root)],
        "output": str(out),
        "feature": "mmm",
        "method": "offline",
        "crops": False,
    }
    return DatasetConfig.model_validate(values | extra)


def test_mmm_layout_becomes_a_training_set(tmp_path: Path) -> None:
    truth = write_mmm(tmp_path / "MMM")
    ts = load_dataset(build_dataset(config(tmp_path / "MMM", tmp_path / "sets"), progress=False))
    assert len(ts) == 40 + 35 + 30
    assert sorted(set(ts.participant.tolist())) == ["98", "99"]  # pid kept as a string
    assert set(ts.arrays["movement"].tolist()) == {"Smile-Open", "happy", "Eye-Tight"}
    assert ts.occluded.all()
    order = load_scheme("fridlund").orderings["mmm"]
    first = ts.part == 0
    emg, params = truth[clip_id(*CLIPS[0][:5])]
    # the set's channels are F1..F22; F1 is the dataset's column of 'Medialer Frontalis_r'
    assert MMM_CHANNEL_NAMES[order.index("F1")] == "Medialer Frontalis_r"
    np.testing.assert_allclose(
        ts.arrays["emg_uv"][first][:, 0], emg[:, order.index("F1")], atol=1e-4
    )
    np.testing.assert_allclose(ts.arrays["phi"][first], params[:, 300:355], atol=1e-5)
    np.testing.assert_allclose(ts.arrays["t_frame"][first][:3], [0, 1 / 30, 2 / 30])


def _first_emg_file(root: Path) -> Path:
    pid, rec, mode, seq, task, _ = CLIPS[0]
    return root / "emg" / f"{pid}_{rec}" / f"{clip_id(pid, rec, mode, seq, task)}.csv"


def _first_params_file(root: Path) -> Path:
    pid, rec, mode, seq, task, _ = CLIPS[0]
    return (
        root / "video_noelec_params" / "eifer" / f"{pid}_{rec}"
        / f"{clip_id(pid, rec, mode, seq, task)}_params.csv.gz"
    )  # fmt: skip


def test_wrong_column_counts_name_the_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / "MMM"
    write_mmm(root)
    emg_file = _first_emg_file(root)
    lines = emg_file.read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0]  # 21 channels on the 5th frame
    emg_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DatasetError, match=rf"{emg_file.name}: line 6 has 22 columns; an MMM EMG file has 23"
    ):
        build_dataset(config(root, tmp_path / "a"), progress=False)

    write_mmm(root2 := tmp_path / "MMM2")
    params = _first_params_file(root2)
    with gzip.open(params, "rt") as fh:
        text = fh.read().splitlines()
    text[2] += ",0.5"
    with gzip.open(params, "wt") as fh:
        fh.write("\n".join(text) + "\n")
    with pytest.raises(
        DatasetError, match=rf"{params.name}: line 3 has 362 columns; an MMM parameter file has 361"
    ):
        build_dataset(config(root2, tmp_path / "b"), progress=False)


@pytest.mark.parametrize("missing", ["emg", "params", "index"])
def test_missing_files_are_named(tmp_path: Path, missing: str) -> None:
    root = tmp_path / "MMM"
    write_mmm(root)
    victim = {
        "emg": _first_emg_file(root),
        "params": _first_params_file(root),
        "index": root / "MMM.csv",
    }[missing]
    victim.unlink()
    with pytest.raises(DatasetError, match=rf"{victim.name}: missing"):
        build_dataset(config(root, tmp_path / "sets"), progress=False)


def test_mmm_needs_the_official_feature(tmp_path: Path) -> None:
    write_mmm(tmp_path / "MMM")
    with pytest.raises(DatasetError, match="feature = 'mmm' and method = 'offline'"):
        build_dataset(
            config(tmp_path / "MMM", tmp_path / "sets", feature="low_latency"), progress=False
        )


def write_mp4(path: Path, n_frames: int, size: int = 286) -> None:
    """An H.264 MP4 at 30 fps, as the dataset publishes its clips, of a real face photograph."""
    import av
    import cv2
    from skimage import data

    face = cv2.resize(data.astronaut()[0:300, 90:390], (size, size), interpolation=cv2.INTER_AREA)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
        for _ in range(n_frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(face, format="rgb24")))
        container.mux(stream.encode(None))


def test_mmm_clips_get_the_pipelines_face_crops(tmp_path: Path) -> None:
    root = tmp_path / "MMM"
    write_mmm(root)
    for pid, rec, mode, seq, task, n in CLIPS:
        write_mp4(root / "video" / f"{clip_id(pid, rec, mode, seq, task)}.mp4", n)
    ts = load_dataset(build_dataset(config(root, tmp_path / "sets", crops=True), progress=False))
    crops = ts.crops(0)
    assert crops.shape == (40, 224, 224, 3) and ts.arrays["face_found"].mean() > 0.9
    # a clip whose video is shorter than its EMG rows is named
    short = root / "video" / f"{clip_id(*CLIPS[1][:5])}.mp4"
    write_mp4(short, 10)
    with pytest.raises(
        DatasetError, match=rf"{short.name}: the frame index expects 35 frames but the video has 10"
    ):
        build_dataset(config(root, tmp_path / "sets2", crops=True), progress=False)

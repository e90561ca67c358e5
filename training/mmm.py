"""Reader of the authors' published dataset layout ("Mimics, Muscles, and Me", MMM).

Layout (MMM_DATASET_README.md; research note eifer_smirk.md section 6)::

    <root>/MMM.csv      index: source, index, pid, rec, mode, task, type, sync_grade, use,
                        video, video_no-cut, emg, video_noelec (one row per clip)
    <root>/video/{id}.mp4  the clip (286x286, 30 fps, H.264; electrodes on): face crops
    <root>/emg/{pid}_{rec}/{id}.csv
                        header row, then per video frame (30 Hz): an unnamed integer frame index
                        and 22 envelopes in the dataset's channel order (alphabetical by muscle,
                        ``_l`` before ``_r``: ``configs/electrodes/fridlund.toml`` ordering ``mmm``)
    <root>/video_noelec_params/{method}/{pid}_{rec}/{id}_params.csv.gz
                        one row per frame, no index, 361 columns: shape 300, expression 50,
                        eyelid 2, jaw 3, pose 3, camera 3 (SMIRK's parametrisation)

Clip ids are ``{pid}_{rec}_{mode}_{task_seq}_{task}`` (``S`` = electrodes on, ``N`` = none); the
``emg`` column holds the clip's EMG file (a path relative to the root, or the clip id). The
envelopes come from the official offline chain (mean removal, 50 Hz notch, 10-500 Hz FIR, 2048-
sample sliding RMS, Fourier resample to 30 Hz), in µV, not normalised; FFT ringing below zero is
clamped at zero, as the README advises. ``pid`` is a string (README: "pid(str!)").
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eifer_models.face_detection.crop import CropSpec
from streaming.acquisition.electrodes import load_scheme
from training.config import DatasetConfig
from training.crops import face_crops
from training.errors import DatasetError
from training.frames import FrameTable

__all__ = [
    "INDEX_COLUMNS",
    "N_PARAM_COLUMNS",
    "MmmClip",
    "mmm_clips",
    "read_emg_csv",
    "read_params",
]

INDEX_COLUMNS = (
    "source", "index", "pid", "rec", "mode", "task", "type", "sync_grade", "use", "video",
    "video_no-cut", "emg", "video_noelec",
)  # fmt: skip
N_PARAM_COLUMNS = 361
PHI_COLUMNS = slice(300, 355)  # expression 50 + eyelid 2 + jaw 3 = phi (55)
FRAME_RATE_HZ = 30.0


def _rows(path: Path) -> list[list[str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8") as fh:
            return [row for row in csv.reader(fh) if row]
    except FileNotFoundError:
        raise DatasetError(f"{path}: missing (MMM layout)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: unreadable ({exc})") from None


def _floats(rows: list[list[str]], path: Path, first_line: int) -> np.ndarray:
    try:
        return np.asarray(rows, dtype=np.float64)
    except ValueError:
        for k, row in enumerate(rows):
            try:
                np.asarray(row, dtype=np.float64)
            except ValueError:
                raise DatasetError(
                    f"{path}: line {first_line + k}: not numbers: {row[:4]}..."
                ) from None
        raise  # pragma: no cover


def _is_header(row: list[str]) -> bool:
    try:
        [float(v) for v in row if v != ""]
        return False
    except ValueError:
        return True


def read_emg_csv(path: Path, n_channels: int = 22) -> np.ndarray:
    """``(n_frames, 22)`` envelopes (µV, dataset order) of one clip; row i = video frame i."""
    rows = _rows(path)
    first = 1
    if rows and _is_header(rows[0]):
        rows, first = rows[1:], 2
    for k, row in enumerate(rows):
        if len(row) != n_channels + 1:
            raise DatasetError(
                f"{path}: line {first + k} has {len(row)} columns; an MMM EMG file has "
                f"{n_channels + 1} (frame index + {n_channels} channels)"
            )
    values = _floats(rows, path, first)
    if len(values) and not np.array_equal(values[:, 0], np.arange(len(values))):
        raise DatasetError(f"{path}: the frame index column is not 0, 1, 2, ...")
    return np.maximum(np.nan_to_num(values[:, 1:], nan=0.0), 0.0)


def read_params(path: Path) -> np.ndarray:
    """``(n_frames, 361)`` per-frame parameters of one clip."""
    rows = _rows(path)
    first = 1
    if rows and _is_header(rows[0]):
        rows, first = rows[1:], 2
    for k, row in enumerate(rows):
        if len(row) != N_PARAM_COLUMNS:
            raise DatasetError(
                f"{path}: line {first + k} has {len(row)} columns; an MMM parameter file has "
                f"{N_PARAM_COLUMNS} (shape 300, expression 50, eyelid 2, jaw 3, pose 3, cam 3)"
            )
    return _floats(rows, path, first)


@dataclass
class MmmClip:
    """One clip with EMG: where its files are and how to read it."""

    root: Path
    clip_id: str
    pid: str
    rec: str
    mode: str
    task: str
    emg_file: Path
    params_file: Path
    channels: list[str]
    video_file: Path | None = None  # the clip's video (electrodes on), read when crops are made
    crop: CropSpec = field(default_factory=CropSpec)  # the dataset's eifer-mode crop

    @property
    def files(self) -> list[Path]:
        videos = [self.video_file] if self.video_file is not None else []
        return [self.root / "MMM.csv", self.emg_file, self.params_file, *videos]

    def read(self, progress: Callable[[int], None] | None = None) -> FrameTable:
        scheme = load_scheme("fridlund")
        order = scheme.orderings["mmm"]  # dataset column -> F label
        missing = [c for c in self.channels if c not in order]
        if missing:
            raise DatasetError(f"{self.emg_file}: MMM files have no channels {missing}")
        emg = read_emg_csv(self.emg_file, len(order))[:, [order.index(c) for c in self.channels]]
        params = read_params(self.params_file)
        if len(params) != len(emg):
            raise DatasetError(
                f"{self.params_file}: {len(params)} frames, its EMG file {self.emg_file} has "
                f"{len(emg)} (row i must be video frame i)"
            )
        n = len(emg)
        crops = found = None
        if self.video_file is not None:
            crops, found = face_crops(self.video_file, np.arange(n), self.crop, progress)
        elif progress is not None:
            progress(n)
        return FrameTable(
            source=f"{self.root}::{self.clip_id}", participant=self.pid,
            occluded=self.mode.upper().startswith("S"), t_frame=np.arange(n) / FRAME_RATE_HZ,
            frame_index=np.arange(n), emg_uv=emg.astype(np.float32),
            movement=np.full(n, self.task), phi=params[:, PHI_COLUMNS].astype(np.float32),
            emg_truth=np.zeros((n, 0), np.float32),
            info={"mmm_clip": self.clip_id, "feature_delay_s": 0.0, "n_frames": n},
            crops=crops, face_found=found,
        )  # fmt: skip


def mmm_clips(root: Path, config: DatasetConfig) -> Iterator[MmmClip]:
    """The clips of ``root/MMM.csv`` that have EMG (``use`` false rows skipped)."""
    index = root / "MMM.csv"
    rows = _rows(index)
    if not rows:
        raise DatasetError(f"{index}: empty")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in INDEX_COLUMNS if c not in header]
    if missing:
        raise DatasetError(f"{index}: lacks columns {missing} (has {header})")
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DatasetError(
                f"{index}: line {line} has {len(row)} columns, the header {len(header)}"
            )
        rec = dict(zip(header, (v.strip() for v in row), strict=True))
        if not rec["emg"] or rec["use"].lower() in ("false", "0", "no"):
            continue
        pid, session = rec["pid"], rec["rec"]
        if "/" in rec["emg"] or rec["emg"].endswith(".csv"):
            emg_file = root / rec["emg"]
            clip_id = Path(rec["emg"]).stem
        else:
            clip_id = rec["emg"]
            emg_file = root / "emg" / f"{pid}_{session}" / f"{clip_id}.csv"
        params = (
            root / "video_noelec_params" / config.mmm_params_method / f"{pid}_{session}"
            / f"{clip_id}_params.csv.gz"
        )  # fmt: skip
        video = root / rec["video"] if config.crops else None
        if config.crops and not rec["video"]:
            raise DatasetError(f"{index} line {line}: clip {clip_id} has no video for its crops")
        for file in (emg_file, params, video):
            if file is not None and not file.is_file():
                raise DatasetError(f"{file}: missing (listed by {index} line {line})")
        yield MmmClip(
            root, clip_id, pid, session, rec["mode"], rec["task"], emg_file, params,
            list(config.channels), video, config.crop_spec(),
        )  # fmt: skip

"""``eifer train dataset``: sources -> one cached, versioned training set.

Layout of a training set folder::

    <set>/dataset.json          format, version, the config, the EMG feature definition, the
                                method, the channels, every part (source, fingerprint, frames,
                                content hash) and the set's hash
    <set>/parts/<id>.npz        per source: t_frame, frame_index, emg_uv, movement, phi,
                                emg_truth, face_found (+ participant, occluded in <id>.json)
    <set>/parts/<id>.crops.npy  (n, 224, 224, 3) uint8 face crops (memory-mapped on load)
    <set>/parts/<id>.json       written last: a part without it is redone (resumable)

Deterministic: the same sources and config give the same arrays and the same ``sha256`` (a hash
of the array contents, not of the zip bytes). Resumable: an interrupted build keeps every finished
part; a rerun with the same config does only the rest. A folder made with another config is
never overwritten (:class:`~training.errors.DatasetError`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streaming.pipeline.features import get_feature
from training.config import DatasetConfig
from training.errors import DatasetError
from training.frames import FrameTable, content_sha256

__all__ = ["DATASET_FORMAT", "TrainingSet", "build_dataset", "load_dataset"]

log = logging.getLogger(__name__)
DATASET_FORMAT = 1
DATASET_FILE = "dataset.json"


def _config_hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _fingerprint(files: list[Path]) -> str:
    """The source's identity: XDF/CSV bytes hashed, large video files by size and mtime."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.name.encode())
        if path.suffix in (".mkv", ".mp4", ".avi"):
            stat = path.stat()
            digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
        else:
            with path.open("rb") as fh:
                while block := fh.read(1 << 20):
                    digest.update(block)
    return digest.hexdigest()


def _part_id(source: str) -> str:
    stem = re.sub(r"[^\w.\-]", "_", Path(source).name)[:60]
    return f"{stem}-{hashlib.sha1(str(Path(source).resolve()).encode()).hexdigest()[:8]}"


@dataclass
class _Source:
    kind: str  # "session" | "mmm"
    path: str  # session folder or XDF file, or "<mmm root>::<clip id>"
    files: list[Path]
    reader: Any  # () -> FrameTable given a progress callback


def _sources(config: DatasetConfig) -> list[_Source]:
    from training.mmm import mmm_clips
    from training.sessions import find_sessions, read_session, session_files

    feature = get_feature(config.feature)
    sources: list[_Source] = []
    for session in find_sessions(config.sessions):
        sources.append(
            _Source(
                "session", str(session), session_files(session),
                lambda progress, s=session: read_session(s, config, feature, progress),
            )
        )  # fmt: skip
    for root in config.mmm:
        if feature.name != "mmm" or config.method != "offline":
            raise DatasetError(
                f"{root}: MMM envelopes come from the dataset's official offline chain; build "
                "this training set with feature = 'mmm' and method = 'offline'"
            )
        for clip in mmm_clips(Path(root), config):
            sources.append(_Source("mmm", f"{root}::{clip.clip_id}", clip.files, clip.read))
    if not sources:
        raise DatasetError("no sources: give session folders (sessions) or MMM roots (mmm)")
    return sources


def build_dataset(config: DatasetConfig, *, progress: bool = True) -> Path:
    """Build (or finish) the training set of ``config``; returns its folder."""
    from tqdm import tqdm

    feature = get_feature(config.feature)
    name = config.name or f"{feature.name}-{config.method}"
    folder = Path(config.output) / name
    described = {
        "format": DATASET_FORMAT,
        "config": config.model_dump(mode="json"),
        "feature": feature.to_dict(),
    }
    config_hash = _config_hash(described)
    index_file = folder / DATASET_FILE
    if index_file.is_file():
        previous = json.loads(index_file.read_text())
        if previous.get("config_hash") != config_hash:
            raise DatasetError(
                f"{folder}: a training set made with another config is there; it is never "
                "overwritten: choose another name (--set name=...) or output"
            )
    elif folder.exists() and any(p for p in folder.iterdir() if p.name != "parts"):
        raise DatasetError(f"{folder}: exists and is not a training set; choose another name")
    parts_dir = folder / "parts"
    parts_dir.mkdir(parents=True, exist_ok=True)
    sources = _sources(config)
    seen: set[str] = set()
    parts: list[dict[str, Any]] = []
    for source in tqdm(sources, desc="sources", unit="source", disable=not progress):
        part_id = _part_id(source.path)
        if part_id in seen:
            raise DatasetError(f"{source.path}: given twice")
        seen.add(part_id)
        fingerprint = _fingerprint(source.files)
        meta_file = parts_dir / f"{part_id}.json"
        if meta_file.is_file():
            meta = json.loads(meta_file.read_text())
            if meta.get("fingerprint") == fingerprint and meta.get("config_hash") == config_hash:
                parts.append(meta)
                continue
            raise DatasetError(
                f"{source.path}: changed since its part {meta_file} was made; build into a "
                "new training set (--set name=...)"
            )
        with tqdm(
            desc=Path(source.path).name, unit="frame", disable=not progress, leave=False
        ) as bar:
            table: FrameTable = source.reader(bar.update)
        parts.append(_write_part(parts_dir, part_id, source, table, fingerprint, config_hash))
    total = hashlib.sha256("".join(p["sha256"] for p in parts).encode()).hexdigest()
    index = described | {
        "config_hash": config_hash,
        "method": config.method,
        "channels": list(config.channels),
        "expression_dim": config.expression_dim,
        "parts": parts,
        "n_frames": int(sum(p["n_frames"] for p in parts)),
        "participants": sorted({p["participant"] for p in parts}),
        "sha256": total,
    }
    _atomic_write(index_file, json.dumps(index, indent=2))
    log.info("training set %s: %d frames from %d sources", folder, index["n_frames"], len(parts))
    return folder


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_part(
    parts_dir: Path, part_id: str, source: _Source, table: FrameTable, fingerprint: str,
    config_hash: str,
) -> dict[str, Any]:  # fmt: skip
    arrays = table.arrays()
    tmp = parts_dir / f"{part_id}.tmp.npz"
    np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
    os.replace(tmp, parts_dir / f"{part_id}.npz")
    if table.crops is not None:
        tmp_crops = parts_dir / f"{part_id}.crops.tmp.npy"
        np.save(tmp_crops, table.crops)
        os.replace(tmp_crops, parts_dir / f"{part_id}.crops.npy")
    meta = {
        "id": part_id,
        "kind": source.kind,
        "source": source.path,
        "participant": table.participant,
        "occluded": table.occluded,
        "n_frames": len(table.t_frame),
        "has_crops": table.crops is not None,
        "emg_truth_labels": table.emg_truth_labels,
        "info": table.info,
        "fingerprint": fingerprint,
        "config_hash": config_hash,
        "arrays_sha256": content_sha256(arrays),
        "sha256": content_sha256(arrays, table.crops),
    }
    _atomic_write(parts_dir / f"{part_id}.json", json.dumps(meta, indent=2))
    return meta


@dataclass
class TrainingSet:
    """A loaded training set: every part's arrays concatenated, plus per-frame part index."""

    path: Path
    index: dict[str, Any]
    arrays: dict[str, np.ndarray]
    participant: np.ndarray  # (n,) str
    occluded: np.ndarray  # (n,) bool
    part: np.ndarray  # (n,) int, row of index["parts"]

    @property
    def sha256(self) -> str:
        return str(self.index["sha256"])

    @property
    def channels(self) -> list[str]:
        return list(self.index["channels"])

    def __len__(self) -> int:
        return len(self.participant)

    def crops(self, part: int) -> np.ndarray:
        """The face crops of one part, memory-mapped."""
        meta = self.index["parts"][part]
        path = self.path / "parts" / f"{meta['id']}.crops.npy"
        if not path.is_file():
            raise DatasetError(f"{path}: missing (build the training set with crops = true)")
        return np.load(path, mmap_mode="r")


def load_dataset(path: str | Path) -> TrainingSet:
    """Read a training set folder (parts checked against their recorded content hash)."""
    folder = Path(path)
    index_file = folder / DATASET_FILE
    if not index_file.is_file():
        raise DatasetError(
            f"{index_file}: missing; not a training set (make one with `eifer train dataset`)"
        )
    index = json.loads(index_file.read_text())
    if index.get("format") != DATASET_FORMAT:
        raise DatasetError(
            f"{index_file}: format {index.get('format')!r}, expected {DATASET_FORMAT}"
        )
    columns: dict[str, list[np.ndarray]] = {}
    participant, occluded, part_no = [], [], []
    for k, meta in enumerate(index["parts"]):
        file = folder / "parts" / f"{meta['id']}.npz"
        try:
            with np.load(file, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{file}: unreadable part ({exc})") from None
        if content_sha256(arrays) != meta["arrays_sha256"]:
            raise DatasetError(f"{file}: content does not match its hash in {index_file}")
        for name, value in arrays.items():
            columns.setdefault(name, []).append(value)
        n = meta["n_frames"]
        participant += [meta["participant"]] * n
        occluded += [meta["occluded"]] * n
        part_no += [k] * n
    widths = {name: max(v.shape[1] for v in vs) for name, vs in columns.items() if vs[0].ndim == 2}
    for name, width in widths.items():  # emg_truth may be absent (width 0) in some parts
        columns[name] = [
            v if v.shape[1] == width else np.full((len(v), width), np.nan, v.dtype)
            for v in columns[name]
        ]
    merged = {name: np.concatenate(vs) for name, vs in columns.items()}
    return TrainingSet(
        folder, index, merged, np.asarray(participant, dtype=str), np.asarray(occluded, bool),
        np.asarray(part_no, dtype=np.int64),
    )  # fmt: skip

"""Frames of a session folder (``eifer record`` / ``eifer synth``) for training.

Reads the contract of DESIGN.md "Sessions on disk": ``session.xdf`` (the ``EMG`` stream with
channel labels and an optional ``counter`` channel; the camera's frame-index stream pointing at
``<stream>.mkv``; ``Markers`` with ``start:<movement>:<rep>`` / ``stop:<movement>:<rep>``;
for simulated sources ``VideoTruth``, per frame ``[frame index, phi (expression_dim), pose...,
face box...]``, and ``EMG-truth``, per chunk ``[sample index, activation per muscle and side]``)
and ``session.json`` (participant, electrode scheme). Every problem raises
:class:`~training.errors.DatasetError` naming the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from streaming.errors import SessionFileError
from streaming.export import stream_labels
from streaming.features import FeatureDefinition
from streaming.replay import RecordedStream, Recording, load_recording
from streaming.session import read_session_info
from streaming.xdf.reader import scan_xdf
from training.config import DatasetConfig
from training.crops import face_crops
from training.emg_at_frames import emg_at_frames, sample_times
from training.errors import DatasetError
from training.frames import REST, FrameTable

__all__ = ["find_sessions", "movement_labels", "read_session"]

COUNTER_MODULO = 2**24  # the EMG stream's counter channel (DESIGN.md)


def find_sessions(paths: list[str]) -> list[Path]:
    """Session folders among ``paths``: a folder with ``session.xdf``, or the folders directly
    inside one that have it (sorted, so the order is deterministic)."""
    found: list[Path] = []
    for text in paths:
        path = Path(text)
        if (path / "session.xdf").is_file():
            found.append(path)
        elif path.is_dir():
            inner = sorted(p for p in path.iterdir() if (p / "session.xdf").is_file())
            if not inner:
                raise DatasetError(f"{path}: no session.xdf in it or in its sub-folders")
            found.extend(inner)
        else:
            raise DatasetError(f"session folder not found: {path}")
    return found


def movement_labels(t_frames: np.ndarray, times: np.ndarray, markers: list[str]) -> np.ndarray:
    """Per frame the movement being performed (between ``start:<m>:<rep>`` and its ``stop``),
    else :data:`REST`."""
    labels = np.full(len(t_frames), REST, dtype=object)
    open_at: dict[str, float] = {}
    for t, text in sorted(zip(times, markers, strict=True), key=lambda p: p[0]):
        parts = text.split(":")
        if len(parts) < 2 or parts[0] not in ("start", "stop"):
            continue
        key = ":".join(parts[1:])
        if parts[0] == "start":
            open_at[key] = t
        elif key in open_at:
            inside = (t_frames >= open_at.pop(key)) & (t_frames < t)
            labels[inside] = parts[1]
    return labels.astype(str)


def _stream(recording: Recording, name: str, xdf: Path) -> RecordedStream:
    try:
        return recording.stream(name)
    except SessionFileError:
        names = [s.out_name for s in recording.streams]
        raise DatasetError(f"{xdf}: no stream {name!r} (streams: {names})") from None


def _optional(recording: Recording, name: str) -> RecordedStream | None:
    try:
        return recording.stream(name)
    except SessionFileError:
        return None


def _emg(stream: RecordedStream, channels: list[str], xdf: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(emg (n, channels) µV, sample index (n,))`` in the configured channel order."""
    labels = stream_labels(stream)
    missing = [c for c in channels if c not in labels]
    if missing:
        raise DatasetError(
            f"{xdf}: EMG stream {stream.name!r} lacks channels {missing} (has {labels})"
        )
    data = np.asarray(stream.data, dtype=np.float64)
    if len(data) < 2:
        raise DatasetError(f"{xdf}: EMG stream {stream.name!r} has {len(data)} samples")
    emg = data[:, [labels.index(c) for c in channels]]
    if "counter" in labels:  # exact sample index across gaps (mod 2^24, unwrapped)
        counter = data[:, labels.index("counter")].astype(np.int64)
        steps = np.diff(counter) % COUNTER_MODULO
        index = np.concatenate([[0], np.cumsum(steps)])
    else:
        index = np.arange(len(data), dtype=np.int64)
    return emg, index


def _video_truth(
    stream: RecordedStream | None, frame_index: np.ndarray, dim: int, xdf: Path
) -> np.ndarray:
    phi = np.full((len(frame_index), dim), np.nan, dtype=np.float32)
    if stream is None:
        return phi
    data = np.asarray(stream.data, dtype=np.float64)
    if data.shape[1] < 1 + dim:
        raise DatasetError(
            f"{xdf}: stream {stream.name!r} has {data.shape[1]} channels; it needs the frame "
            f"index and phi ({dim})"
        )
    row_of = {int(f): i for i, f in enumerate(data[:, 0])}
    rows = np.array([row_of.get(int(f), -1) for f in frame_index])
    found = rows >= 0
    phi[found] = data[rows[found], 1 : 1 + dim]
    return phi


def _emg_truth(
    stream: RecordedStream | None, t0: float, rate_hz: float, t_frames: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """True activations at the frame times, from the sample index of each truth row (exact in
    the EMG stream's own time base; the truth stamps carry no clock offset)."""
    if stream is None:
        return np.zeros((len(t_frames), 0), np.float32), []
    data = np.asarray(stream.data, dtype=np.float64)
    t_rows = t0 + (data[:, 0] - 0.0) / rate_hz
    labels = stream_labels(stream)[1:]
    values = np.stack(
        [
            np.interp(t_frames, t_rows, data[:, c], left=np.nan, right=np.nan)
            for c in range(1, data.shape[1])
        ],
        axis=1,
    )
    return values.astype(np.float32), labels


def truth_per_channel(values: np.ndarray, labels: list[str], channels: list[str]) -> np.ndarray:
    """The true activation under each EMG channel (``(n, channels)``, NaN where none): a truth
    column named like the channel, else the one of the channel's muscle and side in the
    electrode scheme (``<muscle>_l`` / ``_r``, the simulator's labels)."""
    from streaming.electrodes import load_scheme

    scheme = load_scheme("fridlund")
    out = np.full((len(values), len(channels)), np.nan, dtype=np.float32)
    for c, label in enumerate(channels):
        name = label
        if name not in labels and label in scheme.labels:
            channel = scheme.channel(label)
            name = f"{channel.muscle}_{channel.side[0]}" if channel.muscle else ""
        if name in labels:
            out[:, c] = values[:, labels.index(name)]
    return out


def read_session(
    folder: Path,
    config: DatasetConfig,
    feature: FeatureDefinition,
    progress: Callable[[int], None] | None = None,
) -> FrameTable:
    """Every frame of one session folder with its EMG feature, movement and truth."""
    xdf = folder / "session.xdf"
    if not xdf.is_file():
        raise DatasetError(f"{xdf}: missing")
    scan = scan_xdf(xdf)
    if scan.problems:
        raise DatasetError(f"{xdf}: damaged XDF: {'; '.join(scan.problems[:3])}")
    try:
        recording = load_recording(folder)
        info = read_session_info(folder) if (folder / "session.json").is_file() else None
    except SessionFileError as exc:
        raise DatasetError(str(exc)) from None
    participant = (info.participant if info else "") or folder.name
    occluded = bool(info is None or info.electrode_scheme not in ("", "none"))

    video = _stream(recording, config.video_stream, xdf)
    if video.video is None:
        raise DatasetError(f"{xdf}: stream {config.video_stream!r} has no video file")
    t_frames = np.asarray(video.timestamps, dtype=np.float64)
    frame_index = np.asarray(video.data, dtype=np.float64)[:, 0].astype(np.int64)

    emg_stream = _stream(recording, config.emg_stream, xdf)
    emg, index = _emg(emg_stream, list(config.channels), xdf)
    t0, rate_hz = sample_times(emg_stream.timestamps, index)
    t_samples = t0 + index / rate_hz
    if np.any(np.diff(index) > 1):  # gaps: resample onto the full index grid, gap samples NaN
        full = np.full((int(index[-1]) + 1, emg.shape[1]), np.nan)
        full[index] = emg
        emg, t_samples = full, t0 + np.arange(len(full)) / rate_hz
    emg_uv, delay_s = emg_at_frames(
        emg, t_samples, rate_hz, t_frames, feature, config.method,
        offline_rate_hz=config.offline_rate_hz,
    )  # fmt: skip

    markers = _optional(recording, config.markers_stream)
    movement = (
        movement_labels(t_frames, markers.timestamps, [row[0] for row in markers.data])
        if markers is not None
        else np.full(len(t_frames), REST)
    )
    phi = _video_truth(
        _optional(recording, config.video_truth_stream), frame_index, config.expression_dim, xdf
    )
    truth, truth_labels = _emg_truth(
        _optional(recording, config.emg_truth_stream), t0, rate_hz, t_frames
    )
    if truth_labels:  # stored per EMG channel, in the channel order
        truth, truth_labels = (
            truth_per_channel(truth, truth_labels, list(config.channels)),
            list(config.channels),
        )
    table = FrameTable(
        source=str(folder), participant=participant, occluded=occluded, t_frame=t_frames,
        frame_index=frame_index, emg_uv=emg_uv.astype(np.float32), movement=movement, phi=phi,
        emg_truth=truth, emg_truth_labels=truth_labels,
        info={"emg_rate_hz": rate_hz, "feature_delay_s": delay_s, "n_frames": len(t_frames)},
    )  # fmt: skip
    if config.crops:
        assert video.video is not None
        table.crops, table.face_found = face_crops(
            video.video.path, frame_index, config.crop_size, progress
        )
    return table

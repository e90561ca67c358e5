"""Frames of a session (``eifer record`` / ``eifer synth`` folder, or an XDF file) for training.

Reads the contract of DESIGN.md "Sessions on disk": ``session.xdf`` (the ``EMG`` stream with
channel labels and an optional ``counter`` channel; the camera's frame-index stream pointing at
``<stream>.mkv``; ``Markers`` with ``start:<movement>:<rep>`` / ``stop:<movement>:<rep>``;
for simulated sources ``VideoTruth``, per frame ``[frame index, phi (expression_dim), pose...,
face box...]``, and ``EMG-truth``, per chunk ``[sample index, activation per muscle and side]``)
and ``session.json`` (participant, electrode scheme). Every problem raises
:class:`~training.errors.DatasetError` naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from streaming.acquisition.clock import COUNTER_MODULUS
from streaming.errors import SessionFileError
from streaming.pipeline.features import FeatureDefinition
from streaming.recording.export import stream_labels
from streaming.recording.replay import RecordedStream, Recording, load_recording
from streaming.recording.session_folder import read_session_info
from streaming.recording.xdf_reader import scan_xdf
from training.config import DatasetConfig
from training.crops import face_crops
from training.emg_at_frames import emg_at_frames, sample_times
from training.errors import DatasetError
from training.frames import REST, FrameTable

__all__ = ["find_sessions", "movement_labels", "read_session", "session_files", "session_xdf"]


SESSION_XDF = "session.xdf"  # DESIGN.md "Sessions on disk"


def find_sessions(paths: Sequence[str | Path]) -> list[Path]:
    """Every session at or below each of ``paths``, sorted, each once.

    A session is a folder with ``session.xdf`` (given as the folder; its sub-folders are its
    own) or any other ``.xdf`` file (given as the file). A path may be a session, a folder of
    participants (``synth/`` holding ``P0200/occluded-1/``) at any depth, or an XDF file; one
    holding none, or missing, is a :class:`DatasetError` naming it. Hidden folders (``.cache``)
    are skipped.
    """
    found: list[Path] = []
    resolved: set[Path] = set()  # a session reached by two of the paths counts once
    for text in paths:
        path = Path(text)
        if not path.exists():
            raise DatasetError(
                f"{path}: not found (give a session folder, an .xdf file, or a folder with "
                "sessions below it)"
            )
        below = _sessions_below(path)
        if not below:
            raise DatasetError(
                f"{path}: no session in or below it (a session is a folder with {SESSION_XDF} "
                "or an .xdf file)"
            )
        for session in below:
            if session.resolve() not in resolved:
                resolved.add(session.resolve())
                found.append(session)
    return found


def _sessions_below(path: Path) -> list[Path]:
    if path.is_file():
        if path.name == SESSION_XDF:
            return [path.parent]
        return [path] if path.suffix.lower() == ".xdf" else []
    sessions: list[Path] = []
    for folder, subfolders, files in os.walk(path):
        if SESSION_XDF in files:
            sessions.append(Path(folder))
            subfolders.clear()  # a session's sub-folders belong to it
            continue
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        sessions += [Path(folder, f) for f in files if f.lower().endswith(".xdf")]
    return sorted(sessions, key=lambda p: p.parts)


def session_xdf(session: Path) -> Path:
    """The XDF file of a session: ``session.xdf`` of a folder, or the file itself."""
    return session / SESSION_XDF if session.is_dir() else session


def session_files(session: Path) -> list[Path]:
    """What a session's frames come from: its XDF and the video files beside it."""
    xdf = session_xdf(session)
    return [xdf, *sorted(xdf.parent.glob("*.mkv"))]


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


STREAM_TYPES = {  # the contract's stream type for each configured stream (DESIGN.md)
    "emg_stream": "EMG",
    "video_stream": "Video",
    "markers_stream": "Markers",
    "video_truth_stream": "VideoTruth",
    "emg_truth_stream": "EMGTruth",
}


def _optional(recording: Recording, config: DatasetConfig, key: str) -> RecordedStream | None:
    """The stream configured as ``key``: by its name, or ("") the first of the contract's type."""
    name = getattr(config, key)
    if name:
        try:
            return recording.stream(name)
        except SessionFileError:
            return None
    kind = STREAM_TYPES[key]
    return next((s for s in recording.streams if kind in (s.out_type, s.type)), None)


def _stream(recording: Recording, config: DatasetConfig, key: str, xdf: Path) -> RecordedStream:
    stream = _optional(recording, config, key)
    if stream is None:
        name = getattr(config, key)
        wanted = repr(name) if name else f"of type {STREAM_TYPES[key]!r}"
        names = [f"{s.out_name} ({s.out_type})" for s in recording.streams]
        raise DatasetError(f"{xdf}: no stream {wanted} (streams: {names}; set {key})")
    return stream


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
        steps = np.diff(counter) % COUNTER_MODULUS
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
    from streaming.acquisition.electrodes import load_scheme

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
    session: Path,
    config: DatasetConfig,
    feature: FeatureDefinition,
    progress: Callable[[int], None] | None = None,
) -> FrameTable:
    """Every frame of one session (a folder with ``session.xdf``, or an XDF file) with its EMG
    feature, movement and truth."""
    xdf = session_xdf(session)
    folder = xdf.parent
    if not xdf.is_file():
        raise DatasetError(f"{xdf}: missing")
    scan = scan_xdf(xdf)
    if scan.problems:
        raise DatasetError(f"{xdf}: damaged XDF: {'; '.join(scan.problems[:3])}")
    own_info = xdf.name == SESSION_XDF and (folder / "session.json").is_file()
    try:
        recording = load_recording(xdf)
        info = read_session_info(folder) if own_info else None
    except SessionFileError as exc:
        raise DatasetError(str(exc)) from None
    # without session.json: the session folder's name, or a loose XDF file's stem
    participant = (info.participant if info else "") or (
        folder.name if xdf.name == SESSION_XDF else xdf.stem
    )
    occluded = bool(info is None or info.electrode_scheme not in ("", "none"))

    video = _stream(recording, config, "video_stream", xdf)
    if video.video is None:
        raise DatasetError(f"{xdf}: stream {video.out_name!r} has no video file")
    t_frames = np.asarray(video.timestamps, dtype=np.float64)
    frame_index = np.asarray(video.data, dtype=np.float64)[:, 0].astype(np.int64)

    emg_stream = _stream(recording, config, "emg_stream", xdf)
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

    markers = _optional(recording, config, "markers_stream")
    movement = (
        movement_labels(t_frames, markers.timestamps, [row[0] for row in markers.data])
        if markers is not None
        else np.full(len(t_frames), REST)
    )
    phi = _video_truth(
        _optional(recording, config, "video_truth_stream"), frame_index, config.expression_dim, xdf
    )
    truth, truth_labels = _emg_truth(
        _optional(recording, config, "emg_truth_stream"), t0, rate_hz, t_frames
    )
    if truth_labels:  # stored per EMG channel, in the channel order
        truth, truth_labels = (
            truth_per_channel(truth, truth_labels, list(config.channels)),
            list(config.channels),
        )
    table = FrameTable(
        source=str(session), participant=participant, occluded=occluded, t_frame=t_frames,
        frame_index=frame_index, emg_uv=emg_uv.astype(np.float32), movement=movement, phi=phi,
        emg_truth=truth, emg_truth_labels=truth_labels,
        info={"emg_rate_hz": rate_hz, "feature_delay_s": delay_s, "n_frames": len(t_frames)},
    )  # fmt: skip
    if config.crops:
        assert video.video is not None
        table.crops, table.face_found = face_crops(
            video.video.path, frame_index, config.crop_spec(), progress
        )
    return table

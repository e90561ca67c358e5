"""Export a recorded session to MNE (FIF), NumPy (NPZ) and CSV.

- MNE: the EMG stream becomes an ``mne.io.RawArray`` (channel names from the stream's labels,
  type ``emg``; MNE stores volts, so microvolts are scaled by 1e-6 as its ``RawArray`` docs
  require), ``sfreq`` = the nominal rate, ``meas_date`` from the XDF file header when it has one.
  Markers become annotations: ``start:<movement>:<rep>`` / ``stop:<movement>:<rep>`` pairs give
  onset + duration with the movement as description (repetition in ``extras``); every other
  marker is a zero-length annotation with its text. Onsets are relative to the first EMG sample.
  The pipeline's electrode-quality stream of that EMG stream (``<EMG>-quality``), where the
  session has one: channels bad in at least 95 % of its reports go into ``info["bads"]``, and
  every stretch a channel was bad becomes a ``BAD_<reason>`` annotation on that channel
  (``ch_names``; one per reason of the stretch), which MNE's epoching and plotting honour.
- NPZ: one file per stream with ``data``, ``timestamps``, ``labels`` (+ rate, type, unit);
  strings as unicode arrays, so ``np.load(..., allow_pickle=False)`` reads every file.
- CSV: one file per stream, a ``timestamp`` column then one column per channel.

Video frame-index streams export their frame indices (the pixels stay in the video file).
"""

from __future__ import annotations

import csv
import json
import logging
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from streaming.acquisition.markers import parse_trial_marker
from streaming.errors import SessionFileError
from streaming.optional import require
from streaming.recording.quality_timeline import (
    bad_stretches,
    bad_throughout,
    find_quality_stream,
    stream_timeline,
)
from streaming.recording.session_reader import RecordedStream, Recording, load_recording

__all__ = [
    "FORMATS",
    "channel_units",
    "emg_to_raw",
    "export_csv",
    "export_npz",
    "export_session",
    "marker_annotations",
    "quality_annotations",
    "require_samples",
    "stream_labels",
]

log = logging.getLogger(__name__)

FORMATS = ("mne", "npz", "csv")
# unit names as written in desc/channels/channel/unit -> factor to volts
_TO_VOLTS = {
    "microvolts": 1e-6,
    "microvolt": 1e-6,
    "uv": 1e-6,
    "µv": 1e-6,
    "millivolts": 1e-3,
    "millivolt": 1e-3,
    "mv": 1e-3,
    "volts": 1.0,
    "volt": 1.0,
    "v": 1.0,
}


def _channels(stream: RecordedStream) -> list[ET.Element]:
    root = ET.fromstring(stream.header_xml)
    return root.findall("./desc/channels/channel")[: stream.channel_count]


def stream_labels(stream: RecordedStream) -> list[str]:
    """Channel labels from the header (``ch1``.. where absent)."""
    labels = [f"ch{i + 1}" for i in range(stream.channel_count)]
    for i, channel in enumerate(_channels(stream)):
        label = (channel.findtext("label") or "").strip()
        if label:
            labels[i] = label
    return labels


def channel_units(stream: RecordedStream) -> list[str]:
    """Channel units from the header (``""`` where absent)."""
    units = [""] * stream.channel_count
    for i, channel in enumerate(_channels(stream)):
        units[i] = (channel.findtext("unit") or "").strip()
    return units


def _find_stream(recording: Recording, name: str | None, stype: str) -> RecordedStream | None:
    for stream in recording.streams:
        if (name is not None and stream.name == name) or (name is None and stream.type == stype):
            return stream
    return None


def marker_annotations(
    times: np.ndarray, markers: list[str], t0: float, end_s: float
) -> tuple[list[float], list[float], list[str], list[dict[str, Any]]]:
    """``(onsets, durations, descriptions, extras)`` from marker strings (see module doc)."""
    onsets: list[float] = []
    durations: list[float] = []
    descriptions: list[str] = []
    extras: list[dict[str, Any]] = []
    open_trials: dict[tuple[str, int], float] = {}
    for t, text in zip(times, markers, strict=True):
        marker = parse_trial_marker(text)
        if marker is not None and marker.kind == "start":
            open_trials[(marker.movement, marker.repetition)] = float(t) - t0
            continue
        key = (marker.movement, marker.repetition) if marker is not None else None
        if marker is not None and marker.kind == "stop" and key in open_trials:
            onset = open_trials.pop(key)
            onsets.append(onset)
            durations.append(float(t) - t0 - onset)
            descriptions.append(marker.movement)
            extras.append({"repetition": marker.repetition})
            continue
        onsets.append(float(t) - t0)  # any other marker (or a stop without start): an event
        durations.append(0.0)
        descriptions.append(text)
        extras.append({})
    for (movement, rep), onset in open_trials.items():
        log.warning(
            "marker start:%s:%s has no stop: annotated to the end of the recording", movement, rep
        )
        onsets.append(onset)
        durations.append(max(0.0, end_s - onset))
        descriptions.append(movement)
        extras.append({"repetition": rep, "unterminated": True})
    order = np.argsort(onsets, kind="stable")
    return (
        [onsets[i] for i in order],
        [durations[i] for i in order],
        [descriptions[i] for i in order],
        [extras[i] for i in order],
    )


def _meas_date(recording: Recording) -> datetime | None:
    """The XDF file header's ``datetime`` (LabRecorder writes it), else ``session.json``'s."""
    info = recording.file_header.get("info", {})
    raw = info.get("datetime") if isinstance(info, dict) else None
    text = raw[0] if isinstance(raw, list) and raw else raw
    if not isinstance(text, str) or not text.strip():
        meta = _session_meta(recording)
        text = next((meta[k] for k in ("datetime", "started_at", "start_time") if k in meta), None)
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        log.warning("file header datetime %r is not ISO 8601; meas_date left empty", text)
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _session_meta(recording: Recording) -> dict[str, Any]:
    folder = recording.path if recording.path.is_dir() else recording.path.parent
    path = folder / "session.json"
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SessionFileError(f"{path}: not valid JSON ({exc})") from None
    return meta if isinstance(meta, dict) else {}


def emg_to_raw(recording: Recording, *, emg: str | None = None, markers: str | None = None) -> Any:
    """The EMG stream (by name, default: the first of type ``EMG``) as an ``mne.io.RawArray``."""
    mne = require("mne", "mne", "export to MNE")

    stream = _find_stream(recording, emg, "EMG")
    if stream is None or stream.channel_format == "string":
        raise SessionFileError(
            f"{recording.path}: no EMG stream {emg or '(type EMG)'}; streams: "
            f"{[(s.name, s.type) for s in recording.streams]}"
        )
    if stream.rate_hz <= 0:
        raise SessionFileError(f"stream {stream.name!r} has no nominal rate; MNE needs one")
    if stream.n_samples == 0:
        raise SessionFileError(f"stream {stream.name!r} holds no samples")
    labels, units = stream_labels(stream), channel_units(stream)
    scale = np.ones(stream.channel_count)
    ch_types = []
    for i, unit in enumerate(units):
        factor = _TO_VOLTS.get(unit.lower())
        if factor is None:
            ch_types.append("misc")  # counters, triggers: no voltage unit
            if unit:
                log.warning("channel %s has unit %r: exported as misc, unscaled", labels[i], unit)
        else:
            ch_types.append("emg")
            scale[i] = factor
    if not units or all(not u for u in units):  # no units at all: the DESIGN default, microvolts
        ch_types = ["emg"] * stream.channel_count
        scale[:] = 1e-6
        log.warning("stream %r has no channel units; assuming microvolts", stream.name)
    data = np.asarray(stream.data, dtype=np.float64).T * scale[:, None]
    info = mne.create_info(labels, sfreq=stream.rate_hz, ch_types=ch_types)
    raw = mne.io.RawArray(data, info, verbose="error")
    meas_date = _meas_date(recording)
    if meas_date is not None:
        raw.set_meas_date(meas_date)
    participant = _session_meta(recording).get("participant")
    if participant:
        raw.info["subject_info"] = {"his_id": str(participant)}
    t0, end_s = float(stream.timestamps[0]), float(stream.timestamps[-1] - stream.timestamps[0])
    onsets: list[float] = []
    durations: list[float] = []
    descriptions: list[str] = []
    extras: list[dict[str, Any]] = []
    ch_names: list[tuple[str, ...]] = []
    marker_stream = _find_stream(recording, markers, "Markers")
    if marker_stream is not None and marker_stream.n_samples:
        texts = [row[0] if row else "" for row in marker_stream.data]
        onsets, durations, descriptions, extras = marker_annotations(
            marker_stream.timestamps, texts, t0, end_s
        )
        ch_names = [()] * len(onsets)
    bads, quality = quality_annotations(recording, stream.name, labels, t0, end_s)
    raw.info["bads"] = bads
    for onset, duration, description, channel in quality:
        onsets.append(onset)
        durations.append(duration)
        descriptions.append(description)
        extras.append({})
        ch_names.append((channel,))
    if onsets:
        annotations = mne.Annotations(
            onsets, durations, descriptions, orig_time=raw.info["meas_date"],
            ch_names=ch_names, extras=extras,
        )  # fmt: skip
        raw.set_annotations(annotations)
    return raw


def quality_annotations(
    recording: Recording, emg: str, labels: list[str], t0: float, end_s: float
) -> tuple[list[str], list[tuple[float, float, str, str]]]:
    """From the EMG stream ``emg``'s quality stream (none: nothing): the channels bad
    throughout, and ``(onset, duration, "BAD_<reason>", channel)`` per bad stretch and reason,
    onsets from ``t0`` (the first EMG sample), clipped to the EMG's ``[0, end_s]``."""
    stream = find_quality_stream(recording, emg)
    if stream is None or stream.n_samples == 0:
        return [], []
    try:
        timeline = stream_timeline(stream)
    except ValueError as exc:
        log.warning("quality stream %r not exported: %s", stream.name, exc)
        return [], []
    known = set(labels)
    bads = [c for c in bad_throughout(timeline) if c in known]
    out = []
    for stretch in bad_stretches(timeline):
        if stretch.channel not in known:
            continue
        onset = min(max(0.0, stretch.start_lsl - t0), end_s)
        duration = max(0.0, min(stretch.end_lsl - t0, end_s) - onset)
        for reason in stretch.reasons or ("quality",):
            out.append((onset, duration, f"BAD_{reason}", stretch.channel))
    return bads, out


def require_samples(recording: Recording) -> None:
    """:class:`SessionFileError` for a recording without a single sample: every exporter
    refuses it the same way, rather than writing an empty export."""
    if any(stream.n_samples for stream in recording.streams):
        return
    streams = ", ".join(repr(s.name) for s in recording.streams)
    held = f"streams {streams} hold no samples" if streams else "it holds no streams"
    raise SessionFileError(f"{recording.path}: nothing to export: {held} (an empty recording)")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "stream"


def _file_names(recording: Recording) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for stream in recording.streams:
        base = _safe(stream.name)
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}_{stream.stream_id}")
    return names


def _values(stream: RecordedStream) -> np.ndarray:
    if stream.channel_format == "string":
        return np.array(stream.data, dtype=str).reshape(stream.n_samples, stream.channel_count)
    return np.asarray(stream.data)


def export_npz(recording: Recording, folder: str | Path) -> list[Path]:
    """One ``<stream>.npz`` per stream; readable with ``allow_pickle=False``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for stream, base in zip(recording.streams, _file_names(recording), strict=True):
        path = folder / f"{base}.npz"
        np.savez(
            path,
            data=_values(stream),
            timestamps=stream.timestamps,
            labels=np.array(stream_labels(stream), dtype=str),
            units=np.array(channel_units(stream), dtype=str),
            rate_hz=np.float64(stream.rate_hz),
            type=np.array(stream.type, dtype=str),
            name=np.array(stream.name, dtype=str),
        )
        paths.append(path)
    return paths


def export_csv(recording: Recording, folder: str | Path) -> list[Path]:
    """One ``<stream>.csv`` per stream: ``timestamp`` then one column per channel label."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for stream, base in zip(recording.streams, _file_names(recording), strict=True):
        path = folder / f"{base}.csv"
        values = _values(stream)
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["timestamp", *stream_labels(stream)])
            for t, row in zip(stream.timestamps, values, strict=True):
                writer.writerow([repr(float(t)), *(str(v) for v in row)])
        paths.append(path)
    return paths


def export_session(
    path: str | Path,
    to: Literal["mne", "npz", "csv"],
    out: str | Path | None = None,
    *,
    emg: str | None = None,
    markers: str | None = None,
) -> list[Path]:
    """Export a session folder or XDF file; returns the files written.

    Parameters
    ----------
    path : str | Path
        A session folder or an XDF file.
    to : {"mne", "npz", "csv"}
        ``mne``: the EMG stream as a FIF file with the markers as annotations; ``npz`` and
        ``csv``: every stream, samples with their LSL times.
    out : str | Path | None
        Output folder; default ``<session>/export/`` (``<xdf stem>_export/`` beside a bare XDF
        file).
    emg, markers : str | None
        For ``mne``: the names of the EMG and marker streams (default: the first stream of type
        ``EMG`` and of type ``Markers``).

    Returns
    -------
    list of Path
        The files written.
    """
    if to not in FORMATS:
        raise ValueError(f"unknown export format {to!r}; use one of {FORMATS}")
    recording = load_recording(path)
    require_samples(recording)
    source = Path(path)
    if out is None:
        out = source / "export" if source.is_dir() else source.with_name(source.stem + "_export")
    out = Path(out)
    if to == "npz":
        return export_npz(recording, out)
    if to == "csv":
        return export_csv(recording, out)
    raw = emg_to_raw(recording, emg=emg, markers=markers)
    out.mkdir(parents=True, exist_ok=True)
    fif = out / f"{_safe(source.stem if source.is_file() else source.name)}_emg_raw.fif"
    raw.save(fif, overwrite=True, verbose="error")
    return [fif]

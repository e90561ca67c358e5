"""A recorded electrode-quality timeline, summarised: per channel how long it was good, check and
bad, the reasons seen, and the stretches it was bad (``session.json``'s ``quality``; the MNE
export's ``BAD_<reason>`` annotations and ``info["bads"]``).

Each report judges the block of ``update_s`` that ends at its time stamp, and its state holds for
that block; so a run of ``bad`` reports at ``t_a .. t_b`` is the stretch ``[t_a - update_s,
t_b]``. A gap in the reports (the pipeline or the EMG stream stopped) ends a stretch.
Layout of the stream: :mod:`streaming.dsp.quality_codes`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import numpy as np

from streaming.dsp.quality_codes import STREAM_TYPE, QualityTimeline, decode_timeline
from streaming.dsp.quality_report import BAD, REASONS, STATES
from streaming.recording.session_reader import RecordedStream, Recording

__all__ = [
    "BadStretch",
    "bad_stretches",
    "bad_throughout",
    "find_quality_stream",
    "kept_summary",
    "stream_timeline",
    "summarise",
]

_GAP = 1.5  # reports further apart than this many update_s: a gap, not one stretch


@dataclass(frozen=True)
class BadStretch:
    """A channel bad from ``start_lsl`` to ``end_lsl`` (LSL seconds) for ``reasons`` (kinds,
    e.g. ``flat``, ``bridged``; the union over the stretch, in REASONS order)."""

    channel: str
    start_lsl: float
    end_lsl: float
    reasons: tuple[str, ...]

    @property
    def duration_s(self) -> float:
        return self.end_lsl - self.start_lsl


def _runs(on: np.ndarray, times: np.ndarray, update_s: float) -> list[tuple[int, int]]:
    """``(first, last)`` report indices of each run of ``on``, split at gaps in ``times``."""
    if not on.any():
        return []
    gap = np.diff(times) > _GAP * update_s
    starts = on & np.concatenate([[True], ~on[:-1] | gap])
    ends = on & np.concatenate([~on[1:] | gap, [True]])
    return list(zip(np.flatnonzero(starts), np.flatnonzero(ends), strict=True))


def bad_stretches(timeline: QualityTimeline) -> list[BadStretch]:
    """Every channel's bad stretches, by start time."""
    out = []
    for c, label in enumerate(timeline.channels):
        on = timeline.levels[:, c] == STATES.index(BAD)
        for first, last in _runs(on, timeline.times, timeline.update_s):
            bits = int(np.bitwise_or.reduce(timeline.reason_bits[first : last + 1, c]))
            kinds = tuple(r for i, r in enumerate(REASONS) if bits & (1 << i))
            start = float(timeline.times[first]) - timeline.update_s
            out.append(BadStretch(label, start, float(timeline.times[last]), kinds))
    return sorted(out, key=lambda s: (s.start_lsl, s.channel))


def bad_throughout(timeline: QualityTimeline, fraction: float = 0.95) -> list[str]:
    """Channels ``bad`` in at least ``fraction`` of the reports (MNE's ``info["bads"]``: a
    channel to leave out, not a stretch to skip); the margin spares the few reports before a
    fault from the start is flagged."""
    if len(timeline.times) == 0:
        return []
    share = (timeline.levels == STATES.index(BAD)).mean(axis=0)
    return [c for c, f in zip(timeline.channels, share, strict=True) if f >= fraction]


def summarise(timeline: QualityTimeline, stream: str = "") -> dict[str, Any]:
    """``session.json``'s summary of one quality stream: per channel ``good_s``, ``check_s``,
    ``bad_s`` (seconds in each state), ``reasons`` (kind -> seconds it was given, good or not),
    ``bad_stretches`` (``start_s`` from the timeline's start, ``duration_s``, ``start_lsl``,
    ``reasons``); ``start_lsl`` is the start of the first judged block."""
    update_s = timeline.update_s
    t0 = float(timeline.times[0]) - update_s if len(timeline.times) else 0.0
    stretches = bad_stretches(timeline)
    channels: dict[str, Any] = {}
    for c, label in enumerate(timeline.channels):
        counts = np.bincount(timeline.levels[:, c], minlength=len(STATES))
        reasons = {}
        for i, reason in enumerate(REASONS):
            n = int(((timeline.reason_bits[:, c] >> i) & 1).sum())
            if n:
                reasons[reason] = round(n * update_s, 3)
        channels[label] = {
            **{
                f"{state}_s": round(float(counts[k]) * update_s, 3)
                for k, state in enumerate(STATES)
            },
            "reasons": reasons,
            "bad_stretches": [
                {
                    "start_s": round(s.start_lsl - t0, 3),
                    "duration_s": round(s.duration_s, 3),
                    "start_lsl": s.start_lsl,
                    "reasons": list(s.reasons),
                }
                for s in stretches
                if s.channel == label
            ],
        }
    return {
        "stream": stream,
        "update_s": update_s,
        "reports": len(timeline.times),
        "seconds": round(len(timeline.times) * update_s, 3),
        "start_lsl": t0,
        "channels": channels,
    }


def find_quality_stream(recording: Recording, emg: str | None = None) -> RecordedStream | None:
    """The quality stream of EMG stream ``emg`` (its ``desc/of_stream``); without a name, the
    first quality stream."""
    for stream in recording.streams:
        if stream.type != STREAM_TYPE or stream.channel_format == "string":
            continue
        if emg is None or _desc(stream).get("of_stream") == emg:
            return stream
    return None


def stream_timeline(stream: RecordedStream) -> QualityTimeline:
    """The timeline a recorded quality stream holds (its layout from its ``desc``)."""
    desc = _desc(stream)
    channels = [c for c in str(desc.get("emg_channels", "")).split(",") if c]
    update_s = float(desc.get("update_s") or 0.5)
    data = np.asarray(stream.data, dtype=np.float64).reshape(stream.n_samples, -1)
    return decode_timeline(stream.timestamps, data, channels, update_s)


def kept_summary(info: Any, kept: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """:func:`summarise` of the samples a recorder kept of the quality stream ``info`` (a
    ``pylsl.StreamInfo``), ``[(stamps, rows)]``."""
    desc = _desc_of(info.as_xml())
    channels = [c for c in str(desc.get("emg_channels", "")).split(",") if c]
    times = np.concatenate([t for t, _ in kept])
    rows = np.concatenate([np.asarray(d).reshape(len(t), -1) for t, d in kept])
    timeline = decode_timeline(times, rows, channels, float(desc.get("update_s") or 0.5))
    return {"of_stream": desc.get("of_stream", ""), **summarise(timeline, info.name())}


def _desc(stream: RecordedStream) -> dict[str, Any]:
    return _desc_of(stream.header_xml)


def _desc_of(header_xml: str) -> dict[str, Any]:
    """The flat entries of a stream header's ``desc`` (text children only)."""
    desc = ET.fromstring(header_xml).find("desc")
    if desc is None:
        return {}
    return {child.tag: (child.text or "") for child in desc if not list(child)}

"""Replay a recorded session (or any XDF file) as LSL streams with the original timing.

How the anchors do it (``../shared/research/streaming_anchors.md`` sections 2-4): MNE-LSL's
``PlayerLSL`` stamps each chunk with the LSL time of its last sample and sleeps against
``local_clock`` so that drift cancels; pyxdf's ``playback_lsl`` re-stamps every stream with
``local_clock`` and offers a speed factor and a loop. Here:

- every stream is read into one time base: pyxdf's clock synchronisation (per clock segment,
  ClockOffset chunks) puts the samples in the recorder's clock; a negative jump that survives
  (a clock reset without offsets) starts a new segment that continues where the last one ended,
  and silences in *all* streams longer than ``max_gap_s`` are shortened (a reboot between clock
  segments does not stall the replay for minutes); inter-stream alignment is kept because every
  stream gets the same shift;
- output stamp = ``base + (t - t_start) / speed`` with one ``base`` for all streams (per loop), and
  samples are pushed with :meth:`ChunkOutlet.push_stamped` as numpy chunks when ``local_clock``
  reaches their stamp, in cycles of ``chunk_ms`` (the chunk sizes of a live amplifier node);
- video: the frame-index stream's pixels come from its video file (:mod:`streaming.session_reader`);
  the replay decodes each frame (on a prefetch thread) and streams it at its recorded time as the
  original ``Video`` stream.

Reading is :func:`streaming.session_reader.load_recording` (re-exported here).

The timing core (:class:`Timeline`) is pure and tested without LSL; :class:`Player` owns the
outlets and the clock.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import NonNegativeFloat, NonNegativeInt, PositiveFloat

from streaming.config import Config
from streaming.errors import SessionFileError
from streaming.session_reader import (
    RecordedStream,
    Recording,
    VideoSource,
    load_recording,
    read_stream_headers,
)

__all__ = [
    "Player",
    "Progress",
    "RecordedStream",
    "Recording",
    "ReplayConfig",
    "Timeline",
    "VideoSource",
    "load_recording",
    "outlet_info",
    "print_progress",
    "read_stream_headers",
    "remove_negative_jumps",
    "shorten_gaps",
]

log = logging.getLogger(__name__)


class ReplayConfig(Config):
    """Settings of ``eifer replay`` (``configs/nodes/replay.toml``)."""

    speed: PositiveFloat | Literal["max"] = 1.0  # 0.5..10 typical; "max" = as fast as possible
    repeat: NonNegativeInt = 1  # how many times to play; 0 = loop until stopped
    start_s: NonNegativeFloat = 0.0  # seconds into the recording where the replay starts
    stop_s: PositiveFloat | None = None  # seconds into the recording where it stops (None = end)
    streams: list[str] = []  # stream names or types to replay; empty = all
    name_suffix: str = ""  # appended to every stream name and source id (side-by-side replays)
    chunk_ms: PositiveFloat = 10.0  # push cycle; a live amplifier node sends 5-30 ms chunks
    lead_s: NonNegativeFloat = 0.2  # delay between opening the outlets and the first sample
    wait_for_consumers_s: NonNegativeFloat = 0.0  # wait this long for every outlet to be read
    max_gap_s: PositiveFloat = 5.0  # silences in all streams longer than this are shortened
    loop_gap_s: NonNegativeFloat = 0.1  # time between the end of one loop and the next start
    video_buffer_s: PositiveFloat = 5.0  # outlet buffer of video streams (frames are large)
    progress_s: PositiveFloat = 1.0  # period of the progress line
    drain_s: NonNegativeFloat = 0.5  # outlets stay open this long after the last sample


# ------------------------------------------------------------------------------ time base


def remove_negative_jumps(timestamps: np.ndarray, rate_hz: float) -> tuple[np.ndarray, int]:
    """Make a stream's stamps non-decreasing: after a backward jump (a clock reset not fixed by
    clock offsets) the next segment continues one sample period after the previous one.

    Returns ``(stamps, n_resets)``.
    """
    t = np.asarray(timestamps, dtype=np.float64).copy()
    if len(t) < 2:
        return t, 0
    step = 1.0 / rate_hz if rate_hz > 0 else 0.0
    jumps = np.flatnonzero(np.diff(t) < 0) + 1
    for i in jumps:
        t[i:] += t[i - 1] + step - t[i]
    return t, len(jumps)


def shorten_gaps(streams: Sequence[np.ndarray], max_gap_s: float) -> tuple[list[np.ndarray], float]:
    """Shorten silences common to all streams to ``max_gap_s``, shifting every stream alike.

    Returns the new stamps and the total time removed.
    """
    non_empty = [t for t in streams if len(t)]
    if not non_empty:
        return [np.asarray(t, dtype=np.float64) for t in streams], 0.0
    union = np.unique(np.concatenate(non_empty))
    gaps = np.diff(union)
    where = np.flatnonzero(gaps > max_gap_s)
    if not len(where):
        return [np.asarray(t, dtype=np.float64) for t in streams], 0.0
    ends = union[where]  # last stamp before each long gap
    cut = gaps[where] - max_gap_s
    cumulative = np.cumsum(cut)
    result = []
    for t in streams:
        t = np.asarray(t, dtype=np.float64)
        k = np.searchsorted(ends, t, side="left")  # how many gaps end strictly before t
        shift = np.where(k > 0, cumulative[np.maximum(k - 1, 0)], 0.0)
        result.append(t - shift)
    return result, float(cumulative[-1])


# ------------------------------------------------------------------------------ timeline


@dataclass
class Track:
    """A stream as the player plays it: the chosen sample range and its recording times."""

    stream: RecordedStream
    times: np.ndarray  # (n,) recording times of the samples in [start, stop]
    first: int  # index of times[0] in stream.timestamps


class Timeline:
    """Which samples are due at an output time, and their output stamps (pure, no LSL).

    Recording time ``t`` in loop ``k`` maps to ``base + k * loop_s + (t - start) / speed``;
    ``speed = inf`` gives the 1x stamps and ``due`` everything up to the virtual time the
    caller advances.
    """

    def __init__(
        self,
        recording: Recording,
        config: ReplayConfig,
    ) -> None:
        chosen = [s.matches(config.streams) for s in recording.streams]
        if config.streams and not any(chosen):
            listed = [(s.out_name, s.out_type) for s in recording.streams]
            raise SessionFileError(
                f"{recording.path}: no stream named or typed {config.streams}; streams: {listed}"
            )
        # one time base for the whole recording, whatever is chosen: offsets and alignment
        # mean the same in every replay of it
        fixed = []
        self.resets = 0
        for s in recording.streams:
            t, resets = remove_negative_jumps(s.timestamps, s.rate_hz)
            self.resets += resets
            fixed.append(t)
        fixed, self.removed_gap_s = shorten_gaps(fixed, config.max_gap_s)
        if not any(len(t) for t, c in zip(fixed, chosen, strict=True) if c):
            raise SessionFileError(f"{recording.path}: the chosen streams hold no samples")
        origin = min(t[0] for t in fixed if len(t))
        last = max(t[-1] for t, c in zip(fixed, chosen, strict=True) if c and len(t))
        self.start = origin + config.start_s
        self.stop = last if config.stop_s is None else min(last, origin + config.stop_s)
        if self.stop < self.start:
            raise SessionFileError(
                f"{recording.path}: start_s={config.start_s} is past the end of the recording "
                f"({last - origin:.3f} s long)"
            )
        self.duration_s = self.stop - self.start
        self.speed = float("inf") if config.speed == "max" else float(config.speed)
        self.repeat = config.repeat
        self.loop_gap_s = config.loop_gap_s
        self.tracks = []
        for s, t, c in zip(recording.streams, fixed, chosen, strict=True):
            if not c:
                continue
            i0 = int(np.searchsorted(t, self.start, side="left"))
            i1 = int(np.searchsorted(t, self.stop, side="right"))
            self.tracks.append(Track(s, t[i0:i1], i0))

    @property
    def stamp_scale(self) -> float:
        """Output seconds per recording second (1 for as-fast-as-possible)."""
        return 1.0 if np.isinf(self.speed) else 1.0 / self.speed

    @property
    def loop_s(self) -> float:
        """Output seconds from the start of one loop to the start of the next."""
        return self.duration_s * self.stamp_scale + self.loop_gap_s

    def stamps(self, track: Track, lo: int, hi: int, base: float, loop: int) -> np.ndarray:
        """Output stamps of ``track.times[lo:hi]`` in loop ``loop``."""
        return base + loop * self.loop_s + (track.times[lo:hi] - self.start) * self.stamp_scale

    def due(self, track: Track, elapsed_s: float) -> int:
        """End index (exclusive) of the samples due ``elapsed_s`` output seconds into a loop."""
        t = self.start + elapsed_s / self.stamp_scale
        return int(np.searchsorted(track.times, t, side="right"))


# ------------------------------------------------------------------------------ player


@dataclass(frozen=True)
class Progress:
    """What the progress line shows."""

    position_s: float  # recording seconds played in this loop
    duration_s: float
    loop: int  # 0-based
    samples: int  # pushed so far, all streams
    lag_ms: float  # how late the last cycle pushed its samples
    done: bool = False

    def line(self) -> str:
        pct = 100.0 * self.position_s / self.duration_s if self.duration_s > 0 else 100.0
        state = "done" if self.done else f"lag {self.lag_ms:5.1f} ms"
        return (
            f"replay {self.position_s:8.2f} / {self.duration_s:.2f} s ({pct:5.1f} %)  "
            f"loop {self.loop + 1}  {self.samples} samples  {state}"
        )


def _copy_xml(source: ET.Element, target: Any) -> None:
    """Copy an ElementTree subtree under a pylsl XMLElement, keeping order and text."""
    for child in source:
        if len(child):
            _copy_xml(child, target.append_child(child.tag))
        else:
            target.append_child_value(child.tag, child.text or "")


def outlet_info(stream: RecordedStream, name_suffix: str = "") -> Any:
    """The pylsl StreamInfo that re-creates ``stream`` (video: the original camera stream)."""
    import pylsl

    root = ET.fromstring(stream.header_xml)
    video = stream.video
    source_id = (stream.source_id or stream.name) + name_suffix
    if video is None:
        info = pylsl.StreamInfo(
            stream.name + name_suffix,
            stream.type,
            stream.channel_count,
            stream.rate_hz,
            stream.channel_format,
            source_id,
        )
    else:
        info = pylsl.StreamInfo(
            video.name + name_suffix,
            video.type,
            video.channel_count,
            stream.rate_hz,
            video.channel_format,
            source_id,
        )
    desc = root.find("desc")
    if desc is not None:
        if video is not None:
            desc = _without(desc, "video")
        _copy_xml(desc, info.desc())
    if video is not None:
        present = {child.tag for child in desc} if desc is not None else set()
        layout = {
            "width": video.width,
            "height": video.height,
            "pixel_format": "gray16le" if video.depth else "rgb24",
        }
        for key, value in layout.items():
            if key not in present:
                info.desc().append_child_value(key, str(value))
    return info


def _without(element: ET.Element, tag: str) -> ET.Element:
    copy = ET.Element(element.tag)
    copy.extend(child for child in element if child.tag != tag)
    return copy


class _FramePrefetch:
    """Decodes a track's frames in order on a thread, a few ahead, so that decoding a large
    frame never delays the EMG pushes of the same cycle; loops as often as the replay does."""

    def __init__(self, reader: Any, frames: np.ndarray, loops: int, depth: int = 8) -> None:
        self._reader, self._frames, self._loops = reader, frames, loops
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replay-video", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        loop = 0
        while not self._stop.is_set() and (self._loops == 0 or loop < self._loops):
            for index in self._frames:
                try:
                    item: Any = self._reader.read(int(index))
                except Exception as exc:  # handed to the player, which raises it
                    item = exc
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            loop += 1

    def take(self, n: int) -> list[np.ndarray]:
        items = [self._queue.get() for _ in range(n)]
        for item in items:
            if isinstance(item, BaseException):
                raise item
        return items

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)


class _Feed:
    """One outlet and the cursor of its track."""

    def __init__(self, track: Track, outlet: Any, loops: int) -> None:
        self.track = track
        self.outlet = outlet
        self.cursor = 0
        self.video = None
        self.prefetch: _FramePrefetch | None = None
        stream = track.stream
        if stream.video is not None:
            from streaming.video_file import VideoReader

            column = np.asarray(stream.data)[:, 0]
            frames = column[track.first : track.first + len(track.times)].astype(np.int64)
            expected = int(np.max(column)) + 1 if len(column) else 0
            self.video = VideoReader(stream.video.path, expected_frames=expected)
            self.prefetch = _FramePrefetch(self.video, frames, loops)

    def rows(self, lo: int, hi: int) -> Any:
        """Samples ``lo:hi`` of the track; video frames are taken in order from the prefetch."""
        stream = self.track.stream
        first = self.track.first
        if self.prefetch is not None:
            dtype = np.int16 if stream.video and stream.video.depth else np.int8
            return np.stack([p.reshape(-1).view(dtype) for p in self.prefetch.take(hi - lo)])
        return stream.data[first + lo : first + hi]

    def close(self) -> None:
        if self.prefetch is not None:
            self.prefetch.close()
        if self.video is not None:
            self.video.close()
        self.outlet.close()


class Player:
    """Plays a :class:`Recording` to LSL outlets paced against ``local_clock``.

    ``run()`` blocks until the replay ends or :meth:`stop` is called (from another thread or a
    signal handler). ``on_progress`` gets a :class:`Progress` every ``progress_s``.
    """

    def __init__(
        self,
        recording: Recording,
        config: ReplayConfig,
        *,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.recording = recording
        self.config = config
        self.timeline = Timeline(recording, config)
        self.on_progress = on_progress
        self._stop = False
        self.samples_pushed = 0

    def stop(self) -> None:
        self._stop = True

    def _open(self) -> list[_Feed]:
        from streaming.lsl_io import ChunkOutlet

        feeds = []
        try:
            for track in self.timeline.tracks:
                info = outlet_info(track.stream, self.config.name_suffix)
                # liblsl drops the oldest samples beyond max_buffered; as fast as possible, a
                # slow reader must not lose data, so the outlet holds the whole replay
                # (video excepted: frames are MBs each, video_buffer_s bounds the memory)
                fast = np.isinf(self.timeline.speed)
                buffered = 360.0 if not fast else max(360.0, self.timeline.duration_s + 10.0)
                if track.stream.video:
                    buffered = self.config.video_buffer_s
                feeds.append(
                    _Feed(track, ChunkOutlet(info, max_buffered_s=buffered), self.timeline.repeat)
                )
        except BaseException:
            for feed in feeds:
                feed.close()
            raise
        return feeds

    def run(self) -> int:
        """Play; returns the number of samples pushed."""
        import pylsl

        feeds = self._open()
        try:
            if self.timeline.resets:
                log.warning(
                    "%d clock reset(s) without clock offsets: segments joined", self.timeline.resets
                )
            if self.timeline.removed_gap_s > 0:
                log.info(
                    "silences of %.1f s in all streams shortened to %.1f s each",
                    self.timeline.removed_gap_s,
                    self.config.max_gap_s,
                )
            if self.config.wait_for_consumers_s > 0:
                deadline = time.monotonic() + self.config.wait_for_consumers_s
                for feed in feeds:
                    feed.outlet.wait_for_consumers(max(0.0, deadline - time.monotonic()))
            self._play(feeds, pylsl.local_clock)
        finally:
            for feed in feeds:
                feed.close()
        return self.samples_pushed

    def _play(self, feeds: list[_Feed], clock: Callable[[], float]) -> None:
        timeline = self.timeline
        cycle_s = self.config.chunk_ms / 1000.0
        fast = np.isinf(timeline.speed)
        base = clock() + self.config.lead_s
        loop = 0
        next_progress = time.monotonic()
        while not self._stop and (timeline.repeat == 0 or loop < timeline.repeat):
            loop_base = base + loop * timeline.loop_s
            for feed in feeds:
                feed.cursor = 0
            virtual = 0.0  # output seconds into this loop (as-fast-as-possible mode)
            while not self._stop:
                if fast:
                    virtual += cycle_s
                    elapsed = virtual
                else:
                    elapsed = clock() - loop_base
                lag_ms = 0.0
                pending = False
                for feed in feeds:
                    hi = timeline.due(feed.track, elapsed)
                    if hi > feed.cursor:
                        stamps = timeline.stamps(feed.track, feed.cursor, hi, base, loop)
                        feed.outlet.push_stamped(feed.rows(feed.cursor, hi), stamps)
                        self.samples_pushed += hi - feed.cursor
                        feed.cursor = hi
                        if not fast:
                            lag_ms = max(lag_ms, (clock() - stamps[-1]) * 1000.0)
                    pending |= feed.cursor < len(feed.track.times)
                position = min(max(elapsed, 0.0) / timeline.stamp_scale, timeline.duration_s)
                if self.on_progress and time.monotonic() >= next_progress:
                    next_progress = time.monotonic() + self.config.progress_s
                    self.on_progress(
                        Progress(position, timeline.duration_s, loop, self.samples_pushed, lag_ms)
                    )
                if not pending:
                    break
                if not fast:
                    # sleep to the next cycle boundary, so pushes stay regular (PlayerLSL style)
                    time.sleep(max(0.0, cycle_s - ((clock() - loop_base) % cycle_s)))
            loop += 1
        if self.on_progress:
            self.on_progress(
                Progress(
                    timeline.duration_s,
                    timeline.duration_s,
                    max(loop - 1, 0),
                    self.samples_pushed,
                    0.0,
                    done=True,
                )
            )
        if not self._stop:
            time.sleep(self.config.drain_s)  # consumers receive the last chunks before closing


def print_progress(progress: Progress, stream: Any = sys.stderr) -> None:
    """A one-line progress display that rewrites itself."""
    end = "\n" if progress.done else ""
    stream.write("\r" + progress.line() + end)
    stream.flush()

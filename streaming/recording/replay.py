"""Replay a recorded session (or any XDF file) as LSL streams with the original timing.

How the anchors do it (``../shared/research/streaming_anchors.md`` sections 2-4): MNE-LSL's
``PlayerLSL`` stamps each chunk with the LSL time of its last sample and sleeps against
``local_clock`` so that drift cancels; pyxdf's ``playback_lsl`` re-stamps every stream with
``local_clock`` and offers a speed factor and a loop. Here:

- every stream is read into one time base (pyxdf clock synchronisation, clock resets joined,
  long common silences shortened: :mod:`streaming.recording.replay_timeline`);
- output stamp = ``base + (t - t_start) / speed`` with one ``base`` for all streams (per loop), and
  samples are pushed with :meth:`ChunkOutlet.push_stamped` as numpy chunks when ``local_clock``
  reaches their stamp, in cycles of ``chunk_ms`` (the chunk sizes of a live amplifier node);
- video: the frame-index stream's pixels come from its video file
  (:mod:`streaming.recording.session_reader`); the replay decodes each frame (on a prefetch thread)
  and streams it at its recorded time as the original ``Video`` stream.

Reading is :func:`streaming.recording.session_reader.load_recording`; it and the timing names are
re-exported here for callers of the replay as a whole.

The timing core (:class:`Timeline`, :mod:`streaming.recording.replay_timeline`) is pure and tested
without LSL; :class:`Player` owns the outlets and the clock.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from streaming.recording.replay_timeline import (
    ReplayConfig,
    Timeline,
    Track,
    remove_negative_jumps,
    shorten_gaps,
)
from streaming.recording.session_reader import (
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
            from streaming.recording.video_file import VideoReader

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
        from streaming.acquisition.lsl_io import ChunkOutlet

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
            self._drain(feeds)

    def _drain(self, feeds: list[_Feed]) -> None:
        """Keep the outlets open until no consumer is left (each has what it wanted and closed
        its inlet) or ``drain_s`` has passed: closing an outlet drops what is still in flight."""
        deadline = time.monotonic() + self.config.drain_s
        while not self._stop and time.monotonic() < deadline:
            if not any(feed.outlet.have_consumers() for feed in feeds):
                return
            time.sleep(0.02)


def print_progress(progress: Progress, stream: Any = sys.stderr) -> None:
    """A one-line progress display that rewrites itself."""
    end = "\n" if progress.done else ""
    stream.write("\r" + progress.line() + end)
    stream.flush()

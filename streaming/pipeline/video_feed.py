"""The pipeline's frame clock: camera frames from the ``Video`` stream, or an internal clock.

Every frame carries its capture time (the camera node stamps at capture, DESIGN.md), corrected
into this machine's clock by the inlet. Dropped frames (a gap of more than 1.5 frame periods) and
duplicates (a repeated or non-increasing stamp) are detected and counted; a gap longer than
``stall_after_s`` is a camera outage (reported in the stream's health), not dropped frames.

Under overload the pipeline stays current (DESIGN.md): a frame that has waited longer than
``max_queue_ms`` past the moment it became ready (its arrival, or the end of its bounded wait for
EMG: the consumer says which through ``ready_at``) while a newer one is waiting is skipped, and
counted as ``skipped``; late frames are worth less than current ones in biofeedback. Ordinary
transport bursts (two frames arriving together) are not skipped: the older one has not waited
long when it is taken.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field, PositiveFloat, PositiveInt

from streaming.acquisition.camera_frames import decode_frame, frame_shape
from streaming.acquisition.lsl_io import ChunkInlet, StreamSelector
from streaming.config import Config
from streaming.pipeline.feed import ReconnectingFeed
from streaming.pipeline.health import StreamHealth

__all__ = [
    "Frame",
    "FrameCounter",
    "InternalFrameClock",
    "VideoFeed",
    "VideoInputConfig",
    "arrival_time",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    """One frame: capture time in this machine's LSL clock, and its pixels when decoded."""

    t: float
    index: int
    rgb: np.ndarray | None = None
    t_arrival: float | None = None  # LSL time the frame reached the pipeline (None: on time)


class VideoInputConfig(Config):
    """Which camera stream clocks the pipeline (or an internal clock when disabled)."""

    enabled: bool = True
    name: str | None = "Camera"
    type: str | None = "Video"
    source_id: str | None = None
    clock_offset_s: float = 0.0
    frame_rate_hz: PositiveFloat = 30.0  # the internal clock's rate when enabled = false
    queue_frames: PositiveInt = 30  # hard cap on waiting frames (overflow is skipped, counted)
    max_queue_ms: PositiveFloat = Field(
        50.0, description="a frame waiting longer than this, with a newer one queued, is skipped"
    )
    stall_after_s: PositiveFloat = 1.0  # no frame this long = a camera outage, not drops
    reconnect_timeout_s: PositiveFloat = 2.0
    decode_pixels: bool = True

    def selector(self) -> StreamSelector:
        return StreamSelector(self.name or None, self.type or None, self.source_id or None)


class FrameCounter:
    """Counts dropped and duplicate frames from capture stamps; longer gaps are outages."""

    def __init__(self, rate_hz: float, outage_after_s: float = float("inf")) -> None:
        self.period_s = 1.0 / rate_hz if rate_hz > 0 else None
        self.outage_after_s = outage_after_s
        self.dropped = 0
        self.duplicates = 0
        self.outages = 0
        self._last_t: float | None = None

    def accept(self, t: float) -> bool:
        """False for a duplicate (to be skipped); counts drops before ``t``."""
        last, self._last_t = self._last_t, t if self._last_t is None else max(t, self._last_t)
        if last is None:
            return True
        dt = t - last
        if self.period_s is None:
            if dt <= 0:
                self.duplicates += 1
                return False
            return True
        if dt < 0.5 * self.period_s:
            self.duplicates += 1
            return False
        if dt > self.outage_after_s:  # the camera was gone: not frames it dropped
            self.outages += 1
            return True
        missed = round(dt / self.period_s) - 1
        if missed > 0:
            self.dropped += missed
        return True


ReadyAt = Callable[[Frame], float]


def arrival_time(frame: Frame) -> float:
    """When a frame could be processed at the earliest: when it arrived (default ``ready_at``)."""
    return frame.t if frame.t_arrival is None else frame.t_arrival


def _take_current(
    frames: deque[Frame], now: float, max_queue_s: float, ready_at: ReadyAt
) -> tuple[Frame, int]:
    """The oldest frame that is still current, and how many older ones were skipped for it."""
    skipped = 0
    while len(frames) > 1 and now - ready_at(frames[0]) > max_queue_s:
        frames.popleft()
        skipped += 1
    return frames.popleft(), skipped


class VideoFeed(ReconnectingFeed):
    """Frames from the camera stream; stale ones are skipped when the consumer falls behind."""

    label = "video input"

    def __init__(self, config: VideoInputConfig) -> None:
        super().__init__(
            config.selector(),
            config.reconnect_timeout_s,
            config.name or config.type or "Video",
            stall_after_s=config.stall_after_s,
        )
        self.config = config
        self.counter = FrameCounter(0.0)
        self.skipped = 0  # frames the pipeline did not process to stay current (overload)
        self.stale_skipped = 0  # history liblsl replays to a new inlet (not live frames)
        self.dropped_before = 0  # camera drops counted on earlier connections
        self._frames: deque[Frame] = deque()

    def next_frame(self, timeout_s: float, ready_at: ReadyAt = arrival_time) -> Frame | None:
        """The next current frame (waiting up to ``timeout_s``); stale ones are skipped."""
        import pylsl

        with self._changed:
            if not self._frames:
                self._changed.wait(timeout_s)
            if not self._frames:
                return None
            frame, skipped = _take_current(
                self._frames, pylsl.local_clock(), self.config.max_queue_ms / 1e3, ready_at
            )
            self.skipped += skipped
            return frame

    @property
    def dropped(self) -> int:
        """Frames the camera did not deliver while connected (gaps in capture stamps)."""
        return self.dropped_before + self.counter.dropped

    @property
    def duplicates(self) -> int:
        return self.counter.duplicates

    @property
    def rate_hz(self) -> float:
        """The camera's nominal frame rate (0 before the stream was found)."""
        return 1.0 / self.counter.period_s if self.counter.period_s else 0.0

    def _acquire(self, info: Any) -> None:
        import pylsl

        height, width = frame_shape(info)
        self.dropped_before += self.counter.dropped
        self.counter = FrameCounter(info.nominal_srate(), self.config.stall_after_s)
        with ChunkInlet(info, max_buflen_s=2, max_chunk=self.config.queue_frames) as inlet:
            inlet.open(self.config.reconnect_timeout_s)
            log.info("video input: %r, %dx%d", info.name(), width, height)
            # liblsl hands a new inlet the outlet's recent backlog: frames captured before this
            # connection are history, not live frames, and are skipped (not counted as drops)
            connected_at = pylsl.local_clock() + self.config.clock_offset_s - 0.1
            index = 0
            while not self._stop.is_set():
                pixels, stamps = inlet.pull(timeout_s=0.1)  # raises when the stream is lost
                if len(stamps) == 0:
                    self.health.check_stall()  # liblsl's recover=True keeps waiting silently
                    continue
                self.health.on_data(len(stamps))
                arrived = pylsl.local_clock()
                for row, t in zip(pixels, stamps, strict=True):
                    t = float(t) + self.config.clock_offset_s
                    if t < connected_at:
                        self.stale_skipped += 1
                        continue
                    if not self.counter.accept(t):
                        continue
                    rgb = decode_frame(row, height, width) if self.config.decode_pixels else None
                    self._push(Frame(t=t, index=index, rgb=rgb, t_arrival=arrived))
                    index += 1

    def _push(self, frame: Frame) -> None:
        with self._changed:
            self._frames.append(frame)
            while len(self._frames) > self.config.queue_frames:
                self._frames.popleft()
                self.skipped += 1
            self._changed.notify()


class InternalFrameClock:
    """Frame times from this machine's LSL clock, for EMG-only sessions without a camera.

    Frame ``k`` is due at ``t_0 + k / rate_hz``; a frame whose ``ready_at`` lies more than
    ``max_queue_ms`` in the past while the next one is due too is skipped (no backlog).
    """

    def __init__(self, rate_hz: float, max_queue_ms: float = 50.0) -> None:
        import pylsl

        self._clock = pylsl.local_clock
        self.period_s = 1.0 / rate_hz
        self.rate_hz = rate_hz
        self.max_queue_s = max_queue_ms / 1e3
        self.duplicates = 0
        self.dropped = 0  # an internal clock never drops a frame; only the consumer skips them
        self.skipped = 0
        self._next = self._clock()
        self._index = 0
        self.health = StreamHealth(name="internal clock", stall_after_s=float("inf"))
        self.health.on_data(0)

    def start(self) -> None:
        self._next = self._clock()  # the first frame is due now, not when this was built

    def stop(self) -> None:
        pass

    def next_frame(self, timeout_s: float, ready_at: ReadyAt = arrival_time) -> Frame | None:
        now = self._clock()
        if now - self._next > 10.0:  # suspended for long: jump near now at once
            late = int((now - self._next) // self.period_s) - 1
            self._next, self._index = self._next + late * self.period_s, self._index + late
            self.skipped += late
        while (
            now >= self._next + self.period_s
            and now - ready_at(Frame(t=self._next, index=self._index)) > self.max_queue_s
        ):
            self._next += self.period_s
            self._index += 1
            self.skipped += 1
        wait = self._next - now
        if wait > timeout_s:
            time.sleep(timeout_s)
            return None
        if wait > 0:
            time.sleep(wait)
        frame = Frame(t=self._next, index=self._index)
        self._next += self.period_s
        self._index += 1
        self.health.on_data(1)
        return frame

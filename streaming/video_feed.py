"""The pipeline's frame clock: camera frames from the ``Video`` stream, or an internal clock.

Every frame carries its capture time (the camera node stamps at capture, DESIGN.md), corrected
into this machine's clock by the inlet. Dropped frames (a gap of more than 1.5 frame periods) and
duplicates (a repeated or non-increasing stamp) are detected and counted. When the pipeline falls
behind, only the newest ``queue_frames`` frames are kept and the overflow is counted as dropped:
late frames are worth less than current ones in biofeedback.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import PositiveFloat, PositiveInt

from streaming.camera.frames import decode_frame, frame_shape
from streaming.config import Config
from streaming.feed import ReconnectingFeed
from streaming.health import StreamHealth
from streaming.lsl_io import ChunkInlet, StreamSelector

__all__ = ["Frame", "FrameCounter", "InternalFrameClock", "VideoFeed", "VideoInputConfig"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    """One frame: capture time in this machine's LSL clock, and its pixels when decoded."""

    t: float
    index: int
    rgb: np.ndarray | None = None


class VideoInputConfig(Config):
    """Which camera stream clocks the pipeline (or an internal clock when disabled)."""

    enabled: bool = True
    name: str | None = "Camera"
    type: str | None = "Video"
    source_id: str | None = None
    clock_offset_s: float = 0.0
    frame_rate_hz: PositiveFloat = 30.0  # the internal clock's rate when enabled = false
    queue_frames: PositiveInt = 30  # 1 s at 30 fps: liblsl delivers the first ~0.6 s at once
    reconnect_timeout_s: PositiveFloat = 2.0
    decode_pixels: bool = True

    def selector(self) -> StreamSelector:
        return StreamSelector(self.name or None, self.type or None, self.source_id or None)


class FrameCounter:
    """Counts dropped and duplicate frames from capture stamps."""

    def __init__(self, rate_hz: float) -> None:
        self.period_s = 1.0 / rate_hz if rate_hz > 0 else None
        self.dropped = 0
        self.duplicates = 0
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
        missed = round(dt / self.period_s) - 1
        if missed > 0:
            self.dropped += missed
        return True


class VideoFeed(ReconnectingFeed):
    """Frames from the camera stream, newest kept when the consumer falls behind."""

    label = "video input"

    def __init__(self, config: VideoInputConfig) -> None:
        super().__init__(
            config.selector(), config.reconnect_timeout_s, config.name or config.type or "Video"
        )
        self.config = config
        self.counter = FrameCounter(0.0)
        self.overflow = 0
        self.stale_skipped = 0
        self._frames: deque[Frame] = deque()

    def next_frame(self, timeout_s: float) -> Frame | None:
        with self._changed:
            if not self._frames:
                self._changed.wait(timeout_s)
            return self._frames.popleft() if self._frames else None

    @property
    def dropped(self) -> int:
        return self.counter.dropped + self.overflow

    @property
    def duplicates(self) -> int:
        return self.counter.duplicates

    @property
    def rate_hz(self) -> float:
        """The camera's nominal frame rate (0 before the stream was found)."""
        return 1.0 / self.counter.period_s if self.counter.period_s else 0.0

    def _acquire(self, info: Any) -> None:
        height, width = frame_shape(info)
        self.counter = FrameCounter(info.nominal_srate())
        with ChunkInlet(info, max_buflen_s=2, max_chunk=self.config.queue_frames) as inlet:
            inlet.open(self.config.reconnect_timeout_s)
            self.health.reconnects += 1  # 'connected' once data flows
            self.health.last_error = ""
            log.info("video input: %r, %dx%d", info.name(), width, height)
            # liblsl hands a new inlet the outlet's recent backlog: frames captured before this
            # connection are history, not live frames, and are skipped (not counted as drops)
            import pylsl

            connected_at = pylsl.local_clock() + self.config.clock_offset_s - 0.1
            index = 0
            while not self._stop.is_set():
                pixels, stamps = inlet.pull(timeout_s=0.1)
                self.health.connected = len(stamps) > 0 or self.health.age_s < 1.0
                if len(stamps) == 0:
                    continue
                self.health.on_data(len(stamps))
                for row, t in zip(pixels, stamps, strict=True):
                    t = float(t) + self.config.clock_offset_s
                    if t < connected_at:
                        self.stale_skipped += 1
                        continue
                    if not self.counter.accept(t):
                        continue
                    rgb = decode_frame(row, height, width) if self.config.decode_pixels else None
                    self._push(Frame(t=t, index=index, rgb=rgb))
                    index += 1

    def _push(self, frame: Frame) -> None:
        with self._changed:
            self._frames.append(frame)
            while len(self._frames) > self.config.queue_frames:
                self._frames.popleft()
                self.overflow += 1
            self._changed.notify()


class InternalFrameClock:
    """Frame times from this machine's LSL clock, for EMG-only sessions without a camera."""

    def __init__(self, rate_hz: float) -> None:
        import pylsl

        self._clock = pylsl.local_clock
        self.period_s = 1.0 / rate_hz
        self.rate_hz = rate_hz
        self.duplicates = 0
        self._next = self._clock()
        self._index = 0
        self.health = StreamHealth(name="internal clock", connected=True)
        self.dropped = 0

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def next_frame(self, timeout_s: float) -> Frame | None:
        wait = self._next - self._clock()
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

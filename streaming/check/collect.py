"""What ``eifer check`` watches for a fixed window: the bus (``muscle``, ``expression``,
``status``, ``quality``), the camera's capture stamps, the EMG stream's clock offset, and the truth streams
the sources publish (the EMG simulator's ``EMGTruth``; a synthetic participant's ``VideoTruth``).

Stamps are in this machine's LSL clock (inlets apply clock correction, as the pipeline's do), so
a message's ``t`` and the capture stamp of its frame are the same number.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streaming.acquisition.lsl_io import ChunkInlet, StreamSelector, desc_to_dict, find_stream
from streaming.bus.curve import CurveClient
from streaming.bus.pubsub import Message, Subscriber
from streaming.bus.schema import validate
from streaming.check.config import CheckConfig
from streaming.check.truth import TruthRecorder, emg_truth_selector
from streaming.errors import EiferError, PayloadError

__all__ = ["Observation", "observe"]

log = logging.getLogger(__name__)


@dataclass
class Observation:
    """Everything seen during the window ``[t_start, t_end]`` (LSL time)."""

    t_start: float
    t_end: float
    messages: list[Message] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)  # LSL time each message arrived
    rejected: int = 0
    disconnects: int = 0  # bus connections dropped (oversized message, publisher gone)
    capture_t: np.ndarray | None = None  # camera stamps (None: no camera stream)
    camera_rate_hz: float = 0.0
    clock_offsets_s: list[float] = field(default_factory=list)  # EMG stream time corrections
    emg_truth: TruthRecorder | None = None
    video_truth: TruthRecorder | None = None
    notes: list[str] = field(default_factory=list)

    def topic(self, name: str) -> list[Message]:
        return [m for m in self.messages if m.topic == name]


class _StampCounter:
    """Capture stamps of a stream (pixels pulled and discarded), in a thread."""

    def __init__(self, info: Any) -> None:
        self.inlet = ChunkInlet(info, max_buflen_s=5, max_chunk=64)
        self.stamps: list[np.ndarray] = []
        self._stop = threading.Event()
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, name="capture-stamps", daemon=True)

    def start(self, timeout_s: float) -> None:
        self.inlet.open(timeout_s)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                _, stamps = self.inlet.pull(timeout_s=0.1)
                if len(stamps):
                    self.stamps.append(stamps)
        except EiferError as exc:
            self.error = str(exc)

    def stop(self) -> np.ndarray:
        self._stop.set()
        self.thread.join(5)
        self.inlet.close()
        return np.concatenate(self.stamps) if self.stamps else np.empty(0)


def _find(selector: StreamSelector, timeout_s: float, what: str, notes: list[str]) -> Any:
    try:
        return find_stream(selector, timeout_s)
    except EiferError as exc:
        notes.append(f"{what}: {exc}")
        return None


def _video_truth_selector(info: Any) -> StreamSelector | None:
    """The ``VideoTruth`` stream a camera names in ``desc/camera/truth_stream`` (the synthetic
    participant; None: no truth)."""
    desc = desc_to_dict(info)
    camera = desc.get("camera")
    if not isinstance(camera, dict):
        camera = {}
    name = camera.get("truth_stream") or desc.get("truth_stream") or ""
    return StreamSelector(name=name) if name else None


def observe(config: CheckConfig) -> Observation:
    """Watch the live system for ``config.seconds`` (plus settling and draining)."""
    import pylsl

    notes: list[str] = []
    curve = CurveClient.from_keys(config.bus_curve)  # a bad key file stops it before LSL
    emg_info = _find(config.emg.selector(), config.find_timeout_s, "EMG stream", notes)
    video_info = _find(config.video.selector(), config.find_timeout_s, "camera stream", notes)
    emg_truth = video_truth = None
    selector = emg_truth_selector(emg_info) if emg_info is not None else None
    if selector is not None:
        emg_truth = TruthRecorder(selector, config.find_timeout_s)
    selector = _video_truth_selector(video_info) if video_info is not None else None
    if selector is not None:
        video_truth = TruthRecorder(selector, config.find_timeout_s)
    counter = _StampCounter(video_info) if video_info is not None else None
    emg_inlet = ChunkInlet(emg_info, max_buflen_s=1, max_chunk=64) if emg_info else None
    topics = ["muscle", "expression", "status", "quality"]
    subscriber = Subscriber(config.bus_address, topics, curve=curve)
    try:
        if counter is not None:
            counter.start(config.find_timeout_s)
        if emg_inlet is not None:
            emg_inlet.open(config.find_timeout_s)
        time.sleep(config.settle_s)
        t_start = pylsl.local_clock()
        obs = Observation(t_start=t_start, t_end=t_start + config.seconds, notes=notes)
        next_offset = time.monotonic()
        while pylsl.local_clock() < obs.t_end + config.drain_s:
            message = subscriber.receive(0.1)
            if emg_inlet is not None and time.monotonic() >= next_offset:
                next_offset = time.monotonic() + 1.0
                try:
                    obs.clock_offsets_s.append(emg_inlet.time_correction(0.5))
                except EiferError as exc:
                    notes.append(str(exc))
            if message is None:
                continue
            try:
                message = validate(message)
            except PayloadError:
                obs.rejected += 1
                continue
            obs.messages.append(message)
            obs.received_at.append(pylsl.local_clock())
        obs.rejected += subscriber.rejected
        obs.disconnects = subscriber.disconnects
    finally:
        subscriber.close()
        stamps = counter.stop() if counter is not None else None
        if emg_inlet is not None:
            emg_inlet.close()
        for truth in (emg_truth, video_truth):
            if truth is not None:
                truth.stop()
    if stamps is not None:
        obs.capture_t = np.sort(stamps[(stamps >= obs.t_start) & (stamps <= obs.t_end)])
        obs.camera_rate_hz = float(video_info.nominal_srate())
    obs.emg_truth, obs.video_truth = emg_truth, video_truth
    return obs

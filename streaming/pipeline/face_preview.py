"""The ``face`` bus topic: what the camera sees and the crop the encoders read, a few times a second.

A lab wants to see that the camera frames the face and that the crop holds it (electrodes, hair,
a hand in front), not to watch video over the bus: so the preview is a downscaled JPEG (longest
side ``max_side_px``, 320 by default) at ``rate_hz`` (5 by default), with the face box and
landmarks scaled to the JPEG's pixels, and the encoders' 224 px crop at ``crop_px`` (112).

The frame loop must never wait for it: :meth:`FacePreview.offer` only hands references to a
worker thread (a frame's pixels are not reused by the video feed, so no copy is needed), and
skips the offer when the worker is still busy (counted). The worker resizes and encodes (OpenCV
releases the GIL) and leaves the finished fields in a one-slot mailbox that the frame loop's thread
publishes (:meth:`FacePreview.take`), because a ZeroMQ socket belongs to one thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from streaming.bus.jpeg import encode_jpeg

__all__ = ["FacePreview", "PreviewJob", "PreviewResult", "encode_face_fields"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreviewJob:
    """One frame to preview: its pixels and what the model stage found on it."""

    t: float  # capture time (LSL)
    frame: int
    rgb: np.ndarray  # (H, W, 3) uint8
    face_detected: bool = False
    face_box: np.ndarray | None = None  # (4,) x, y, w, h in frame pixels
    landmarks: np.ndarray | None = None  # (N, 2 or 3) frame pixels
    crop: np.ndarray | None = None  # (S, S, 3) uint8: the encoders' input


@dataclass(frozen=True)
class PreviewResult:
    t: float
    frame: int
    fields: dict[str, Any]
    encode_cpu_ms: float  # CPU time of the worker for this message (resize + JPEG)


def _resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    if rgb.shape[1] == width and rgb.shape[0] == height:
        return rgb
    # INTER_AREA averages the source pixels of each output pixel: no aliasing when shrinking
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def encode_face_fields(
    job: PreviewJob, max_side_px: int = 320, crop_px: int = 112, quality: int = 80
) -> dict[str, Any]:
    """The ``face`` message fields of one frame (README "Contract additions")."""
    height, width = job.rgb.shape[:2]
    scale = min(1.0, max_side_px / max(height, width))
    out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
    scale = out_w / width  # the exact factor of the width; the height's differs by < 1 px
    fields: dict[str, Any] = {
        "image": encode_jpeg(_resize(job.rgb, out_w, out_h), quality),
        "image_size": [out_w, out_h],
        "source_size": [int(width), int(height)],
        "scale": float(scale),
        "face_detected": bool(job.face_detected),
        "face_box": None,
        "crop": None,
        "crop_size": None,
    }
    if job.face_box is not None and np.isfinite(job.face_box).all():
        fields["face_box"] = (np.asarray(job.face_box, np.float32)[:4] * scale).astype(np.float32)
    if job.landmarks is not None and len(job.landmarks):
        points = np.asarray(job.landmarks, np.float32)[:, :2] * scale
        fields["landmarks"] = np.ascontiguousarray(points, dtype=np.float32)
    if job.crop is not None:
        side = min(crop_px, job.crop.shape[0], job.crop.shape[1])
        fields["crop"] = encode_jpeg(_resize(job.crop, side, side), quality)
        fields["crop_size"] = [side, side]
    return fields


class FacePreview:
    """Encodes ``face`` messages in a worker thread at most ``rate_hz`` times a second.

    Parameters
    ----------
    rate_hz : float
        Messages per second (of frame capture time); 0 = off.
    max_side_px : int
        Longest side of the camera image in the message (never upscaled).
    crop_px : int
        Side of the crop in the message (never upscaled).
    quality : int
        JPEG quality (libjpeg's 1..100 scale).
    """

    def __init__(
        self, rate_hz: float, max_side_px: int = 320, crop_px: int = 112, quality: int = 80
    ) -> None:
        self.rate_hz = rate_hz
        self.max_side_px, self.crop_px, self.quality = max_side_px, crop_px, quality
        self.offered = 0
        self.busy_skipped = 0  # due frames skipped because the previous one was still encoding
        self.failed = 0
        self.last_error: str | None = None
        self._next_t = -np.inf
        self._job: PreviewJob | None = None
        self._result: PreviewResult | None = None
        self._lock = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.rate_hz > 0

    def due(self, t: float) -> bool:
        """Whether a frame captured at ``t`` should be previewed (cheap; frame loop)."""
        return self.enabled and t >= self._next_t

    def offer(self, job: PreviewJob) -> bool:
        """Hand ``job`` to the worker unless it is still busy; never blocks for encoding."""
        if not self.due(job.t):
            return False
        with self._lock:
            if self._job is not None:
                self.busy_skipped += 1
                return False
            self._job = job
            self._lock.notify()
        # on the rate's grid; after a gap (or at the start) a period after this frame
        period = 1.0 / self.rate_hz
        self._next_t = self._next_t + period if job.t - self._next_t < period else job.t + period
        self.offered += 1
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="face-preview", daemon=True)
            self._thread.start()
        return True

    def take(self) -> PreviewResult | None:
        """The newest finished message, once (frame loop)."""
        if self._result is None:
            return None
        with self._lock:
            result, self._result = self._result, None
        return result

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._job is None and not self._stop:
                    self._lock.wait()
                if self._stop:
                    return
                job = self._job
            assert job is not None
            t_cpu = time.thread_time()
            try:
                fields = encode_face_fields(job, self.max_side_px, self.crop_px, self.quality)
            except Exception as exc:  # a bad frame costs its preview, never the worker
                self.failed += 1
                self.last_error = f"face preview: {type(exc).__name__}: {exc}"
                log.warning("%s", self.last_error)
                fields = None
            cost_ms = 1e3 * (time.thread_time() - t_cpu)
            with self._lock:
                if fields is not None:
                    self._result = PreviewResult(job.t, job.frame, fields, cost_ms)
                self._job = None

    def close(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify()
        if self._thread is not None:
            self._thread.join(2.0)

"""Face detection, tracking and the 224x224 crop the encoders read.

As in the paper's preprocessing (EIFER supplement: BlazeFace boxes, a frame without a box takes
the previous one, participants barely move with electrodes on), the last box is kept when
detection fails. Detection uses OpenCV's shipped Haar cascade (Viola & Jones 2001; its file ships
in the opencv-python wheel) on a downscaled grey frame every ``detect_every`` frames; the box is
smoothed exponentially between detections so the crop does not jitter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

__all__ = ["CropResult", "FaceCropper"]


@dataclass(frozen=True)
class CropResult:
    crop: np.ndarray | None  # (size, size, 3) uint8 RGB; None until a face was ever found
    box: tuple[float, float, float, float] | None  # smoothed (x, y, w, h) in frame pixels
    detected: bool  # a detection ran on this frame and found a face
    age_frames: int  # frames since the last successful detection
    latency_ms: float


class FaceCropper:
    """``process(rgb)`` -> the face crop of this frame (see the module docstring)."""

    def __init__(
        self,
        size: int = 224,
        margin: float = 1.6,
        detect_every: int = 3,
        detect_width: int = 320,
        smoothing: float = 0.4,
        min_face_fraction: float = 0.08,
    ) -> None:
        import cv2

        self.size, self.margin = size, margin
        self.detect_every, self.detect_width = max(1, detect_every), detect_width
        self.smoothing = smoothing  # weight of the new detection (exponential smoothing)
        self.min_face_fraction = min_face_fraction
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise RuntimeError(f"cannot load the OpenCV face cascade {path}")
        self._box: np.ndarray | None = None
        self._frame = 0
        self._age = 0

    def detect(self, rgb: np.ndarray) -> np.ndarray | None:
        """The largest face (x, y, w, h) in frame pixels, or None."""
        import cv2

        scale = min(1.0, self.detect_width / rgb.shape[1])
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        min_side = max(16, int(self.min_face_fraction * min(grey.shape)))
        faces = self._cascade.detectMultiScale(grey, 1.1, 5, minSize=(min_side, min_side))
        if len(faces) == 0:
            return None
        x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
        return np.array([x, y, w, h], dtype=np.float64) / scale

    def process(self, rgb: np.ndarray) -> CropResult:
        t0 = time.perf_counter()
        detected = False
        if self._frame % self.detect_every == 0 or self._box is None:
            found = self.detect(rgb)
            if found is not None:
                detected = True
                self._age = 0
                self._box = (
                    found
                    if self._box is None
                    else (self.smoothing * found + (1 - self.smoothing) * self._box)
                )
        if not detected:
            self._age += 1
        self._frame += 1
        crop = None if self._box is None else self._crop(rgb, self._box)
        box = None if self._box is None else tuple(float(v) for v in self._box)
        return CropResult(crop, box, detected, self._age, 1e3 * (time.perf_counter() - t0))  # type: ignore[arg-type]

    def _crop(self, rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
        """Square crop around the box centre, ``margin`` x its larger side, zero-padded."""
        import cv2

        x, y, w, h = box
        side = self.margin * max(w, h)
        cx, cy = x + w / 2, y + h / 2
        # affine map from the square in the frame onto the size x size output
        s = self.size / side
        matrix = np.array([[s, 0, self.size / 2 - s * cx], [0, s, self.size / 2 - s * cy]])
        return cv2.warpAffine(
            rgb, matrix, (self.size, self.size), flags=cv2.INTER_AREA, borderValue=(0, 0, 0)
        )

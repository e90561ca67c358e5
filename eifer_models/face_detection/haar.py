"""Fallback face detector: OpenCV's shipped Haar cascade (Viola & Jones 2001; the file ships in
the opencv-python wheel). Frontal faces only, and its box is not BlazeFace's: used only when the
MediaPipe models or the TFLite runtime are missing, and the crop stage says so."""

from __future__ import annotations

import numpy as np

from eifer_models.face_detection.models import ModelFilesError

__all__ = ["HaarDetector"]


class HaarDetector:
    """``detect_box(rgb)`` -> the largest face (x, y, w, h) in frame pixels, or None."""

    name = "haar"

    def __init__(self, detect_width: int = 320, min_face_fraction: float = 0.08) -> None:
        import cv2
        import cv2.data

        self.detect_width, self.min_face_fraction = detect_width, min_face_fraction
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise ModelFilesError(f"cannot load the OpenCV face cascade {path}")

    def detect_box(self, rgb: np.ndarray) -> np.ndarray | None:
        """Detection on a grey frame downscaled to ``detect_width`` (speed)."""
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

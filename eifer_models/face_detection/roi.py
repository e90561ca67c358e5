"""Rotated square regions of a frame and the model tensors cut from them.

MediaPipe's conventions (``ImageToTensorCalculator``, ``LandmarkProjectionCalculator``): a region
is a square of ``size`` pixels centred on ``(cx, cy)`` and turned by ``rotation`` radians (image y
down, so positive turns clockwise on screen); the model sees it as an ``n x n`` tensor whose x axis
runs along the rotated square. Coordinates are continuous: pixel ``i`` covers ``[i, i + 1)``, a
normalised landmark ``x`` in the tensor is at ``x * n``. ``flip`` mirrors the tensor horizontally
(MediaPipe Iris feeds the right eye mirrored, its model knows only left eyes). As in
MediaPipe's CPU path, the resampling treats pixel indices as these coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Roi", "crop_tensor", "roi_from_points"]


@dataclass(frozen=True)
class Roi:
    """A rotated square region of a frame: centre, side and rotation, in frame pixels."""

    cx: float
    cy: float
    size: float  # side of the square, frame pixels
    rotation: float = 0.0  # radians

    def affine(self, n: int, flip: bool = False) -> np.ndarray:
        """(2, 3) map from tensor coordinates (0..n) to frame coordinates (continuous)."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        rot = np.array([[c, -s], [s, c]]) * (self.size / n)
        if flip:
            rot = rot @ np.diag([-1.0, 1.0])
            offset = np.array([0.5, -0.5])
        else:
            offset = np.array([-0.5, -0.5])
        centre = np.array([self.cx, self.cy])
        full = np.array([[c, -s], [s, c]]) * self.size
        return np.column_stack([rot, centre + full @ offset])

    def project(self, points: np.ndarray, n: int, flip: bool = False) -> np.ndarray:
        """Tensor points (k, 2 or 3) in tensor pixels -> frame pixels; z scales like x."""
        out = np.asarray(points, dtype=np.float64).copy()
        m = self.affine(n, flip)
        out[:, :2] = points[:, :2] @ m[:, :2].T + m[:, 2]
        if out.shape[1] > 2:
            out[:, 2] = points[:, 2] * (self.size / n)
        return out


def roi_from_points(
    points_xy: np.ndarray,
    start: int,
    end: int,
    scale: float,
    points_for_box: np.ndarray | None = None,
) -> Roi:
    """MediaPipe's ``DetectionsToRects`` + ``RectTransformation(square_long)``: the box of the
    points, centred on its middle, turned so ``points[start] -> points[end]`` is horizontal, its
    longer side times ``scale``."""
    box_points = points_xy if points_for_box is None else points_for_box
    lo, hi = box_points.min(axis=0), box_points.max(axis=0)
    (x0, y0), (x1, y1) = points_xy[start], points_xy[end]
    rotation = math.atan2(y1 - y0, x1 - x0)  # = -atan2(-(y1 - y0), x1 - x0), target angle 0
    cx, cy = (lo + hi) / 2
    return Roi(float(cx), float(cy), float(scale * max(hi - lo)), rotation)


def crop_tensor(
    rgb: np.ndarray,
    roi: Roi,
    n: int,
    *,
    value_range: tuple[float, float] = (0.0, 1.0),
    flip: bool = False,
    border_replicate: bool = True,
) -> np.ndarray:
    """The (1, n, n, 3) float32 tensor the model reads: the region resampled bilinearly, values
    mapped from 0..255 to ``value_range``; outside the frame: edge pixels, or black."""
    import cv2

    # MediaPipe's OpenCV converter hands this map to the warp as is (no half-pixel shift);
    # doing the same reproduces its detections to 0.1 px (benchmarks/face_detection.py)
    patch = cv2.warpAffine(
        rgb,
        roi.affine(n, flip),
        (n, n),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE if border_replicate else cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    lo, hi = value_range
    return (patch.astype(np.float32) * ((hi - lo) / 255.0) + lo)[None]

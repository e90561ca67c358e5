"""The encoder's 224x224 face crop, as the model was trained on: the crop mode of a bundle.

``smirk`` (SMIRK ``crop_face``, ``demo.py`` and ``datasets/base_dataset.py``): the box of
MediaPipe's landmarks, ``size = int(((right - left) + (bottom - top)) / 2 * scale)`` around its
centre, and the similarity transform that takes the square's corners (top-left, bottom-left,
top-right) to (0, 0), (0, 223), (223, 0); scale 1.4 in SMIRK's demos, 1.6 in its test configs.
The warp reads landmark coordinates as pixel indices, as SMIRK does.

``eifer`` (EIFER supplement: BlazeFace boxes, the previous box kept when a frame has none): a
square of ``scale`` x the box's longer side around the box centre, scaled to 224; the box is
smoothed across frames (EIFER) or steady (the running mean: ``CropSpec.box``), and its centre
may be moved by ``CropSpec.offset`` (a bundle trained on another box than the detector's).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "CropSpec",
    "box_iou",
    "box_transform",
    "landmark_box",
    "smirk_transform",
    "to_crop",
    "warp_crop",
]

CROP_SIZE = 224


class CropSpec(BaseModel):
    """How a model's face crops were made (``crop`` in a bundle's manifest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["smirk", "eifer"] = "eifer"
    scale: float = Field(1.6, gt=0.5, le=4.0)  # smirk: landmark-box scale; eifer: box margin
    size: int = Field(CROP_SIZE, gt=0)
    # eifer mode, how detections become the crop's box: "smoothed", each new detection averaged
    # exponentially into the box (EIFER's preprocessing); "steady", the running mean of the
    # detections since the face was found, restarted when one leaves it (IoU < 0.5). BlazeFace's
    # box wanders ~7 % in size with expression and pose (benchmarks/results/face_framing.json),
    # so an encoder trained on the true face's box reads the steady box, not the smoothed one.
    box: Literal["smoothed", "steady"] = "smoothed"
    # eifer mode: the crop's centre moved from the box's by this fraction of the box's longer
    # side (x right, y down): where the detector's box sits on a face differs from the box the
    # training crops were centred on (training.crop_calibration measures it)
    offset: tuple[float, float] = (0.0, 0.0)

    @field_validator("offset")
    @classmethod
    def _offset_within_the_box(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(-0.5 <= v <= 0.5 for v in value):
            raise ValueError(f"offset {value}: each within [-0.5, 0.5] of the box side")
        return value


def landmark_box(landmarks_xy: np.ndarray) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of the landmarks."""
    left, top = np.min(landmarks_xy[:, :2], axis=0)
    right, bottom = np.max(landmarks_xy[:, :2], axis=0)
    return float(left), float(top), float(right), float(bottom)


def smirk_transform(landmarks_xy: np.ndarray, scale: float, size: int = CROP_SIZE) -> np.ndarray:
    """SMIRK's (3, 3) frame -> crop similarity transform for these landmarks (module docstring).

    With the three corner correspondences of an axis-aligned square the least-squares similarity
    is exact: scale ``(size - 1) / side``, no rotation, the square's top-left to (0, 0)."""
    left, top, right, bottom = landmark_box(landmarks_xy)
    old_size = (right - left + bottom - top) / 2
    centre_x, centre_y = right - (right - left) / 2.0, bottom - (bottom - top) / 2.0
    side = int(old_size * scale)
    if side <= 0:
        raise ValueError(f"landmark box too small for a crop: side {side} px")
    s = (size - 1) / side
    return np.array(
        [
            [s, 0.0, -s * (centre_x - side / 2)],
            [0.0, s, -s * (centre_y - side / 2)],
            [0.0, 0.0, 1.0],
        ]
    )


def box_transform(
    box_xywh: np.ndarray,
    scale: float,
    size: int = CROP_SIZE,
    offset: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """(3, 3) frame -> crop transform of the ``eifer`` mode: a square of ``scale`` x the longer
    side, centred on the box moved by ``offset`` x that side, onto ``size`` x ``size``."""
    x, y, w, h = (float(v) for v in box_xywh)
    longer = max(w, h)
    s = size / (scale * longer)
    cx, cy = x + w / 2 + offset[0] * longer, y + h / 2 + offset[1] * longer
    return np.array([[s, 0.0, size / 2 - s * cx], [0.0, s, size / 2 - s * cy], [0.0, 0.0, 1.0]])


def box_iou(a_xywh: np.ndarray, b_xywh: np.ndarray) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    a, b = np.asarray(a_xywh, np.float64), np.asarray(b_xywh, np.float64)
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[:2] + a[2:], b[:2] + b[2:])
    inter = float(np.prod(np.clip(hi - lo, 0.0, None)))
    union = float(np.prod(a[2:]) + np.prod(b[2:])) - inter
    return inter / union if union > 0 else 0.0


def warp_crop(
    rgb: np.ndarray, transform: np.ndarray, size: int = CROP_SIZE, *, antialias: bool = False
) -> np.ndarray:
    """The (size, size, 3) uint8 crop: bilinear, black outside the frame (SMIRK's ``warp``).

    ``antialias``: where the crop shrinks the frame by more than 1.5x (a 64 px crop of a face
    of 250 px), warp at the frame's own resolution first and average down (``INTER_AREA``), so
    thin lines (electrode cables) are not aliased into the crop; SMIRK's mode keeps SMIRK's
    plain bilinear warp."""
    import cv2

    scale = float(np.hypot(transform[0, 0], transform[1, 0]))
    factor = int(np.ceil(1.0 / scale)) if antialias and scale < 1 / 1.5 else 1
    big = cv2.warpAffine(
        rgb,
        # big pixel k = factor * crop pixel + (factor - 1) / 2: each averaged block of factor
        # x factor big pixels is centred where the plain warp samples that crop pixel
        (
            np.array([[factor, 0, (factor - 1) / 2], [0, factor, (factor - 1) / 2], [0, 0, 1.0]])
            @ transform
        )[:2],
        (size * factor, size * factor),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    return big if factor == 1 else cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)


def to_crop(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Frame points (k, 2+) -> crop pixels (k, 2) under a (3, 3) crop transform (SMIRK's
    ``cropped_kpt_mediapipe``)."""
    xy = np.asarray(points, dtype=np.float64)[:, :2]
    return xy @ transform[:2, :2].T + transform[:2, 2]

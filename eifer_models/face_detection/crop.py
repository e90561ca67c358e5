"""The encoder's 224x224 face crop, as the model was trained on: the crop mode of a bundle.

``smirk`` (SMIRK ``crop_face``, ``demo.py`` and ``datasets/base_dataset.py``): the box of
MediaPipe's landmarks, ``size = int(((right - left) + (bottom - top)) / 2 * scale)`` around its
centre, and the similarity transform that takes the square's corners (top-left, bottom-left,
top-right) to (0, 0), (0, 223), (223, 0); scale 1.4 in SMIRK's demos, 1.6 in its test configs.
The warp reads landmark coordinates as pixel indices, as SMIRK does.

``eifer`` (EIFER supplement: BlazeFace boxes, the previous box kept when a frame has none): a
square of ``scale`` x the box's longer side around the box centre, scaled to 224.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CropSpec",
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


def box_transform(box_xywh: np.ndarray, scale: float, size: int = CROP_SIZE) -> np.ndarray:
    """(3, 3) frame -> crop transform of the ``eifer`` mode: a square of ``scale`` x the longer
    side, centred on the box, onto ``size`` x ``size``."""
    x, y, w, h = (float(v) for v in box_xywh)
    side = scale * max(w, h)
    s = size / side
    cx, cy = x + w / 2, y + h / 2
    return np.array([[s, 0.0, size / 2 - s * cx], [0.0, s, size / 2 - s * cy], [0.0, 0.0, 1.0]])


def warp_crop(rgb: np.ndarray, transform: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """The (size, size, 3) uint8 crop: bilinear, black outside the frame (SMIRK's ``warp``)."""
    import cv2

    return cv2.warpAffine(
        rgb,
        transform[:2],
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def to_crop(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Frame points (k, 2+) -> crop pixels (k, 2) under a (3, 3) crop transform (SMIRK's
    ``cropped_kpt_mediapipe``)."""
    xy = np.asarray(points, dtype=np.float64)[:, :2]
    return xy @ transform[:2, :2].T + transform[:2, 2]

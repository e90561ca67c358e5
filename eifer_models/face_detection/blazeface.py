"""BlazeFace (Bazarevsky et al. 2019, MediaPipe Face Detection) with MediaPipe's documented pre-
and post-processing.

From ``mediapipe/modules/face_detection/face_detection{,_short_range,_full_range}.pbtxt``:

- input: the whole frame letterboxed into 128x128 (short range; full range 192x192; aspect kept,
  black bars), RGB in [-1, 1];
- anchors (``SsdAnchorsCalculator``): short range 4 layers, strides 8/16/16/16, one aspect ratio
  plus the interpolated one, fixed anchor size: 16x16x2 + 8x8x6 = 896 anchor centres; full range
  1 layer, stride 4, no interpolated ratio: 48x48 = 2304;
- decoding (``TensorsToDetectionsCalculator``): 16 values per anchor (box x, y, w, h then 6
  keypoints x, y), divided by the input size and offset by the anchor centre; score = sigmoid of
  the logit clipped to +-100, kept above ``min_score`` (short range 0.5, full range 0.6);
- weighted non-maximum suppression, IoU threshold 0.3 (``NonMaxSuppressionCalculator``).

Keypoints, in MediaPipe's order: right eye, left eye (the person's), nose tip, mouth centre,
right ear tragion, left ear tragion. The short-range model (EIFER's and the default) wants faces
within ~2 m filling a good part of the frame; the full-range model (up to ~5 m) finds smaller
faces at ~2-3x the time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eifer_models.face_detection.models import model_path
from eifer_models.face_detection.roi import Roi, crop_tensor
from eifer_models.face_detection.tflite import TFLiteModel

__all__ = ["BlazeFace", "FaceDetection", "decode", "ssd_anchors", "weighted_nms"]

INPUT_SIZE = 128
STRIDES = (8, 16, 16, 16)
NUM_KEYPOINTS = 6
SCORE_CLIP = 100.0
NMS_IOU = 0.3


@dataclass(frozen=True)
class FaceDetection:
    """One BlazeFace detection: box, six keypoints (eyes, nose, mouth, ear tragions), score."""

    box: np.ndarray  # (x, y, w, h) frame pixels
    keypoints: np.ndarray  # (6, 2) frame pixels
    score: float


@dataclass(frozen=True)
class _Variant:
    model: str  # name in models.MODEL_FILES
    input_size: int
    strides: tuple[int, ...]
    anchors_per_layer: int  # aspect ratio 1, plus 1 when interpolated_scale_aspect_ratio > 0
    min_score: float


VARIANTS = {
    "short_range": _Variant("face_detection_short_range", 128, STRIDES, 2, 0.5),
    "full_range": _Variant("face_detection_full_range", 192, (4,), 1, 0.6),
}


def ssd_anchors(
    input_size: int = INPUT_SIZE, strides: tuple[int, ...] = STRIDES, anchors_per_layer: int = 2
) -> np.ndarray:
    """(N, 2) anchor centres in 0..1 (fixed anchor size: width = height = 1). Consecutive layers
    with one stride share a grid; each layer adds ``anchors_per_layer`` anchors per cell (ratio
    1, plus the interpolated one)."""
    centres = []
    layer = 0
    while layer < len(strides):
        stride, per_cell = strides[layer], 0
        while layer < len(strides) and strides[layer] == stride:
            per_cell += anchors_per_layer
            layer += 1
        cells = int(np.ceil(input_size / stride))
        grid = (np.arange(cells) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        xy = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(xy, per_cell, axis=0))
    return np.concatenate(centres)


def decode(
    regressors: np.ndarray,
    logits: np.ndarray,
    anchors: np.ndarray,
    min_score: float = 0.5,
    input_size: int = INPUT_SIZE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw outputs (N, 16), (N,) -> boxes (k, 4) as (xmin, ymin, xmax, ymax), keypoints (k, 6, 2)
    and scores (k,), all in 0..1 tensor coordinates, for the anchors scoring >= ``min_score``."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)))
    keep = scores >= min_score
    raw, anchor, scores = regressors[keep] / input_size, anchors[keep], scores[keep]
    centre = raw[:, 0:2] + anchor
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4 : 4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) + anchor[:, None]
    return boxes, keypoints, scores


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    union = area + areas - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED suppression: the best remaining detection takes every detection
    overlapping it by IoU > ``iou``; its box and keypoints become their score-weighted mean, its
    score stays the best one. Best first."""
    order = np.argsort(-scores, kind="stable")
    out = []
    while order.size:
        overlap = _iou(boxes[order[0]], boxes[order])
        group, order_next = order[overlap > iou], order[overlap <= iou]
        w = scores[group][:, None]
        box = (boxes[group] * w).sum(0) / w.sum()
        kps = (keypoints[group] * w[:, :, None]).sum(0) / w.sum()
        out.append((box, kps, float(scores[order[0]])))
        order = order_next
    return out


class BlazeFace:
    """``detect(rgb)`` -> faces, best first (see the module docstring); ``model``:
    "short_range" (default) or "full_range"; ``min_score``: None for MediaPipe's threshold."""

    name = "blazeface"

    def __init__(
        self, min_score: float | None = None, num_threads: int = 1, model: str = "short_range"
    ) -> None:
        if model not in VARIANTS:
            raise ValueError(f"BlazeFace model {model!r}: one of {', '.join(VARIANTS)}")
        self.variant = VARIANTS[model]
        self.min_score = self.variant.min_score if min_score is None else min_score
        self._model = TFLiteModel(model_path(self.variant.model), num_threads)
        self._boxes_out = self._model.output_with_size(16)  # (1, anchors, 16)
        self._scores_out = self._model.output_with_size(1)  # (1, anchors, 1)
        v = self.variant
        self._anchors = ssd_anchors(v.input_size, v.strides, v.anchors_per_layer)

    def _output_widths(self) -> dict[str, int]:
        return {
            name: int(self._model._interpreter.get_tensor(i).shape[-1])
            for name, i in self._model._outputs.items()
        }

    def detect(self, rgb: np.ndarray) -> list[FaceDetection]:
        h, w = rgb.shape[:2]
        n = self.variant.input_size
        roi = Roi(w / 2.0, h / 2.0, float(max(h, w)))  # letterbox: the frame centred in a square
        x = crop_tensor(rgb, roi, n, value_range=(-1.0, 1.0), border_replicate=False)
        out = self._model(x)
        boxes, kps, scores = decode(
            out[self._boxes_out][0], out[self._scores_out][0, :, 0], self._anchors,
            self.min_score, n,
        )  # fmt: skip
        faces = []
        for box, keypoints, score in weighted_nms(boxes, kps, scores):
            corners = roi.project(box.reshape(2, 2) * n, n)
            points = roi.project(keypoints * n, n)
            (x0, y0), (x1, y1) = corners
            faces.append(FaceDetection(np.array([x0, y0, x1 - x0, y1 - y0]), points, score))
        return faces

"""Expression measures from MediaPipe's 478 landmarks, for checking a face against a truth.

A tracker no one here wrote is an outside check of the synthetic participant (issue 14, item 4):
its brow, eye, lip and mouth-corner landmarks must move with the expression the rig claims to
render. The measures are in the face's own frame (x along the outer eye corners 33 -> 263, y
down, perpendicular) and divided by the distance between those corners, so head translation,
roll and distance leave them unchanged; ``right``/``left`` are the person's sides (33 is the
person's right outer eye corner, on the image's left for a frontal face). Positive = up / open /
wide:

- ``brow_raise_{right,left}``: brow (upper contour) above the line through the outer eye
  corners (frontalis; corrugator lowers it); not above the eyelid, whose closure would read as
  a brow raise;
- ``eye_open_{right,left}``: upper to lower eyelid (orbicularis oculi closes it);
- ``mouth_corner_raise_{right,left}``: mouth corner height, measured from the line through the
  outer eye corners (zygomaticus raises it, depressor anguli oris lowers it); not from the lips'
  midpoints, which a one-sided smile drags along, so the still corner would read as lowered;
- ``mouth_width``: corner to corner (zygomaticus widens, orbicularis oris narrows);
- ``mouth_open``: inner lips apart (jaw drop, mentalis/orbicularis oris close);
- ``upper_lip_raise``: upper lip towards the nose tip, as minus their distance (levator labii).

``correlations(measures, truth)`` gives the Pearson correlation of each measure with each truth
series over frames.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MEASURES", "correlations", "expression_measures"]

# MediaPipe Face Mesh indices (canonical face model, the person's right side first)
OUTER_EYE = (33, 263)
BROW = {"right": [70, 63, 105, 66, 107], "left": [300, 293, 334, 296, 336]}
UPPER_LID = {"right": 159, "left": 386}
LOWER_LID = {"right": 145, "left": 374}
MOUTH_CORNER = {"right": 61, "left": 291}
UPPER_LIP_INNER, LOWER_LIP_INNER = 13, 14
UPPER_LIP_OUTER, NOSE_TIP = 0, 1

MEASURES = (
    "brow_raise_right",
    "brow_raise_left",
    "eye_open_right",
    "eye_open_left",
    "mouth_corner_raise_right",
    "mouth_corner_raise_left",
    "mouth_width",
    "mouth_open",
    "upper_lip_raise",
)


def _face_frame(landmarks: np.ndarray) -> np.ndarray:
    """(N, 478, 2) -> the same points in the face frame, in units of the eye-corner distance."""
    a, b = landmarks[:, OUTER_EYE[0], :2], landmarks[:, OUTER_EYE[1], :2]
    axis = b - a
    scale = np.linalg.norm(axis, axis=1, keepdims=True)
    ex = axis / scale
    ey = np.stack([-ex[:, 1], ex[:, 0]], axis=1)  # x rotated by +90 deg: y down when upright
    centre = (a + b) / 2
    rel = landmarks[:, :, :2] - centre[:, None]
    return np.stack([(rel * ex[:, None]).sum(-1), (rel * ey[:, None]).sum(-1)], -1) / scale[:, None]


def expression_measures(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Landmarks (478, 2+) or (N, 478, 2+) frame pixels -> each measure, shape () or (N,)."""
    single = landmarks.ndim == 2
    p = _face_frame(np.asarray(landmarks, dtype=np.float64)[None] if single else landmarks)
    y = p[..., 1]
    out: dict[str, np.ndarray] = {}
    for side in ("right", "left"):
        out[f"brow_raise_{side}"] = -y[:, BROW[side]].mean(axis=1)  # above the eye corners
        out[f"eye_open_{side}"] = y[:, LOWER_LID[side]] - y[:, UPPER_LID[side]]
        out[f"mouth_corner_raise_{side}"] = -y[:, MOUTH_CORNER[side]]  # above the eye corners
    corners = p[:, MOUTH_CORNER["right"]] - p[:, MOUTH_CORNER["left"]]
    out["mouth_width"] = np.linalg.norm(corners, axis=1)
    out["mouth_open"] = y[:, LOWER_LIP_INNER] - y[:, UPPER_LIP_INNER]
    out["upper_lip_raise"] = -np.linalg.norm(p[:, UPPER_LIP_OUTER] - p[:, NOSE_TIP], axis=1)
    return {k: (v[0] if single else v) for k, v in out.items()}


def correlations(
    measures: dict[str, np.ndarray], truth: dict[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """Pearson r of every measure (N,) with every truth series (N,); NaN where one is constant."""
    result: dict[str, dict[str, float]] = {}
    for m_name, m in measures.items():
        row = {}
        for t_name, t in truth.items():
            m_c, t_c = m - np.mean(m), t - np.mean(t)
            denom = np.sqrt((m_c**2).sum() * (t_c**2).sum())
            row[t_name] = float((m_c * t_c).sum() / denom) if denom > 0 else float("nan")
        result[m_name] = row
    return result

"""The ``VideoTruth`` stream (DESIGN.md): per camera frame of a synthetic participant, the frame
index, the true ``phi`` (55), the head pose, the face box, and the activation that drives it.

Channels (float32): ``frame_index``; ``phi_<label>`` x 55 (50 expression, eyelid l/r, jaw x/y/z);
``pose_rot_x/y/z`` (FLAME global rotation, axis-angle rad), ``pose_centre_x_px``,
``pose_centre_y_px`` (head centre in the frame), ``pose_scale_px_per_m``; ``face_x/y/w/h_px``
(bounds of the face-mask vertices); ``act_<muscle>_<side>`` (the EMG simulator's truth at the
frame's capture time, not delayed: ``phi`` follows it one electromechanical delay later);
``lmk<k>_x/y_px`` (k = 17..67: the iBUG-68 points of FLAME's static landmark set, frame pixels,
for checking landmark trackers and detectors).
The stamp is the frame's capture time, the same stamp as the frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulation.participant.model import PHI_LABELS, FaceState
from simulation.participant.render import RenderedFrame

__all__ = ["POSE_LABELS", "truth_labels", "truth_row", "truth_stream_info"]

POSE_LABELS = (
    "pose_rot_x",
    "pose_rot_y",
    "pose_rot_z",
    "pose_centre_x_px",
    "pose_centre_y_px",
    "pose_scale_px_per_m",
)
LANDMARK_IDS = range(17, 68)  # iBUG-68 numbering
BOX_LABELS = ("face_x_px", "face_y_px", "face_w_px", "face_h_px")


def truth_labels(muscle_labels: list[str]) -> list[str]:
    """Channel labels of the ``VideoTruth`` stream: frame index, phi, pose, box, activations,
    landmarks."""
    return [
        "frame_index",
        *(f"phi_{x}" for x in PHI_LABELS),
        *POSE_LABELS,
        *BOX_LABELS,
        *(f"act_{m}" for m in muscle_labels),
        *(f"lmk{k}_{axis}_px" for k in LANDMARK_IDS for axis in ("x", "y")),
    ]


def truth_row(
    frame_index: int, state: FaceState, i: int, frame: RenderedFrame, centre_px: tuple[float, float]
) -> np.ndarray:
    """One ``VideoTruth`` sample (1, C) float32 for state row ``i`` rendered as ``frame``."""
    pose = np.concatenate([state.rotation[i], centre_px, [frame.scale_px_per_m]])
    row = np.concatenate(
        [
            [float(frame_index)],
            state.phi[i],
            pose,
            frame.face_box,
            state.activation[i],
            frame.landmarks_px.ravel(),
        ]
    )
    return row.astype(np.float32)[None, :]


def truth_stream_info(
    name: str,
    rate_hz: float,
    source_id: str,
    muscle_labels: list[str],
    *,
    of_stream: str,
    extra: dict[str, Any],
) -> Any:
    """The ``pylsl.StreamInfo`` of a ``VideoTruth`` stream for the camera stream ``of_stream``;
    ``extra`` entries go into its ``desc``."""
    from streaming.acquisition.lsl_io import stream_info

    labels = truth_labels(muscle_labels)
    desc = {
        "of_stream": of_stream,
        "stamp": "capture time of the frame (the frame's own stamp)",
        "phi": "50 expression (synthetic head components) + eyelid l, r + jaw x, y, z",
        **extra,
    }
    return stream_info(
        name, "VideoTruth", len(labels), rate_hz, "float32", source_id,
        channel_labels=labels, desc=desc,
    )  # fmt: skip

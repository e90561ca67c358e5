"""One source's frames as the training set stores them (a session folder or an MMM clip)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

__all__ = ["REST", "FrameTable", "content_sha256"]

REST = "rest"  # movement label of frames outside every start/stop marker pair


@dataclass
class FrameTable:
    """Per frame: time, video frame index, EMG feature (µV), movement, truth where present.

    Arrays have one row per frame; NaN marks a missing value (EMG outside the recording or
    before the chain settled; no truth stream).
    """

    source: str
    participant: str
    occluded: bool  # electrodes on the face (sEMG-occluded) or occlusion-free
    t_frame: np.ndarray  # (n,) float64, LSL seconds of the recording's clock
    frame_index: np.ndarray  # (n,) int64, index in the video file
    emg_uv: np.ndarray  # (n, channels) float32
    movement: np.ndarray  # (n,) str
    phi: np.ndarray  # (n, expression_dim) float32, NaN without truth
    emg_truth: np.ndarray  # (n, muscles) float32 true activations (simulated sources), or (n, 0)
    emg_truth_labels: list[str] = field(default_factory=list)
    face_found: np.ndarray | None = None  # (n,) bool when crops were made
    crops: np.ndarray | None = None  # (n, s, s, 3) uint8
    info: dict[str, object] = field(default_factory=dict)  # feature delay, rates, stream names

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays saved in the part file (crops apart)."""
        n = len(self.t_frame)
        return {
            "t_frame": np.asarray(self.t_frame, np.float64),
            "frame_index": np.asarray(self.frame_index, np.int64),
            "emg_uv": np.asarray(self.emg_uv, np.float32),
            "movement": np.asarray(self.movement, dtype=str).astype("U64"),
            "phi": np.asarray(self.phi, np.float32),
            "emg_truth": np.asarray(self.emg_truth, np.float32).reshape(n, -1),
            "face_found": (
                np.zeros(n, bool) if self.face_found is None else np.asarray(self.face_found, bool)
            ),
        }


def content_sha256(arrays: dict[str, np.ndarray], crops: np.ndarray | None = None) -> str:
    """Hash of the arrays' names, dtypes, shapes and bytes (file-format independent)."""
    digest = hashlib.sha256()
    items = sorted(arrays.items()) + ([("crops", crops)] if crops is not None else [])
    for name, value in items:
        value = np.ascontiguousarray(value)
        digest.update(f"{name}|{value.dtype.str}|{value.shape}|".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()

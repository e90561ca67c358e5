"""One frame's model predictions, as a typed value the pipeline reads.

The model stage (``eifer_models.inference`` for the bundle's graphs, ``eifer_models.live`` for
the face crop in front of them) returns a :class:`FramePredictions`; the pipeline turns it into the
``expression`` and ``muscle`` bus messages. It lives in ``streaming`` (numpy only) so the
pipeline does not import the model code it is given.

Per frame (EIFER, Buechner et al., CVPR 2025): encoders(face crop) -> ``phi_video`` (55 = 50
expression + 2 eyelid + 3 jaw), ``pose`` (6), ``shape`` (300); Exp2EMG(phi_video) ->
``emg_from_video`` (normalised envelopes); EMG2Exp(normalised envelope) -> ``phi_emg``. Outputs
whose input is missing or bad are NaN, and ``errors`` says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["FramePredictions", "nan_predictions"]


@dataclass(frozen=True)
class FramePredictions:
    """Predictions for one frame (float32 arrays; NaN where an input was missing or bad).

    ``emg_from_video`` is in the channel order the caller gave (the EMG stream's labels) where
    the caller gave labels, else in the bundle's order.
    """

    phi_video: np.ndarray  # (expression_dim,) from the face crop
    pose: np.ndarray  # (6,) head pose / camera
    shape: np.ndarray  # (n_shape,) FLAME identity
    emg_from_video: np.ndarray  # (n_channels,) Exp2EMG(phi_video), normalised envelopes
    phi_emg: np.ndarray  # (expression_dim,) EMG2Exp(normalised envelope)
    backend: str
    face_detected: bool = False  # a detection ran on this frame and found a face
    face_box: np.ndarray | None = None  # (4,) float32 x, y, w, h in frame pixels; None: no face
    landmarks: np.ndarray | None = None  # (478, 3) float32 frame pixels (MediaPipe numbering)
    face_detector: str = ""  # "blazeface", "haar" (fallback) or "landmarks" (smirk crop)
    crop: np.ndarray | None = None  # (224, 224, 3) uint8: what the encoders read (None: no face)
    latency_ms: Mapping[str, float] = field(default_factory=dict)  # per stage
    errors: tuple[str, ...] = ()  # why an output is NaN (bad input, backend failure)

    @property
    def video_missing(self) -> bool:
        """No expression from the face this frame (no crop, bad crop, encoder failure)."""
        return bool(np.isnan(self.phi_video).any())

    @property
    def emg_missing(self) -> bool:
        """No expression from the EMG this frame (no envelope, bad envelope, MLP failure)."""
        return bool(np.isnan(self.phi_emg).any())


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan, dtype=np.float32)


def nan_predictions(
    expression_dim: int, n_channels: int, n_shape: int, backend: str, errors: tuple[str, ...] = ()
) -> FramePredictions:
    """Every output missing (e.g. the model stage could not run at all this frame)."""
    return FramePredictions(
        phi_video=_nan(expression_dim),
        pose=_nan(6),
        shape=_nan(n_shape),
        emg_from_video=_nan(n_channels),
        phi_emg=_nan(expression_dim),
        backend=backend,
        errors=errors,
    )

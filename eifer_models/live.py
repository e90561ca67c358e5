"""The pipeline's inference stage: face crop -> encoders -> Exp2EMG, and EMG2Exp, per frame.

Joins the face cropper (detection, smoothing, last box kept when detection fails, as the paper's
preprocessing) and :class:`~eifer_models.inference.FrameInference` (the bundle's graphs on the
selected backend) behind the pipeline's ``FrameModels`` interface.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from eifer_models.bundle import load_bundle
from eifer_models.face_crop import FaceCropper
from eifer_models.inference import FrameInference

__all__ = ["LiveModels"]

log = logging.getLogger(__name__)


class LiveModels:
    """Per-frame predictions from a model bundle; never raises on bad input."""

    def __init__(self, inference: FrameInference, cropper: FaceCropper, feature: Any = None):
        self.inference = inference
        self.cropper = cropper
        self.feature = feature  # the EMG feature definition the bundle's MLPs were trained on
        self.backend = inference.backend
        self.expression_dim = inference.expression_dim
        self._index: np.ndarray | None = None
        self._labels: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Any) -> LiveModels:
        """From the pipeline's ``[models]`` table (``bundle`` folder, ``backend`` override)."""
        bundle = load_bundle(config.bundle)
        inference = FrameInference(bundle, runtime_override=config.backend)
        log.info("models: %s; backend %s", bundle.summary(), inference.selection.describe())
        if not bundle.trained:
            log.warning(
                "models: bundle %s is UNTRAINED (demo weights): predictions are noise",
                config.bundle,
            )
        cropper = FaceCropper.for_bundle(bundle)
        log.info("models: face crop: %s", cropper.describe())
        return cls(inference, cropper, feature=bundle.feature_definition())

    def process(
        self, rgb: np.ndarray | None, envelope_normalised: np.ndarray | None, labels: Sequence[str]
    ) -> dict[str, Any]:
        latency: dict[str, float] = {}
        crop = None
        face: dict[str, Any] = {"face_detected": False}
        if rgb is not None:
            t0 = time.perf_counter()
            result = self.cropper.process(rgb)
            latency["face_crop"] = 1e3 * (time.perf_counter() - t0)
            crop = result.crop
            face = {
                "face_detected": bool(result.detected),
                "face_box": None if result.box is None else np.asarray(result.box, np.float32),
                "landmarks": result.landmarks,  # (478, 3) float32 frame pixels, or None
                "face_detector": result.detector,  # "blazeface", "haar" or "landmarks" (smirk)
            }
        envelope = None
        if envelope_normalised is not None:
            if tuple(labels) != self._labels:
                self._labels = tuple(labels)
                self._index = self.inference.channel_index(labels)
            envelope = envelope_normalised[self._index]
        outputs = self.inference.process(crop, envelope)
        latency.update({f"model_{k}": v for k, v in outputs.pop("latency_ms").items()})
        outputs["latency_ms"] = latency
        outputs.update(face)
        return outputs

    def close(self) -> None:
        self.inference.close()

"""The pipeline's model stage: one camera frame and its EMG envelope in, that frame's predictions
out.

In front of :class:`~eifer_models.inference.GraphInference` (the bundle's graphs on one backend)
it puts the face cropper (detection, smoothing, last box kept when detection fails, as the paper's
preprocessing) and the reordering of the EMG stream's channels into the bundle's order (and of
Exp2EMG's output back into the stream's). It is what the pipeline's ``FrameModels`` interface
asks for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

import numpy as np

from eifer_models.bundle import load_bundle
from eifer_models.face_crop import FaceCropper
from eifer_models.inference import GraphInference
from streaming.errors import StreamFormatError
from streaming.pipeline.features import FeatureDefinition
from streaming.pipeline.predictions import FramePredictions
from streaming.pipeline.profile import Normalisation

__all__ = ["FramePredictor"]

log = logging.getLogger(__name__)


class ModelsSettings(Protocol):
    """The pipeline's ``[models]`` table, as far as this module reads it."""

    @property
    def bundle(self) -> str: ...

    @property
    def backend(self) -> str: ...


class FramePredictor:
    """Per-frame predictions from a model bundle; never raises on bad input."""

    def __init__(
        self,
        inference: GraphInference,
        cropper: FaceCropper,
        feature: FeatureDefinition | None = None,
        normalisation: Normalisation | None = None,
    ) -> None:
        self.inference = inference
        self.cropper = cropper
        self.feature = feature  # the EMG feature definition the bundle's MLPs were trained on
        self.normalisation = normalisation  # and the EMG normalisation (None: undeclared)
        self.backend = inference.backend
        self.expression_dim = inference.expression_dim
        self._index: np.ndarray | None = None
        self._index_error = "no EMG channel labels given"
        self._labels: tuple[str, ...] | None = None

    @classmethod
    def from_config(cls, config: ModelsSettings) -> FramePredictor:
        """From the pipeline's ``[models]`` table (``bundle`` folder, ``backend`` override)."""
        bundle = load_bundle(config.bundle)
        inference = GraphInference(bundle, runtime_override=config.backend)
        log.info("models: %s; backend %s", bundle.summary(), inference.selection.describe())
        if not bundle.trained:
            log.warning(
                "models: bundle %s is UNTRAINED (demo weights): predictions are noise",
                config.bundle,
            )
        feature: FeatureDefinition = bundle.feature_definition()
        cropper = FaceCropper.for_bundle(bundle)
        log.info("models: face crop: %s", cropper.describe())
        normalisation: Normalisation | None = bundle.emg_normalisation()
        return cls(inference, cropper, feature=feature, normalisation=normalisation)

    def _bundle_index(self, labels: Sequence[str], errors: list[str]) -> np.ndarray | None:
        """Indices of the bundle's channels in ``labels``; None (and why) when one lacks."""
        if tuple(labels) != self._labels:
            self._labels = tuple(labels)
            try:
                self._index = self.inference.channel_index(labels)
            except StreamFormatError as exc:
                self._index, self._index_error = None, str(exc)
        if self._index is None:
            errors.append(self._index_error)
        return self._index

    def process(
        self, rgb: np.ndarray | None, envelope_normalised: np.ndarray | None, labels: Sequence[str]
    ) -> FramePredictions:
        """Predictions for one frame; ``labels`` name the envelope's channels (the stream's).

        ``emg_from_video`` comes back in the order of ``labels`` (NaN for channels the bundle
        does not predict), so it lines up with the ``muscle`` message's ``channels``.
        """
        return self.process_emg(self.process_video(rgb, labels), envelope_normalised, labels)

    def process_video(self, rgb: np.ndarray | None, labels: Sequence[str]) -> FramePredictions:
        """The video branch: face crop, encoders (``phi_video``, pose) and Exp2EMG; ``phi_emg``
        NaN. Needs no EMG: the pipeline runs it as soon as the frame arrives."""
        errors: list[str] = []
        index = self._bundle_index(labels, errors)
        latency: dict[str, float] = {}
        crop, detected, box, landmarks, detector = None, False, None, None, ""
        if rgb is not None:
            t0 = time.perf_counter()
            result = self.cropper.process(rgb)
            latency["face_crop"] = 1e3 * (time.perf_counter() - t0)
            crop, detected = result.crop, bool(result.detected)
            box = None if result.box is None else np.asarray(result.box, np.float32)
            landmarks, detector = result.landmarks, result.detector
        graphs = self.inference.process_video(crop)
        emg_from_video = np.full(len(labels), np.nan, np.float32)
        if index is not None:
            emg_from_video[index] = graphs.emg_from_video
        latency.update({f"model_{k}": v for k, v in graphs.latency_ms.items()})
        return replace(
            graphs,
            emg_from_video=emg_from_video,
            face_detected=detected,
            face_box=box,
            landmarks=landmarks,
            face_detector=detector,
            crop=crop,
            latency_ms=latency,
            errors=(*errors, *graphs.errors),
        )

    def process_emg(
        self, video: FramePredictions, envelope_normalised: np.ndarray | None, labels: Sequence[str]
    ) -> FramePredictions:
        """``video`` (this frame's :meth:`process_video`) completed with EMG2Exp of the envelope
        at the frame's time: the part that runs after the join with the EMG."""
        index = self._bundle_index(labels, [])  # its error, if any, came with the video branch
        envelope = None
        if envelope_normalised is not None and index is not None:
            envelope = envelope_normalised[index]
        t0 = time.perf_counter()
        done = self.inference.process_emg(replace(video, latency_ms={}, errors=()), envelope)
        latency = dict(video.latency_ms)
        latency.update({f"model_{k}": v for k, v in done.latency_ms.items() if k != "total"})
        latency["model_total"] = latency.get("model_total", 0.0) + 1e3 * (time.perf_counter() - t0)
        return replace(
            video, phi_emg=done.phi_emg, latency_ms=latency, errors=(*video.errors, *done.errors)
        )

    def close(self) -> None:
        self.inference.close()

"""Face detection, tracking and the 224x224 crop the encoders read, in the bundle's crop mode.

A model only works on the crop it was trained on, so the mode comes from the bundle
(:class:`~eifer_models.face_detection.crop.CropSpec`):

- ``eifer``: EIFER's preprocessing (supplement): BlazeFace boxes, a frame without a box keeps
  the previous one (participants barely move with electrodes on); the box is smoothed
  exponentially so the crop does not jitter (``box="smoothed"``), or held steady: the running
  mean of the detections since the face was found (``box="steady"``, the last ``steady_frames``;
  a detection that overlaps it by IoU < 0.5 means the face moved, and restarts it); a square of
  ``margin`` x its longer side, its centre moved by ``offset`` x that side.
- ``smirk``: SMIRK's ``crop_face``: the box of MediaPipe's 478 landmarks (tracked frame to frame,
  the detector runs when the track is lost), scale ``margin``, similarity warp to 224; no
  smoothing (SMIRK has none); the last transform is kept when a frame has no face.

Detectors: BlazeFace and the landmarks run MediaPipe's TFLite models
(:mod:`eifer_models.face_detection`); when those are missing (``detector="auto"``), OpenCV's Haar
cascade stands in for the box, with a warning; the result's ``detector`` says which ran.
The 478 landmarks of each frame (frame pixels) come in the result when the landmarker runs:
always in smirk mode, on request (``landmarks=True``) in eifer mode.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from eifer_models.face_detection.crop import (
    CropSpec,
    box_iou,
    box_transform,
    landmark_box,
    smirk_transform,
    warp_crop,
)
from eifer_models.face_detection.models import ModelFilesError, models_available
from streaming.config import ConfigError

__all__ = ["CropResult", "CropSpec", "FaceCropper"]

log = logging.getLogger(__name__)

STEADY_RESTART_IOU = 0.5  # a detection overlapping the steady box less: the face moved


@dataclass(frozen=True)
class CropResult:
    """One frame's face crop, where it came from and how it was found."""

    crop: np.ndarray | None  # (size, size, 3) uint8 RGB; None until a face was ever found
    box: tuple[float, float, float, float] | None  # (x, y, w, h) frame pixels (eifer: smoothed)
    detected: bool  # a detection (eifer) / landmarks (smirk) ran on this frame and found a face
    age_frames: int  # frames since the last successful detection
    latency_ms: float
    detector: str = "haar"  # what found the box: "blazeface", "haar" or "landmarks" (smirk)
    landmarks: np.ndarray | None = None  # (478, 3) float32 frame pixels, this frame's, or None
    mode: str = "eifer"  # the crop mode
    transform: np.ndarray | None = None  # (3, 3) frame pixels -> crop pixels of ``crop``


def _runtime_available() -> bool:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return models_available()


class FaceCropper:
    """``process(rgb)`` -> the face crop of this frame (see the module docstring).

    Parameters
    ----------
    size : int
        Side of the square crop in pixels (224: the encoders' input).
    margin : float
        eifer mode: the crop's side over the detected box's; smirk mode: the landmark box's scale.
    detect_every : int | None
        eifer mode detects every n-th frame and keeps the box in between (None: 1 for BlazeFace,
        3 for Haar).
    detect_width : int
        Haar only: frames are downscaled to this width before detection (speed).
    smoothing : float
        eifer mode, ``box="smoothed"``: weight of a new detection in the exponentially smoothed
        box (1: no smoothing).
    min_face_fraction : float
        Haar only: smallest face side searched, as a fraction of the frame's shorter side.
    mode : {"eifer", "smirk"}
        The bundle's crop mode (:class:`~eifer_models.face_detection.crop.CropSpec`).
    detector : {"auto", "blazeface", "haar"}
        "auto": BlazeFace when its model and runtime are present, else Haar.
    landmarks : bool
        Run the 478-point landmarker on every frame (always in smirk mode; off by default in
        eifer mode: ~5 ms per frame on one core).
    blazeface_model : {"short_range", "full_range"}
        "short_range": EIFER's, faces within ~2 m; "full_range": smaller faces, slower.
    num_threads : int
        Threads of each TFLite interpreter.
    box : {"smoothed", "steady"}
        eifer mode: how detections become the crop's box (the bundle's ``crop.box``).
    offset : tuple of float
        eifer mode: the crop centre's shift from the box centre, fraction of the box's longer
        side (the bundle's ``crop.offset``).
    steady_frames : int
        ``box="steady"``: the running mean's window in detections (300: 10 s at 30 fps).

    Raises
    ------
    streaming.config.ConfigError
        An unknown mode, detector or BlazeFace model, or a margin or size out of range.
    ModelFilesError
        BlazeFace, smirk mode or landmarks asked for, and the models or runtime are missing.
    """

    def __init__(
        self,
        size: int = 224,
        margin: float = 1.6,
        detect_every: int | None = None,
        detect_width: int = 320,
        smoothing: float = 0.4,
        min_face_fraction: float = 0.08,
        *,
        mode: str = "eifer",
        detector: str = "auto",
        landmarks: bool = False,
        blazeface_model: str = "short_range",
        num_threads: int = 1,
        box: str = "smoothed",
        offset: tuple[float, float] = (0.0, 0.0),
        steady_frames: int = 300,
    ) -> None:
        try:
            self.spec = CropSpec.model_validate(
                {"mode": mode, "scale": margin, "size": size, "box": box, "offset": offset}
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise ConfigError(f"face crop {where}: {error['msg']}") from None
        self.size, self.margin, self.mode = size, margin, mode
        self.smoothing = smoothing  # weight of the new detection (exponential smoothing)
        if steady_frames < 1:
            raise ConfigError(f"face crop steady_frames {steady_frames}: at least 1")
        self.steady_frames = steady_frames
        self._averaged = 0  # detections in the steady box's running mean
        if detector not in ("auto", "blazeface", "haar"):
            raise ConfigError(f"unknown face detector {detector!r} (auto, blazeface, haar)")
        if blazeface_model not in ("short_range", "full_range"):
            raise ConfigError(
                f"unknown BlazeFace model {blazeface_model!r} (short_range, full_range)"
            )
        mediapipe_ok = detector != "haar" and _runtime_available()
        if detector == "blazeface" or mode == "smirk" or landmarks:
            if not _runtime_available():
                from eifer_models.face_detection.models import model_path

                for name in ("face_detection_short_range", "face_landmark", "iris_landmark"):
                    model_path(name)  # raises, naming the missing file and the fix
                raise ModelFilesError("the TFLite runtime is missing: pip install ai-edge-litert")
            mediapipe_ok = True
        if detector == "auto" and not mediapipe_ok:
            log.warning(
                "face crop: MediaPipe face models not found, using the Haar cascade (frontal "
                "only, a different box); fetch them: python -m eifer_models.face_detection.models"
            )
        self._blazeface: Any = None
        self._haar: Any = None
        self._landmarker: Any = None
        if mediapipe_ok and detector != "haar":
            from eifer_models.face_detection.blazeface import BlazeFace

            self._blazeface = BlazeFace(num_threads=num_threads, model=blazeface_model)
            self.detector = "blazeface"
        else:
            from eifer_models.face_detection.haar import HaarDetector

            self._haar = HaarDetector(detect_width, min_face_fraction)
            self.detector = "haar"
        if mode == "smirk" or landmarks:
            from eifer_models.face_detection.blazeface import BlazeFace
            from eifer_models.face_detection.landmarks import FaceLandmarker

            self._landmarker = FaceLandmarker(
                self._blazeface or BlazeFace(num_threads=num_threads), num_threads=num_threads
            )
        default_every = 1 if self.detector == "blazeface" else 3
        self.detect_every = max(1, detect_every or default_every)
        self._box: np.ndarray | None = None
        self._transform: np.ndarray | None = None
        self._frame = 0
        self._age = 0

    @classmethod
    def from_spec(cls, spec: CropSpec, **kwargs: Any) -> FaceCropper:
        return cls(
            size=spec.size, margin=spec.scale, mode=spec.mode, box=spec.box, offset=spec.offset,
            **kwargs,
        )  # fmt: skip

    @classmethod
    def for_bundle(cls, bundle: Any, **kwargs: Any) -> FaceCropper:
        """The crop the bundle's encoders were trained on (its manifest's ``crop``)."""
        return cls.from_spec(bundle.manifest.crop, **kwargs)

    @property
    def landmarks_enabled(self) -> bool:
        return self._landmarker is not None

    def describe(self) -> str:
        """One line for logs and status: mode, scale, detector, landmarks."""
        marks = "478 landmarks (MediaPipe Face Mesh + Iris)" if self._landmarker else "no landmarks"
        source = "landmark box" if self.mode == "smirk" else f"{self.spec.box} {self.detector} box"
        return f"{self.mode} crop x{self.margin} from the {source}; {marks}"

    def detect(self, rgb: np.ndarray) -> np.ndarray | None:
        """The best face box (x, y, w, h) in frame pixels of this frame's detector, or None."""
        if self._blazeface is not None:
            faces = self._blazeface.detect(rgb)
            return faces[0].box if faces else None
        return self._haar.detect_box(rgb)

    def process(self, rgb: np.ndarray) -> CropResult:
        t0 = time.perf_counter()
        if self.mode == "smirk":
            detected, landmarks, detector = self._smirk(rgb)
        else:
            detected, landmarks, detector = self._eifer(rgb)
        self._age = 0 if detected else self._age + 1
        self._frame += 1
        crop = (
            None
            if self._transform is None
            else warp_crop(rgb, self._transform, self.size, antialias=self.mode == "eifer")
        )
        box = None if self._box is None else tuple(float(v) for v in self._box)
        return CropResult(
            crop,
            box,  # type: ignore[arg-type]
            detected,
            self._age,
            1e3 * (time.perf_counter() - t0),
            detector,
            landmarks,
            self.mode,
            None if self._transform is None else self._transform.copy(),
        )

    def _eifer(self, rgb: np.ndarray) -> tuple[bool, np.ndarray | None, str]:
        detected = False
        faces = None
        if self._frame % self.detect_every == 0 or self._box is None:
            if self._blazeface is not None:
                faces = self._blazeface.detect(rgb)
                found = faces[0].box if faces else None
            else:
                found = self._haar.detect_box(rgb)
            if found is not None:
                detected = True
                self._box = self._next_box(np.asarray(found, np.float64))
                self._transform = box_transform(self._box, self.margin, self.size, self.spec.offset)
        landmarks = None
        if self._landmarker is not None:
            result = self._landmarker.process(rgb, faces)
            landmarks = None if result is None else result.landmarks
        return detected, landmarks, self.detector

    def _next_box(self, found: np.ndarray) -> np.ndarray:
        """The crop's box after a detection: smoothed, or the steady running mean."""
        if self._box is None:
            self._averaged = 1
            return found
        if self.spec.box == "smoothed":
            return self.smoothing * found + (1 - self.smoothing) * self._box
        if box_iou(found, self._box) < STEADY_RESTART_IOU:  # the face moved: start again there
            self._averaged = 1
            return found
        self._averaged = min(self._averaged + 1, self.steady_frames)
        return self._box + (found - self._box) / self._averaged

    def _smirk(self, rgb: np.ndarray) -> tuple[bool, np.ndarray | None, str]:
        result = self._landmarker.process(rgb)
        if result is None:
            return False, None, "landmarks"
        left, top, right, bottom = landmark_box(result.landmarks)
        self._box = np.array([left, top, right - left, bottom - top])
        self._transform = smirk_transform(result.landmarks, self.margin, self.size)
        return True, result.landmarks, "landmarks"

"""MediaPipe's 478 face landmarks: Face Mesh (468 points, Kartynnik et al. 2019) refined by
MediaPipe Iris (Ablavatski et al. 2020: 71 eye-contour points and 5 iris points per eye).

The ``mediapipe==0.10.14`` wheel also ships ``face_landmark_with_attention.tflite`` (the same 478
points in one model), but it needs MediaPipe's own TFLite operators (``Landmarks2TransformMatrix``,
``TransformTensorBilinear``), which no stock TFLite runtime has; the Iris pipeline gives the same
478 indices from stock operators. Pre- and post-processing as MediaPipe's graphs
(``face_landmark_front_cpu``, ``face_detection_front_detection_to_roi``,
``face_landmark_landmarks_to_roi``, ``iris_landmark_left_and_right_from_face_landmarks_cpu``,
``iris_landmark_cpu``, ``UpdateFaceLandmarksCalculator``):

- face region: from a BlazeFace detection (box centre, turned so right eye -> left eye is
  horizontal, longer side x 1.5), or in tracking mode from the previous frame's landmarks (their
  box, turned along points 33 -> 263, x 1.5); 192x192 RGB in [0, 1], edges replicated;
- the face-flag logit through a sigmoid is the presence score; below ``min_presence`` the face
  is lost and the next frame runs the detector (as MediaPipe's ``min_tracking_confidence``);
- each eye: the square around its corners (33/133 and 362/263) x 2.3, 64x64 in [0, 1], the right
  eye mirrored; its 71 contour points replace the mesh's eye points, its 5 iris points become
  468-472 (the person's right eye, corner 33) and 473-477, their depth the mean of the eye's
  16 contour points (as MediaPipe's attention model's refinement does); the mirrored eye's
  iris edges are swapped back so both irises list centre, image-right, top, image-left, bottom.

Landmarks come as (478, 3) float32 in frame pixels (x, y; z in pixels along the camera axis,
relative to the face centre, smaller = nearer), the same indices as MediaPipe's FaceLandmarker
used by SMIRK.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eifer_models.face_detection.blazeface import BlazeFace, FaceDetection
from eifer_models.face_detection.models import model_path
from eifer_models.face_detection.roi import Roi, crop_tensor, roi_from_points
from eifer_models.face_detection.tflite import TFLiteModel

__all__ = ["N_LANDMARKS", "FaceLandmarker", "LandmarkResult"]

N_MESH = 468
N_LANDMARKS = 478
MESH_SIZE = 192
IRIS_SIZE = 64
FACE_ROI_SCALE = 1.5
EYE_ROI_SCALE = 2.3
# UpdateFaceLandmarksCalculator: mesh index of each of the 71 eye-contour points, per eye
_LEFT_EYE = [
    33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173,
    130, 25, 110, 24, 23, 22, 26, 112, 243, 247, 30, 29, 27, 28, 56, 190,
    226, 31, 228, 229, 230, 231, 232, 233, 244, 113, 225, 224, 223, 222, 221, 189,
    35, 124, 46, 53, 52, 65, 143, 111, 117, 118, 119, 120, 121, 128, 245,
    156, 70, 63, 105, 66, 107, 55, 193,
]  # fmt: skip
_RIGHT_EYE = [
    263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398,
    359, 255, 339, 254, 253, 252, 256, 341, 463, 467, 260, 259, 257, 258, 286, 414,
    446, 261, 448, 449, 450, 451, 452, 453, 464, 342, 445, 444, 443, 442, 441, 413,
    265, 353, 276, 283, 282, 295, 372, 340, 346, 347, 348, 349, 350, 357, 465,
    383, 300, 293, 334, 296, 336, 285, 417,
]  # fmt: skip
EYES = (  # mesh indices of the contour, eye corners (start, end), first iris index, mirrored
    (np.array(_LEFT_EYE), (33, 133), 468, False),
    (np.array(_RIGHT_EYE), (362, 263), 473, True),
)


@dataclass(frozen=True)
class LandmarkResult:
    """The 478 landmarks of one frame, with the presence score and where the region came from."""

    landmarks: np.ndarray  # (478, 3) float32, frame pixels
    presence: float  # face-presence score of the mesh model, 0..1
    tracked: bool  # the region came from the previous frame's landmarks, not a detection
    detection: FaceDetection | None  # the detection used, when one ran


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.clip(x, -100.0, 100.0))))


class FaceLandmarker:
    """``process(rgb)`` -> the 478 landmarks of the face, or None (see the module docstring)."""

    name = "mediapipe-facemesh-iris"

    def __init__(
        self,
        detector: BlazeFace | None = None,
        *,
        track: bool = True,
        min_presence: float = 0.5,
        num_threads: int = 1,
    ) -> None:
        self.detector = detector or BlazeFace(num_threads=num_threads)
        self.track, self.min_presence = track, min_presence
        self._mesh = TFLiteModel(model_path("face_landmark"), num_threads)
        self._iris = TFLiteModel(model_path("iris_landmark"), num_threads)
        self._mesh_out = (self._mesh.output_with_size(1404), self._mesh.output_with_size(1))
        self._iris_out = (self._iris.output_with_size(213), self._iris.output_with_size(15))
        self._roi: Roi | None = None

    def reset(self) -> None:
        self._roi = None

    @staticmethod
    def roi_from_detection(detection: FaceDetection) -> Roi:
        x, y, w, h = detection.box
        corners = np.array([[x, y], [x + w, y + h]])
        return roi_from_points(detection.keypoints, 0, 1, FACE_ROI_SCALE, corners)

    def process(
        self, rgb: np.ndarray, detections: Sequence[FaceDetection] | None = None
    ) -> LandmarkResult | None:
        """Landmarks of this frame: tracked from the last frame's region when there is one, else
        from the best of ``detections`` (None: the detector runs here); a lost track retries
        with a detection."""
        if self._roi is not None and self.track:
            result = self._from_roi(rgb, self._roi, tracked=True, detection=None)
            if result is not None:
                return result
        if detections is None:
            detections = self.detector.detect(rgb)
        if not detections:
            self._roi = None
            return None
        best = detections[0]
        return self._from_roi(rgb, self.roi_from_detection(best), False, best)

    def _from_roi(
        self, rgb: np.ndarray, roi: Roi, tracked: bool, detection: FaceDetection | None
    ) -> LandmarkResult | None:
        out = self._mesh(crop_tensor(rgb, roi, MESH_SIZE))
        presence = _sigmoid(float(out[self._mesh_out[1]].ravel()[0]))
        if presence < self.min_presence:
            self._roi = None
            return None
        mesh = roi.project(out[self._mesh_out[0]].reshape(N_MESH, 3), MESH_SIZE)
        landmarks = np.zeros((N_LANDMARKS, 3))
        landmarks[:N_MESH] = mesh
        for contour_index, (start, end), iris_first, mirrored in EYES:
            eye_roi = roi_from_points(mesh[[start, end], :2], 0, 1, EYE_ROI_SCALE)
            eye = self._iris(crop_tensor(rgb, eye_roi, IRIS_SIZE, flip=mirrored))
            contour = eye_roi.project(eye[self._iris_out[0]].reshape(71, 3), IRIS_SIZE, mirrored)
            iris = eye_roi.project(eye[self._iris_out[1]].reshape(5, 3), IRIS_SIZE, mirrored)
            landmarks[contour_index] = contour
            if mirrored:  # keep "right edge" (469/474) on the image's right, as FaceLandmarker
                iris = iris[[0, 3, 2, 1, 4]]
            iris[:, 2] = contour[:16, 2].mean()
            landmarks[iris_first : iris_first + 5] = iris
        self._roi = roi_from_points(landmarks[:N_MESH, :2], 33, 263, FACE_ROI_SCALE)
        return LandmarkResult(landmarks.astype(np.float32), presence, tracked, detection)

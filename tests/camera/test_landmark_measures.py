"""Expression measures from the 478 landmarks: invariant to head pose, sided, and correlated."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from eifer_models.face_detection.landmarks import FaceLandmarker
from eifer_models.face_detection.measures import MEASURES, correlations, expression_measures

pytestmark = pytest.mark.usefixtures("face_models")


@pytest.fixture(scope="module")
def photo_landmarks() -> np.ndarray:
    return FaceLandmarker(track=False).process(data.astronaut()).landmarks


def test_measures_ignore_head_translation_roll_and_distance(photo_landmarks) -> None:
    angle = np.deg2rad(25.0)
    rot = 1.7 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = photo_landmarks[:, :2].astype(np.float64) @ rot.T + [300.0, -40.0]
    before, after = expression_measures(photo_landmarks), expression_measures(moved)
    assert set(before) == set(MEASURES)
    for name in MEASURES:
        assert after[name] == pytest.approx(before[name], abs=1e-5)


def test_raising_one_mouth_corner_moves_only_that_sides_measure(photo_landmarks) -> None:
    lm = photo_landmarks[:, :2].astype(np.float64)
    eye_axis = lm[263] - lm[33]
    iod = np.linalg.norm(eye_axis)
    up = -np.array([-eye_axis[1], eye_axis[0]]) / iod  # face "up" in the frame
    raised = lm.copy()
    raised[61] += 5.0 * up  # the person's right mouth corner, 5 px up
    before, after = expression_measures(lm), expression_measures(raised)
    assert after["mouth_corner_raise_right"] - before["mouth_corner_raise_right"] == pytest.approx(
        5.0 / iod
    )
    assert after["mouth_corner_raise_left"] == pytest.approx(before["mouth_corner_raise_left"])


def test_right_means_the_persons_right_also_in_a_mirrored_image(photo_landmarks) -> None:
    """The person's right eye corner (33) and mouth corner (61) are on the image's left of a
    frontal face; in the mirrored photograph the tracker labels the sides anew, so its 33 lies
    where the original 263 was mirrored (the measures' sides follow the person, not the image)."""
    lm = photo_landmarks
    assert lm[33, 0] < lm[263, 0] and lm[61, 0] < lm[291, 0]
    width = data.astronaut().shape[1]
    mirrored = FaceLandmarker(track=False).process(data.astronaut()[:, ::-1].copy()).landmarks
    for right, left in ((33, 263), (61, 291), (468, 473)):
        assert abs(mirrored[right, 0] - (width - lm[left, 0])) < 3.0
        assert abs(mirrored[right, 1] - lm[left, 1]) < 3.0


def test_correlations_per_measure_and_truth_series() -> None:
    t = np.linspace(0, 1, 50)
    result = correlations({"m": t**2}, {"same": t**2, "opposite": -3 * t**2, "flat": 0 * t})
    assert result["m"]["same"] == pytest.approx(1.0)
    assert result["m"]["opposite"] == pytest.approx(-1.0)
    assert np.isnan(result["m"]["flat"])

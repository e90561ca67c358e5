"""Face detection, smoothing and the encoder crop on a real photograph, in both crop modes."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from skimage import data

from eifer_models.face_crop import FaceCropper
from eifer_models.face_detection.crop import smirk_transform, to_crop
from eifer_models.face_detection.models import ModelFilesError

pytestmark = pytest.mark.usefixtures("face_models")


def test_finds_the_face_where_it_is_in_a_real_photograph() -> None:
    photo = data.astronaut()  # the face is around x 177-272, y 66-161
    result = FaceCropper(landmarks=True).process(photo)
    assert result.detected and result.age_frames == 0
    assert result.detector == "blazeface" and result.mode == "eifer"
    assert result.landmarks is not None and result.landmarks.shape == (478, 3)
    x, y, w, h = result.box
    assert 150 < x + w / 2 < 300 and 60 < y + h / 2 < 170 and 60 < w < 140
    assert result.crop.shape == (224, 224, 3) and result.crop.dtype == np.uint8
    # the crop is centred on the face: skin tones (red > blue) dominate its centre
    centre = result.crop[80:144, 80:144].reshape(-1, 3).astype(int)
    assert np.mean(centre[:, 0] > centre[:, 2]) > 0.8


def test_keeps_the_last_box_when_detection_fails() -> None:
    cropper = FaceCropper(detect_every=1)
    first = cropper.process(data.astronaut())
    blank = cropper.process(np.zeros((512, 512, 3), np.uint8))
    assert not blank.detected and blank.age_frames == 1
    assert blank.box == first.box and blank.crop is not None


def test_no_face_ever_gives_no_crop() -> None:
    result = FaceCropper().process(np.full((240, 320, 3), 128, np.uint8))
    assert result.crop is None and result.box is None and not result.detected


def test_smoothed_box_is_steadier_than_the_raw_detections() -> None:
    photo = data.astronaut()
    rng = np.random.default_rng(0)
    cropper = FaceCropper(detect_every=1, smoothing=0.3)
    raw, smoothed = [], []
    for _ in range(20):
        frame = np.roll(photo, int(rng.integers(-4, 5)), axis=1)
        x, _, w, _ = cropper.detect(frame)
        raw.append(x + w / 2)
        box = cropper.process(frame).box
        smoothed.append(box[0] + box[2] / 2)
    assert np.std(np.diff(smoothed[3:])) < 0.6 * np.std(np.diff(raw[3:]))


def _shifted_photos(n: int, seed: int = 0) -> list[np.ndarray]:
    photo = data.astronaut()
    rng = np.random.default_rng(seed)
    return [np.roll(photo, int(rng.integers(-6, 7)), axis=1) for _ in range(n)]


def test_steady_box_is_the_running_mean_of_the_detections() -> None:
    cropper = FaceCropper(detect_every=1, box="steady")
    raw, steady = [], []
    for frame in _shifted_photos(12):
        raw.append(np.asarray(cropper.detect(frame), np.float64))
        steady.append(np.asarray(cropper.process(frame).box))
    for k in range(1, 13):
        np.testing.assert_allclose(steady[k - 1], np.mean(raw[:k], axis=0), atol=1e-6)


def test_steady_box_keeps_a_window_of_the_last_detections() -> None:
    cropper = FaceCropper(detect_every=1, box="steady", steady_frames=3)
    frames = _shifted_photos(8, seed=1)
    boxes = [np.asarray(cropper.process(frame).box) for frame in frames]
    found = np.asarray(cropper.detect(frames[-1]), np.float64)  # past the window: weight 1/3
    np.testing.assert_allclose(boxes[-1], boxes[-2] + (found - boxes[-2]) / 3, atol=1e-6)


def test_steady_box_starts_again_where_a_face_that_moved_is_found() -> None:
    photo = data.astronaut()
    cropper = FaceCropper(detect_every=1, box="steady")
    for frame in _shifted_photos(5):
        cropper.process(frame)
    moved = np.roll(photo, 200, axis=1)  # the face 200 px to the right: no overlap
    box = cropper.process(moved).box
    np.testing.assert_allclose(box, cropper.detect(moved), atol=1e-6)


def test_offset_moves_the_crop_centre_by_a_fraction_of_the_box_side() -> None:
    photo = data.astronaut()
    centred = FaceCropper().process(photo)
    moved = FaceCropper(offset=(0.1, -0.2)).process(photo)
    x, y, w, h = centred.box
    side = max(w, h)
    crop_centre = np.array([112.0, 112.0, 1.0])
    at = np.linalg.solve(centred.transform, crop_centre)[:2]
    at_moved = np.linalg.solve(moved.transform, crop_centre)[:2]
    np.testing.assert_allclose(at, (x + w / 2, y + h / 2), atol=1e-6)
    np.testing.assert_allclose(at_moved - at, (0.1 * side, -0.2 * side), atol=1e-6)


def test_detection_runs_every_nth_frame_only() -> None:
    cropper = FaceCropper(detect_every=3)
    results = [cropper.process(data.astronaut()) for _ in range(6)]
    assert [r.detected for r in results] == [True, False, False, True, False, False]


def test_smirk_mode_crops_from_the_landmark_box_with_smirks_transform() -> None:
    photo = data.astronaut()
    cropper = FaceCropper(mode="smirk", margin=1.4)
    result = cropper.process(photo)
    assert result.detected and result.detector == "landmarks" and result.mode == "smirk"
    assert np.allclose(result.transform, smirk_transform(result.landmarks, 1.4))
    # SMIRK's crop puts the landmark box's centre at the crop's centre, its mean side at
    # 223 / 1.4 = 159 px
    inside = to_crop(result.landmarks, result.transform)
    lo, hi = inside.min(0), inside.max(0)
    assert np.allclose((lo + hi) / 2, 111.5, atol=1.0)
    assert np.mean(hi - lo) == pytest.approx(223 / 1.4, rel=0.01)
    assert "smirk crop x1.4" in cropper.describe()
    blank = cropper.process(np.full_like(photo, 128))
    assert not blank.detected and blank.age_frames == 1 and blank.landmarks is None
    assert np.array_equal(blank.transform, result.transform) and blank.crop is not None


def test_landmarks_are_off_by_default_in_eifer_mode() -> None:
    result = FaceCropper().process(data.astronaut())
    assert result.detector == "blazeface" and result.landmarks is None


def test_haar_stays_available_as_the_fallback_and_says_so() -> None:
    result = FaceCropper(detector="haar", landmarks=False).process(data.astronaut())
    assert result.detected and result.detector == "haar" and result.landmarks is None


def test_without_the_model_files_auto_falls_back_to_haar_and_smirk_refuses(
    tmp_path, monkeypatch, caplog
) -> None:
    monkeypatch.setenv("EIFER_MODEL_DIR", str(tmp_path))
    with caplog.at_level(logging.WARNING):
        cropper = FaceCropper()
    assert cropper.detector == "haar" and not cropper.landmarks_enabled
    assert "using the Haar cascade" in caplog.text
    with pytest.raises(ModelFilesError, match="missing: fetch it"):
        FaceCropper(mode="smirk", margin=1.4)
    with pytest.raises(ModelFilesError, match="missing: fetch it"):
        FaceCropper(detector="blazeface")


def test_bad_settings_are_one_line_config_errors() -> None:
    from streaming.config import ConfigError

    with pytest.raises(ConfigError, match="face crop mode"):
        FaceCropper(mode="mtcnn")
    with pytest.raises(ConfigError, match="face crop scale"):
        FaceCropper(margin=-1.0)
    with pytest.raises(ConfigError, match="unknown face detector 'dlib'"):
        FaceCropper(detector="dlib")
    with pytest.raises(ConfigError, match="unknown BlazeFace model"):
        FaceCropper(blazeface_model="long_range")
    with pytest.raises(ConfigError, match="face crop box"):
        FaceCropper(box="median")
    with pytest.raises(ConfigError, match="face crop offset"):
        FaceCropper(offset=(0.0, 0.7))
    with pytest.raises(ConfigError, match="steady_frames 0"):
        FaceCropper(box="steady", steady_frames=0)

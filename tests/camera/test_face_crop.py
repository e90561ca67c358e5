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

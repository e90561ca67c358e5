"""BlazeFace and the 478 landmarks from MediaPipe's shipped models, on a real photograph."""

from __future__ import annotations

import zipfile

import cv2
import numpy as np
import pytest
from skimage import data

from eifer_models.face_detection import models
from eifer_models.face_detection.blazeface import (
    BlazeFace,
    decode,
    ssd_anchors,
    weighted_nms,
)
from eifer_models.face_detection.landmarks import N_LANDMARKS, FaceLandmarker
from eifer_models.face_detection.models import ModelFilesError

pytestmark = pytest.mark.usefixtures("face_models")

# the astronaut's face in skimage.data.astronaut(): about x 177-272, y 66-175
FACE = (177, 66, 272, 175)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="module")
def blazeface() -> BlazeFace:
    return BlazeFace()


def test_anchors_are_the_896_centres_of_mediapipe_short_range() -> None:
    anchors = ssd_anchors()
    assert anchors.shape == (896, 2)
    # stride 8: a 16x16 grid, 2 anchors per cell; strides 16 x3: an 8x8 grid, 6 per cell
    assert np.allclose(anchors[0], [0.5 / 16, 0.5 / 16]) and np.allclose(anchors[1], anchors[0])
    assert np.allclose(anchors[2], [1.5 / 16, 0.5 / 16])
    assert np.allclose(anchors[511], [15.5 / 16, 15.5 / 16])
    assert np.allclose(anchors[512:518], [0.5 / 8, 0.5 / 8]) and np.allclose(
        anchors[518], [1.5 / 8, 0.5 / 8]
    )


def test_full_range_anchors_are_one_per_cell_of_a_48_grid() -> None:
    anchors = ssd_anchors(192, (4,), 1)
    assert anchors.shape == (2304, 2)
    assert np.allclose(anchors[:2], [[0.5 / 48, 0.5 / 48], [1.5 / 48, 0.5 / 48]])


def test_full_range_finds_a_face_too_small_for_the_short_range_model(photo, blazeface) -> None:
    """The photo's face (~95 px) in a 1280x720 frame: below what the short-range model sees."""
    frame = np.zeros((720, 1280, 3), np.uint8)
    frame[0:300, 400:650] = photo[0:300, 100:350]
    assert blazeface.detect(frame) == []
    (face,) = BlazeFace(model="full_range").detect(frame)
    x, y, w, h = face.box
    assert FACE[0] + 300 - 15 < x < x + w < FACE[2] + 300 + 15 and 60 < w < 130
    assert FACE[1] - 20 < y < y + h < FACE[3] + 15


def test_decoding_offsets_by_the_anchor_and_divides_by_the_input_size() -> None:
    anchors = np.array([[0.25, 0.5], [0.75, 0.5]])
    raw = np.zeros((2, 16))
    raw[0, :4] = [12.8, -6.4, 32.0, 64.0]  # centre +0.1, -0.05; size 0.25 x 0.5
    raw[0, 4:6] = [6.4, 0.0]  # first keypoint +0.05
    logits = np.array([2.0, -2.0])
    boxes, keypoints, scores = decode(raw, logits, anchors, min_score=0.5)
    assert boxes.shape == (1, 4)  # the second scores sigmoid(-2) = 0.12
    assert np.allclose(boxes[0], [0.35 - 0.125, 0.45 - 0.25, 0.35 + 0.125, 0.45 + 0.25])
    assert np.allclose(keypoints[0, 0], [0.30, 0.5]) and np.allclose(keypoints[0, 1], [0.25, 0.5])
    assert scores[0] == pytest.approx(1 / (1 + np.exp(-2.0)))


def test_weighted_nms_averages_overlapping_boxes_by_score_and_keeps_others() -> None:
    boxes = np.array([[0.0, 0.0, 1.0, 1.0], [0.1, 0.0, 1.1, 1.0], [3.0, 3.0, 4.0, 4.0]])
    keypoints = np.zeros((3, 6, 2))
    keypoints[:, 0, 0] = [0.0, 1.0, 5.0]
    scores = np.array([0.9, 0.6, 0.7])
    kept = weighted_nms(boxes, keypoints, scores, iou=0.3)
    assert len(kept) == 2
    (box, kps, score), (box2, _, score2) = kept
    assert score == 0.9 and score2 == 0.7
    # weighted by score: xmin (0.9 * 0 + 0.6 * 0.1) / 1.5, xmax (0.9 * 1 + 0.6 * 1.1) / 1.5
    assert np.allclose(box, [0.04, 0.0, 1.04, 1.0])
    assert kps[0, 0] == pytest.approx(0.6 / 1.5) and np.allclose(box2, boxes[2])


def test_blazeface_finds_the_face_and_its_keypoints_in_a_real_photograph(photo, blazeface) -> None:
    faces = blazeface.detect(photo)
    assert len(faces) == 1 and faces[0].score > 0.8
    x, y, w, h = faces[0].box
    assert FACE[0] - 10 < x < x + w < FACE[2] + 10 and FACE[1] - 20 < y < y + h < FACE[3] + 10
    right_eye, left_eye, nose, mouth = faces[0].keypoints[:4]
    assert right_eye[0] < nose[0] < left_eye[0]  # the person's right eye is on the image's left
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]


def test_letterboxed_frames_map_back_to_frame_pixels(photo, blazeface) -> None:
    """A wide frame is padded to a square for the model; the box must come back where the face
    is in the frame: the photo's top 300x250 region, enlarged 2.4x, at (400, 0) of a 1280x720
    frame (a short-range model: the face must fill a good part of the frame)."""
    zoom, x_off = 2.4, 400
    region = photo[0:300, 100:350]
    frame = np.zeros((720, 1280, 3), np.uint8)
    frame[:, x_off : x_off + 600] = cv2.resize(region, (600, 720), interpolation=cv2.INTER_LINEAR)
    (face,) = blazeface.detect(frame)
    (ref,) = blazeface.detect(photo)
    expected_centre = (ref.box[:2] + ref.box[2:] / 2 - [100, 0]) * zoom + [x_off, 0]
    centre = face.box[:2] + face.box[2:] / 2
    assert np.linalg.norm(centre - expected_centre) < 0.08 * ref.box[2] * zoom
    assert face.box[2] == pytest.approx(ref.box[2] * zoom, rel=0.1)
    assert np.allclose(
        face.keypoints[:2],
        (ref.keypoints[:2] - [100, 0]) * zoom + [x_off, 0],
        atol=0.08 * ref.box[2] * zoom,
    )


def test_no_face_in_a_grey_frame(blazeface) -> None:
    assert blazeface.detect(np.full((480, 640, 3), 128, np.uint8)) == []


def test_478_landmarks_lie_on_the_face_with_irises_inside_the_eyes(photo) -> None:
    result = FaceLandmarker(track=False).process(photo)
    assert result is not None and result.presence > 0.9 and not result.tracked
    lm = result.landmarks
    assert lm.shape == (N_LANDMARKS, 3) and lm.dtype == np.float32
    x0, y0, x1, y1 = FACE
    assert (lm[:, 0] > x0 - 15).all() and (lm[:, 0] < x1 + 15).all()
    assert (lm[:, 1] > y0 - 15).all() and (lm[:, 1] < y1 + 15).all()
    for centre, (corner_a, corner_b) in ((468, (33, 133)), (473, (362, 263))):
        lo, hi = sorted([lm[corner_a, 0], lm[corner_b, 0]])
        assert lo < lm[centre, 0] < hi  # iris centre between the eye corners
        assert abs(lm[centre, 1] - (lm[corner_a, 1] + lm[corner_b, 1]) / 2) < 6
        # iris edges: 1 image-right, 3 image-left, 2 top, 4 bottom of the centre
        c = lm[centre]
        assert (
            lm[centre + 1, 0] > c[0] > lm[centre + 3, 0]
            and lm[centre + 2, 1] < c[1] < lm[centre + 4, 1]
        )
    # the mouth (13 upper lip, 14 lower lip) below the nose tip (1), above the chin (152)
    assert lm[1, 1] < lm[13, 1] <= lm[14, 1] < lm[152, 1]


def test_tracking_reuses_the_last_region_and_agrees_with_detection(photo) -> None:
    landmarker = FaceLandmarker(track=True)
    first = landmarker.process(photo)
    second = landmarker.process(photo)
    assert not first.tracked and second.tracked and second.detection is None
    assert np.abs(second.landmarks[:, :2] - first.landmarks[:, :2]).mean() < 1.5
    assert landmarker.process(np.full_like(photo, 128)) is None
    assert not landmarker.process(photo).tracked  # lost track: the detector ran again


def test_landmarks_follow_a_rotated_head(photo) -> None:
    """The face region turns with the eyes: 20 degrees of head roll move every landmark with
    the rotation (within a few pixels)."""
    landmarker = FaceLandmarker(track=False)
    upright = landmarker.process(photo).landmarks
    centre = (224.0, 120.0)
    matrix = cv2.getRotationMatrix2D(centre, 20.0, 1.0)
    rotated = cv2.warpAffine(photo, matrix, (512, 512), borderMode=cv2.BORDER_REFLECT)
    turned = landmarker.process(rotated).landmarks
    expected = upright[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    error = np.linalg.norm(turned[:, :2] - expected, axis=1)
    assert np.median(error) < 3.0 and np.percentile(error, 95) < 8.0


def test_missing_or_corrupt_model_files_name_the_fix(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EIFER_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelFilesError, match=r"missing: fetch it with `python -m eifer_models"):
        models.model_path("face_landmark")
    (tmp_path / "face_landmark.tflite").write_bytes(b"not a model")
    with pytest.raises(ModelFilesError, match="sha256"):
        models.model_path("face_landmark")
    assert not models.models_available()


def test_a_wheel_with_other_model_files_is_refused(tmp_path) -> None:
    wheel = tmp_path / "mediapipe-0.10.14-fake.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for member, _ in models.MODEL_FILES.values():
            archive.writestr(member, b"other bytes")
    with pytest.raises(ModelFilesError, match=r"not the file of mediapipe 0\.10\.14"):
        models.extract_from_wheel(wheel, tmp_path / "out")

"""SMIRK's crop arithmetic and hull mask, against numbers worked out by hand from its formula
(``crop_face`` in SMIRK's demo.py / datasets/base_dataset.py) and against skimage, which SMIRK
uses for the transform and the warp."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data
from skimage.transform import estimate_transform, warp

from eifer_models.face_detection.crop import (
    CropSpec,
    box_transform,
    smirk_transform,
    to_crop,
    warp_crop,
)
from eifer_models.masking import landmark_hull_mask

# a landmark set whose box is left 100, right 180, top 50, bottom 150
LANDMARKS = np.array([[100.0, 80.0], [180.0, 120.0], [140.0, 50.0], [130.0, 150.0], [150, 100]])


def test_smirk_transform_matches_the_hand_computed_numbers() -> None:
    """old_size = ((180 - 100) + (150 - 50)) / 2 = 90; centre (140, 100); scale 1.5: size =
    int(135.0) = 135; the square's top-left (140 - 67.5, 100 - 67.5) = (72.5, 32.5) -> (0, 0);
    pixel scale 223 / 135 (corners go to 0 and 223, SMIRK's DST_PTS)."""
    t = smirk_transform(LANDMARKS, scale=1.5)
    s = 223 / 135
    assert np.allclose(t, [[s, 0, -s * 72.5], [0, s, -s * 32.5], [0, 0, 1]], rtol=0, atol=1e-12)
    # the box's corners: (100, 50) -> (223 * 27.5 / 135, 223 * 17.5 / 135)
    corners = to_crop(np.array([[100.0, 50.0], [180.0, 150.0]]), t)
    assert np.allclose(corners, [[45.4259259, 28.9074074], [177.5740741, 194.0925926]], atol=1e-6)
    assert np.allclose(to_crop(np.array([[140.0, 100.0]]), t), [[111.5, 111.5]])


def test_smirk_size_is_truncated_as_smirk_truncates_it() -> None:
    """90 * 1.4 is 125.99999999999999 in floating point: SMIRK's int() gives 125, not 126."""
    t = smirk_transform(LANDMARKS, scale=1.4)
    assert t[0, 0] == pytest.approx(223 / 125, abs=1e-12)


def test_smirk_transform_equals_skimage_similarity_estimate() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        points = rng.uniform(50, 400, size=(478, 2))
        scale = float(rng.uniform(1.2, 1.8))
        left, top = points.min(0)
        right, bottom = points.max(0)
        size = int((right - left + bottom - top) / 2 * scale)
        cx, cy = right - (right - left) / 2.0, bottom - (bottom - top) / 2.0
        src = np.array(
            [[cx - size / 2, cy - size / 2], [cx - size / 2, cy + size / 2],
             [cx + size / 2, cy - size / 2]]
        )  # fmt: skip
        expected = estimate_transform("similarity", src, np.array([[0, 0], [0, 223], [223, 0]]))
        assert np.allclose(smirk_transform(points, scale), expected.params, atol=1e-9)


def test_warp_agrees_with_skimage_warp_as_smirk_calls_it() -> None:
    photo = data.astronaut()
    t = smirk_transform(np.array([[177.0, 66.0], [272.0, 175.0]]), scale=1.4)
    ours = warp_crop(photo, t).astype(float)
    theirs = warp(photo, np.linalg.inv(t), output_shape=(224, 224), preserve_range=True)
    theirs = theirs.astype(np.uint8).astype(float)
    # SMIRK truncates with astype(uint8); OpenCV rounds and samples at 1/32-pixel positions
    # (fixed point), so sharp edges differ by a few levels
    assert np.abs(ours - theirs).mean() < 0.75 and np.abs(ours - theirs).max() <= 4


def test_eifer_box_transform_squares_the_longer_side() -> None:
    t = box_transform(np.array([100.0, 40.0, 80.0, 100.0]), scale=1.6)
    s = 224 / 160  # 1.6 x the longer side, 100
    assert np.allclose(t[:2], [[s, 0, 112 - s * 140], [0, s, 112 - s * 90]])


def test_hull_mask_is_zero_inside_the_landmarks_hull() -> None:
    square = np.array([[10.7, 10.2], [50.9, 10.0], [50.0, 40.0], [10.0, 40.9], [30.0, 25.0]])
    mask = landmark_hull_mask(square, (64, 64))
    assert mask.dtype == np.uint8 and mask.shape == (64, 64)
    # truncated corners (10, 10) .. (50, 40): 41 x 31 pixels inside, edges included
    assert (mask == 0).sum() == 41 * 31
    assert mask[25, 30] == 0 and mask[5, 5] == 1 and mask[41, 30] == 1 and mask[25, 51] == 1
    with pytest.raises(ValueError, match="at least 3"):
        landmark_hull_mask(square[:2])


def test_crop_spec_validates_mode_and_scale() -> None:
    assert CropSpec().mode == "eifer" and CropSpec(mode="smirk", scale=1.4).scale == 1.4
    with pytest.raises(ValueError, match="mode"):
        CropSpec(mode="mtcnn")
    with pytest.raises(ValueError, match="scale"):
        CropSpec(scale=0.0)


def test_antialiased_crop_averages_fine_detail_without_shifting_the_crop() -> None:
    """The eifer mode shrinks a 250 px face region to a 64 px crop: a warp at the frame's
    resolution averaged down (antialias) keeps one-pixel stripes (an electrode cable) as their
    mean grey instead of aliasing them, and samples the same places as the plain warp (a smooth
    gradient crops to the same values within rounding)."""
    import numpy as np

    from eifer_models.face_detection.crop import box_transform, warp_crop

    t = box_transform(np.array([250.0, 80.0, 150.0, 150.0]), 2.1, 64)
    stripes = np.zeros((360, 640, 3), np.uint8)
    stripes[:, 1::2] = 200
    inner = (slice(4, -4), slice(4, -4))  # the crop reaches a few pixels past the frame
    plain = warp_crop(stripes, t, 64)[inner]
    smooth = warp_crop(stripes, t, 64, antialias=True)[inner]
    assert plain.std() > 50  # aliased: crop columns near black or near white
    assert smooth.std() < plain.std() / 3 and abs(float(smooth.mean()) - 100) < 10
    y, x = np.mgrid[0:360, 0:640]
    ramp = np.stack([x * 0.3, y * 0.5, (x + y) * 0.2], -1).astype(np.uint8)
    a = warp_crop(ramp, t, 64).astype(int)
    b = warp_crop(ramp, t, 64, antialias=True).astype(int)
    assert np.abs(a - b)[4:-4, 4:-4].max() <= 1
    small = box_transform(np.array([250.0, 80.0, 40.0, 40.0]), 1.4, 64)  # enlarging: unchanged
    assert (warp_crop(ramp, small, 64) == warp_crop(ramp, small, 64, antialias=True)).all()

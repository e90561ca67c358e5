"""Face pairs framed as the pipeline frames them (``framing = "detector"``): the training crop of
a frame is the live cropper's crop of that frame, so live crops are the training distribution;
``framing = "steady"``: the crop a live steady box gives (the participant's mean detection)."""

from __future__ import annotations

import numpy as np
import pytest

from eifer_models.face_crop import FaceCropper
from simulation.emg import EmgSimulator
from simulation.participant.model import FaceState, ParticipantTraits
from simulation.participant.render import ParticipantRenderer
from training.errors import DatasetError
from training.face_pairs import (
    _DetectorFraming,
    load_or_render_pairs,
    render_pairs,
    steady_boxes,
)


def _frame(seed: int, occlusion: str | None) -> np.ndarray:
    n_muscles = len(EmgSimulator().muscle_labels)
    traits = ParticipantTraits.from_seed(seed, n_muscles)
    state = FaceState(
        t_s=np.zeros(1), phi=np.zeros((1, 55)), rotation=np.array([[0.03, -0.05, 0.0]]),
        centre_frac=np.asarray(traits.centre_frac)[None], zoom=np.ones(1),
        activation=np.zeros((1, n_muscles)),
    )  # fmt: skip
    return ParticipantRenderer(traits, 640, 360, occlusion=occlusion).render(state, 0).rgb


def test_the_training_crop_is_the_live_croppers_crop_of_the_frame() -> None:
    occluded, free = _frame(2000, "fridlund"), _frame(2000, None)
    framing = _DetectorFraming(64, 1.8)
    crop = framing.crop(occluded, framing.box(occluded, free), 64, 1.8)[0]
    live = FaceCropper(64, 1.8, detector="blazeface").process(occluded)
    assert live.crop is not None
    np.testing.assert_array_equal(crop, live.crop)


def test_detector_framing_crops_differ_from_box_framing_and_cache_apart(tmp_path) -> None:
    options = {"crop_scale": 1.8, "crop_jitter": 0.0}
    box = load_or_render_pairs(tmp_path, [2001], 2, 32, **options)
    live = load_or_render_pairs(tmp_path, [2001], 2, 32, **options, framing="detector")
    assert len(list(tmp_path.glob("face_pairs_*.npz"))) == 2
    assert box.occluded.shape == live.occluded.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(box.phi, live.phi)  # the same face states
    assert np.abs(box.occluded.astype(int) - live.occluded).mean() > 5  # another framing
    again = load_or_render_pairs(tmp_path, [2001], 2, 32, **options, framing="detector")
    np.testing.assert_array_equal(again.occluded, live.occluded)


def test_a_cache_drawn_by_another_rig_version_is_not_reused(tmp_path, monkeypatch) -> None:
    """A change to the participant renderer's drawing bumps ``RIG_VERSION``; caches made before
    it keep their files but are never read for the new rig."""
    import simulation.participant.render as render

    first = load_or_render_pairs(tmp_path, [2001], 1, 32)
    monkeypatch.setattr(render, "RIG_VERSION", render.RIG_VERSION + 1)
    again = load_or_render_pairs(tmp_path, [2001], 1, 32)
    assert len(list(tmp_path.glob("face_pairs_*.npz"))) == 2
    np.testing.assert_array_equal(first.occluded, again.occluded)  # the same drawing here


def test_camera_of_a_detector_crop_projects_the_head_into_the_crop() -> None:
    """Phase 1 renders FLAME with the pairs' camera: it must place the head on the crop's face,
    as for box framing (s > 0, the head centre near the crop centre)."""
    pairs = render_pairs([2002], 3, 32, crop_scale=1.8, framing="detector")
    s, tx, ty = pairs.cam.T
    assert (s > 0).all()
    assert np.abs(tx).max() < 0.2 and np.abs(ty).max() < 0.2
    with pytest.raises(DatasetError, match="framing"):
        render_pairs([2002], 1, 32, framing="nonsense")  # type: ignore[arg-type]


def test_steady_framing_shows_the_head_alike_in_every_crop_of_a_participant() -> None:
    """The steady box follows the head (its place and size) with the participant's mean
    detector bias: the head's camera in the crop is the same in every frame of a participant
    (its size and place; a detection's box wanders with expression and pose), and the crops are
    the live cropper's transform of the frame."""
    steady = render_pairs([2003], 4, 32, crop_scale=1.8, framing="steady")
    detector = render_pairs([2003], 4, 32, crop_scale=1.8, framing="detector")
    np.testing.assert_array_equal(steady.phi, detector.phi)
    np.testing.assert_allclose(steady.cam, steady.cam[:1].repeat(4, 0), rtol=1e-5, atol=1e-6)
    assert np.ptp(detector.cam[:, 0]) > 0.01 * detector.cam[:, 0].mean()
    # on average the steady crop frames the head as the detections do
    assert steady.cam[0, 0] == pytest.approx(np.exp(np.log(detector.cam[:, 0]).mean()), rel=1e-4)


def test_steady_boxes_keep_the_mean_bias_and_drop_the_wander() -> None:
    heads = np.array([[300.0, 200.0, 1000.0], [310.0, 190.0, 1100.0], [305.0, 195.0, 900.0]])
    bias_xy, ratio = np.array([0.01, 0.03]), 0.15  # box centre - head, side / scale
    wander = np.array([[-0.002, 0.001, 0.95], [0.003, -0.002, 1.08], [-0.001, 0.001, 0.975]])
    side = ratio * heads[:, 2] * wander[:, 2]
    centre = heads[:, :2] + (bias_xy + wander[:, :2]) * heads[:, 2:]
    boxes = np.concatenate([centre - side[:, None] / 2, side[:, None], side[:, None]], axis=1)
    steady = steady_boxes(boxes, heads)
    mean_log = np.log(wander[:, 2]).mean()
    np.testing.assert_allclose(steady[:, 2], ratio * np.exp(mean_log) * heads[:, 2])
    np.testing.assert_allclose(steady[:, 2], steady[:, 3])
    expected = heads[:, :2] + (bias_xy + wander[:, :2].mean(0)) * heads[:, 2:]
    np.testing.assert_allclose(steady[:, :2] + steady[:, 2:] / 2, expected)


def test_participants_are_filmed_by_the_cameras_in_turn() -> None:
    """``camera_sizes``: participant p at ``camera_sizes[p % n]``, so one run sees the demo's
    640x360 and the check's 320x180 faces, each participant's cache kept per size."""
    from training.encoder_config import FaceDataConfig
    from training.encoders import pair_options

    data = FaceDataConfig(framing="detector", camera_sizes=[(640, 360), (320, 180)])
    assert pair_options(data, 1000)["camera_size"] == (640, 360)
    assert pair_options(data, 1001)["camera_size"] == (320, 180)
    with pytest.raises(ValueError):
        FaceDataConfig(camera_sizes=[])

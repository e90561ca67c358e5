"""Outside check of the synthetic participant (issue 14, item 4): MediaPipe's landmarks, a tracker
no one here wrote, must move with the expression the rig renders, on the muscle's side only.

Rendering and TFLite inference are deterministic, so the figures do not depend on scheduling;
thresholds leave a margin below the values measured on seed 0 at 4 frames per second (in
brackets; the benchmark's table in the README has all movements, seeds and both occlusions).
Occlusion-free only: with the Fridlund electrodes MediaPipe's mesh rejects the face (README).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from benchmarks.participant_outside_check import (
    movement_clip,
    one_sided_change,
    pair_correlations,
    participant,
)
from simulation.participant.render import ParticipantRenderer, RenderedFrame

pytestmark = pytest.mark.usefixtures("face_models")
RATE_HZ = 4.0  # frames per simulated second: 28 frames per repetition (1.5 s rest each side)


def _r(movement: str, occlusion: str | None = None, seed: int = 0) -> dict[str, float]:
    person = participant(seed)
    renderer = ParticipantRenderer(person.traits, occlusion=occlusion)
    clip = movement_clip(person, renderer, movement, rate_hz=RATE_HZ, forced=bool(occlusion))
    assert clip.found == len(clip.t_s), "MediaPipe lost the face"
    return {row["measure"]: row["r_signed"] for row in pair_correlations(clip)}


def test_smile_raises_both_mouth_corners_with_the_zygomaticus() -> None:
    r = _r("Smile-Closed")
    assert r["mouth_corner_raise_right"] >= 0.8  # sign-corrected r (0.92)
    assert r["mouth_corner_raise_left"] >= 0.8  # (0.96)


@pytest.mark.slow
def test_depress_lip_lowers_the_mouth_corners_and_pucker_narrows_the_mouth() -> None:
    depress = _r("Depress-Lip")
    assert depress["mouth_corner_raise_right"] >= 0.7  # sign-corrected r (0.87)
    assert depress["mouth_corner_raise_left"] >= 0.7  # (0.87)
    assert _r("Lip-Pucker")["mouth_width"] >= 0.75  # (0.91)


@pytest.mark.slow
def test_eyelids_close_with_the_orbicularis_oculi_and_the_jaw_opens_with_the_masseter() -> None:
    eye = _r("Eye-Gentle")
    assert eye["eye_open_right"] >= 0.8 and eye["eye_open_left"] >= 0.8  # (0.96, 0.98)
    assert _r("Snarl")["mouth_open"] >= 0.8  # (0.98)


@pytest.mark.parametrize("moving", ["right", "left"])
def test_a_one_sided_smile_moves_that_sides_mouth_corner_only(moving) -> None:
    """The other side's gain 0 (a palsy): its corner moves less than half as much (measured
    0.26-0.29 of the moving corner on seed 0: MediaPipe's mesh couples the sides a little)."""
    gains = {"left_gain": 0.0} if moving == "right" else {"right_gain": 0.0}
    person = participant(0, **gains)
    clip = movement_clip(
        person, ParticipantRenderer(person.traits), "Smile-Closed", rate_hz=RATE_HZ
    )
    change = one_sided_change(clip, "mouth_corner_raise")
    still = "left" if moving == "right" else "right"
    assert change[moving] > 0.02  # eye-corner distances (~8 px at 1280x720)
    assert abs(change[still]) < 0.5 * change[moving]
    rows = {row["measure"]: row["r_signed"] for row in pair_correlations(clip)}
    assert rows[f"mouth_corner_raise_{moving}"] >= 0.8


def _side_darkening(drawn: RenderedFrame, plain: RenderedFrame, rows: slice, midline: int) -> dict[str, float]:  # fmt: skip
    """Per side of the face's ``midline`` (px), the mean darkening (8-bit levels) over ``rows``
    of the face box that ``drawn`` adds to ``plain``, the same frame drawn without the effect."""
    x, _, w, _ = (round(v) for v in drawn.face_box)
    diff = plain.rgb.astype(np.float32).mean(2) - drawn.rgb.astype(np.float32).mean(2)
    band = diff[rows].clip(0)
    # the person's right is on the image's left (MediaPipe's labels, README "Sides")
    return {"right": float(band[:, x:midline].mean()), "left": float(band[:, midline : x + w].mean())}  # fmt: skip


def _forehead(drawn: RenderedFrame, plain: RenderedFrame) -> dict[str, float]:
    """Above the eye corners, either side of the nose (iBUG 27-30)."""
    lm, y = drawn.landmarks_px, round(drawn.face_box[1])
    return _side_darkening(drawn, plain, slice(y, round(lm[[19, 28], 1].min())), round(lm[10:14, 0].mean()))  # fmt: skip


def _chin(drawn: RenderedFrame, plain: RenderedFrame) -> dict[str, float]:
    """Below the lower lip's centre (iBUG 57), either side of it."""
    lm, (_, y, _, h) = drawn.landmarks_px, drawn.face_box
    return _side_darkening(drawn, plain, slice(round(lm[40, 1]), round(y + h)), round(lm[40, 0]))  # fmt: skip


def _assert_one_sided(moving: str, movement: str, muscle: str, depths: list[str],
                      region: Callable[[RenderedFrame, RenderedFrame], dict[str, float]],
                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A one-sided ``movement`` of participant 1 (the other side's gain 0), every 0.5 s from 1 s
    before it to 1 s after, each frame drawn as is and with the rig's ``depths`` at 0: the
    moving side's darkening over ``region`` follows that side's ``muscle`` (r >= 0.95: the
    texture is a function of the drive's expression, through the map's mild saturation), and
    the still side stays < 20 % as dark."""
    import simulation.participant.render as render

    gains = {"left_gain": 0.0} if moving == "right" else {"right_gain": 0.0}
    person = participant(1, **gains)
    renderer = ParticipantRenderer(person.traits, sensor_noise=False)
    event = next(e for e in person.simulator.script.events if e.movement == movement)
    t = np.arange(event.start_s - 1.0, event.end_s + 1.0, 0.5)  # each frame drawn twice
    state = person.state(t)
    drawn = [renderer.render(state, i) for i in range(len(t))]
    for name in depths:
        monkeypatch.setattr(render, name, 0.0)
    darkening = [region(a, renderer.render(state, i)) for i, a in enumerate(drawn)]
    still = "left" if moving == "right" else "right"
    dark = {s: np.array([d[s] for d in darkening]) for s in (moving, still)}
    drive = person.activation(t - person.delay_s)[
        :, person.muscle_labels.index(f"{muscle}_{moving[0]}")
    ]
    assert np.corrcoef(dark[moving], drive)[0, 1] >= 0.95
    assert dark[moving].max() > 0.5  # 8-bit levels, the mean over that side's region
    assert dark[still].max() < 0.2 * dark[moving].max()


@pytest.mark.parametrize("moving", ["right", "left"])
def test_forehead_lines_deepen_with_that_sides_frontalis(moving: str, monkeypatch) -> None:
    """FACS AU1+2: the brow raise folds the forehead into horizontal lines, on a one-sided
    Forehead-Raise only on the moving side (the lines blend across 2 cm at the midline; the
    still side 13 % as dark, measured on seed 1)."""
    _assert_one_sided(moving, "Forehead-Raise", "frontalis_medialis", ["FOREHEAD_LINE_DEPTH"],
                      _forehead, monkeypatch)  # fmt: skip


@pytest.mark.parametrize("moving", ["right", "left"])
def test_the_chin_dimples_with_that_sides_mentalis(moving: str, monkeypatch) -> None:
    """FACS AU17: the chin raiser wrinkles the chin boss and deepens the furrow below the lower
    lip, on a one-sided Depress-Lip (mentalis 0.7) only on the moving side (the sides blend
    across 8 mm at the chin's midline; the still side 9-10 % as dark, measured on seed 1)."""
    _assert_one_sided(moving, "Depress-Lip", "mentalis",
                      ["CHIN_DIMPLE_DEPTH", "MENTOLABIAL_FURROW_DEPTH"], _chin, monkeypatch)  # fmt: skip


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="open (README 'Outside check'): on most seeds MediaPipe's brows stay with its eyes "
    "although the drawn brows rise 3-5 % of the eye-corner distance and the forehead furrows",
)
def test_mediapipe_brows_rise_with_the_frontalis_on_three_participants() -> None:
    """What the outside check should show for the brow: the brow-to-eye-corner distance of
    MediaPipe's landmarks follows the frontalis on both sides of 3 participants (sign-corrected
    r >= 0.7, the floor of the other measures' tests here). Seed 0 passes (0.92, 0.89 at 6 fps);
    seeds 1-2 do not."""
    for seed in (0, 1, 2):
        r = _r("Forehead-Raise", seed=seed)
        assert r["brow_raise_right"] >= 0.7 and r["brow_raise_left"] >= 0.7, (seed, r)

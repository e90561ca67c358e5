"""Outside check of the synthetic participant (issue 14, item 4): MediaPipe's landmarks, a tracker
no one here wrote, must move with the expression the rig renders, on the muscle's side only.

Rendering and TFLite inference are deterministic, so the figures do not depend on scheduling;
thresholds leave a margin below the values measured on seed 0 at 4 frames per second (in
brackets; the benchmark's table in the README has all movements, seeds and both occlusions).
Occlusion-free only: with the Fridlund electrodes MediaPipe's mesh rejects the face (README).
"""

from __future__ import annotations

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


def _furrow_darkening(lines: RenderedFrame, plain: RenderedFrame) -> dict[str, float]:
    """Per side of the face's midline (the nose, iBUG 27-30), the mean darkening (8-bit levels)
    of the face box above the eye corners that the forehead lines add to the same frame drawn
    without them."""
    lm = lines.landmarks_px
    x, y, w, _ = (round(v) for v in lines.face_box)
    midline, y_eyes = round(lm[10:14, 0].mean()), round(lm[[19, 28], 1].min())
    diff = plain.rgb.astype(np.float32).mean(2) - lines.rgb.astype(np.float32).mean(2)
    above = diff[y:y_eyes].clip(0)
    # the person's right is on the image's left (MediaPipe's labels, README "Sides")
    return {
        "right": float(above[:, x:midline].mean()),
        "left": float(above[:, midline : x + w].mean()),
    }


@pytest.mark.parametrize("moving", ["right", "left"])
def test_forehead_lines_deepen_with_that_sides_frontalis(moving: str, monkeypatch) -> None:
    """FACS AU1+2: the brow raise folds the forehead into horizontal lines. On a one-sided
    Forehead-Raise (the other side's gain 0), each frame drawn with and without the lines: the
    moving side's darkening follows its frontalis (r >= 0.95: the texture is a function of the
    drive's brow raise, through the map's mild saturation) and the still side stays unfurrowed
    (< 20 % as dark: the lines blend across 2 cm at the midline, 13 % measured on seed 1)."""
    import simulation.participant.render as render

    gains = {"left_gain": 0.0} if moving == "right" else {"right_gain": 0.0}
    person = participant(1, **gains)
    renderer = ParticipantRenderer(person.traits, sensor_noise=False)
    event = next(e for e in person.simulator.script.events if e.movement == "Forehead-Raise")
    t = np.arange(event.start_s - 1.0, event.end_s + 1.0, 0.5)  # 14 frames, each drawn twice
    state = person.state(t)
    with_lines = [renderer.render(state, i) for i in range(len(t))]
    monkeypatch.setattr(render, "FOREHEAD_LINE_DEPTH", 0.0)
    darkening = [_furrow_darkening(a, renderer.render(state, i)) for i, a in enumerate(with_lines)]
    still = "left" if moving == "right" else "right"
    dark = {s: np.array([d[s] for d in darkening]) for s in (moving, still)}
    drive = person.activation(t - person.delay_s)[
        :, person.muscle_labels.index(f"frontalis_medialis_{moving[0]}")
    ]
    assert np.corrcoef(dark[moving], drive)[0, 1] >= 0.95
    assert dark[moving].max() > 0.5  # 8-bit levels, the mean over that side's upper face
    assert dark[still].max() < 0.2 * dark[moving].max()


def _chin_darkening(drawn: RenderedFrame, plain: RenderedFrame) -> dict[str, float]:
    """Per side of the chin's midline (below the lower lip's centre, iBUG 57), the mean
    darkening (8-bit levels) of the face box below that lip that the chin's dimples and furrow
    add to the same frame drawn without them."""
    lm = drawn.landmarks_px
    x, y, w, h = (round(v) for v in drawn.face_box)
    midline, y_lip = round(lm[40, 0]), round(lm[40, 1])
    diff = plain.rgb.astype(np.float32).mean(2) - drawn.rgb.astype(np.float32).mean(2)
    below = diff[y_lip : y + h].clip(0)
    return {
        "right": float(below[:, x:midline].mean()),
        "left": float(below[:, midline : x + w].mean()),
    }


@pytest.mark.parametrize("moving", ["right", "left"])
def test_the_chin_dimples_with_that_sides_mentalis(moving: str, monkeypatch) -> None:
    """FACS AU17: the chin raiser wrinkles the chin boss and deepens the furrow below the lower
    lip. On a one-sided Depress-Lip (mentalis 0.7; the other side's gain 0), each frame drawn
    with and without them: the moving side's darkening follows its mentalis (r >= 0.95, as the
    forehead lines) and the still side stays smooth (< 20 % as dark: the sides blend across 8
    mm at the chin's midline, 9-10 % measured on seed 1)."""
    import simulation.participant.render as render

    gains = {"left_gain": 0.0} if moving == "right" else {"right_gain": 0.0}
    person = participant(1, **gains)
    renderer = ParticipantRenderer(person.traits, sensor_noise=False)
    event = next(e for e in person.simulator.script.events if e.movement == "Depress-Lip")
    t = np.arange(event.start_s - 1.0, event.end_s + 1.0, 0.5)
    state = person.state(t)
    drawn = [renderer.render(state, i) for i in range(len(t))]
    monkeypatch.setattr(render, "CHIN_DIMPLE_DEPTH", 0.0)
    monkeypatch.setattr(render, "MENTOLABIAL_FURROW_DEPTH", 0.0)
    darkening = [_chin_darkening(a, renderer.render(state, i)) for i, a in enumerate(drawn)]
    still = "left" if moving == "right" else "right"
    dark = {s: np.array([d[s] for d in darkening]) for s in (moving, still)}
    drive = person.activation(t - person.delay_s)[
        :, person.muscle_labels.index(f"mentalis_{moving[0]}")
    ]
    assert np.corrcoef(dark[moving], drive)[0, 1] >= 0.95
    assert dark[moving].max() > 0.5  # 8-bit levels, the mean over that side's chin
    assert dark[still].max() < 0.2 * dark[moving].max()


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

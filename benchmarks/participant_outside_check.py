"""Outside check of the synthetic participant (issue 14, item 4): does MediaPipe's face mesh, a
tracker no one here wrote, see the expressions the rig claims to render?

For each of the protocol's eleven functional movements, one participant performs its first
repetition (offline, through :class:`~simulation.participant.Participant` and
:class:`~simulation.participant.render.ParticipantRenderer`; no LSL), 1.5 s of rest on
either side, sampled at ``rate_hz``. MediaPipe's 478 landmarks (tracked, as in the pipeline) give
the expression measures of :mod:`eifer_models.face_detection.measures`; each is correlated
(Pearson r) with the truth of the muscle it should follow, per side: the participant's gained
activation one electromechanical delay earlier (what drives the face). Within one repetition all
muscles of a movement share one envelope, so r measures whether the landmark moves with the
movement; which muscle moves which side is checked with one-sided activations
(``SimulatorConfig.left_gain = 0``): the still side's measure must not follow.

Pairs (measure, muscle, expected sign), after EIFER Table 1 / FACS (configs/muscle_map.toml):
brow raise vs frontalis (+) or corrugator (-), eye opening vs orbicularis oculi (-), mouth corner
raise vs zygomaticus (+) or depressor anguli oris (-), mouth width vs orbicularis oris (-), upper
lip raise vs levator labii (+), mouth opening vs masseter (+, the protocol's jaw movement).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eifer_models.face_detection.landmarks import FaceLandmarker
from eifer_models.face_detection.measures import correlations, expression_measures
from simulation import EmgSimulator, SimulatorConfig
from simulation.participant import Participant
from simulation.participant.render import ParticipantRenderer

__all__ = [
    "MOVEMENT_PAIRS",
    "Clip",
    "Pair",
    "movement_clip",
    "one_sided_change",
    "pair_correlations",
    "participant",
]

SIDES = {"right": "r", "left": "l"}  # the person's side -> muscle label suffix


@dataclass(frozen=True)
class Pair:
    measure: str  # a measure name without side (sided) or the full name
    muscle: str
    sign: int  # +1: the measure grows with the muscle's activation; -1: it shrinks
    sided: bool = True


# the main pairs per functional movement (the movement's primary muscles, configs/movements.toml)
MOVEMENT_PAIRS: dict[str, list[Pair]] = {
    "Face-At-Rest": [],
    "Forehead-Raise": [Pair("brow_raise", "frontalis_medialis", +1)],
    "Eye-Gentle": [Pair("eye_open", "orbicularis_oculi", -1)],
    "Eye-Tight": [
        Pair("eye_open", "orbicularis_oculi", -1),
        Pair("brow_raise", "corrugator_supercilii", -1),
    ],
    "Smile-Closed": [Pair("mouth_corner_raise", "zygomaticus_major", +1)],
    "Smile-Open": [Pair("mouth_corner_raise", "zygomaticus_major", +1)],
    "Nose-Wrinkler": [Pair("upper_lip_raise", "levator_labii_superioris", +1, sided=False)],
    "Cheeks-Blow": [Pair("mouth_width", "orbicularis_oris", -1, sided=False)],
    "Lip-Pucker": [Pair("mouth_width", "orbicularis_oris", -1, sided=False)],
    "Snarl": [
        Pair("upper_lip_raise", "levator_labii_superioris", +1, sided=False),
        Pair("mouth_open", "masseter", +1, sided=False),
    ],
    "Depress-Lip": [Pair("mouth_corner_raise", "depressor_anguli_oris", -1)],
}


@dataclass(frozen=True)
class Clip:
    """Landmark measures and the face's drive over one repetition of a movement."""

    movement: str
    t_s: np.ndarray  # (n,) simulator time of each frame
    measures: dict[str, np.ndarray]  # (n,) each; NaN where the landmarks were lost
    drive: dict[str, np.ndarray]  # muscle label -> (n,) gained activation one EMD earlier
    found: int  # frames with landmarks
    hold: np.ndarray  # (n,) bool: frames inside the hold (ramps excluded)
    presence: np.ndarray  # (n,) the mesh's face-presence score (NaN: no face region)


def participant(seed: int, *, left_gain: float = 1.0, right_gain: float = 1.0) -> Participant:
    config = SimulatorConfig(seed=seed, left_gain=left_gain, right_gain=right_gain)
    return Participant(seed, EmgSimulator(config))


def movement_clip(
    person: Participant,
    renderer: ParticipantRenderer,
    movement: str,
    *,
    rate_hz: float = 10.0,
    margin_s: float = 1.5,
    forced: bool = False,
) -> Clip:
    """Render the first repetition of ``movement`` (``margin_s`` of rest on each side) and run
    MediaPipe's landmarks on every frame: a fresh tracker as in the pipeline, or ``forced``: the
    face region from BlazeFace in every frame and the mesh's presence flag ignored (its face
    rejection is then reported, not applied; used on faces with electrodes, see the module)."""
    script = person.simulator.script
    event = next(e for e in script.events if e.movement == movement)
    t = np.arange(event.start_s - margin_s, event.end_s + margin_s, 1.0 / rate_hz)
    state = person.state(t)
    landmarker = FaceLandmarker(track=not forced, min_presence=0.0 if forced else 0.5)
    marks = np.full((len(t), 478, 3), np.nan)
    presence = np.full(len(t), np.nan)
    for i in range(len(t)):
        result = landmarker.process(renderer.render(state, i).rgb)
        if result is not None:
            marks[i], presence[i] = result.landmarks, result.presence
    drive_all = person.activation(t - person.delay_s) * person.traits.face_gain
    drive = {label: drive_all[:, k] for k, label in enumerate(person.muscle_labels)}
    ramp = script.ramp_s + person.delay_s
    hold = (t > event.start_s + ramp) & (t < event.end_s)
    found = int(np.isfinite(marks[:, 0, 0]).sum())
    return Clip(movement, t, expression_measures(marks), drive, found, hold, presence)


def _truth(clip: Clip, pair: Pair, side: str | None) -> np.ndarray:
    if side is not None:
        return clip.drive[f"{pair.muscle}_{SIDES[side]}"]
    return (clip.drive[f"{pair.muscle}_l"] + clip.drive[f"{pair.muscle}_r"]) / 2


def pair_correlations(clip: Clip) -> list[dict]:
    """Per main pair of the clip's movement and per side: Pearson r of the measure with the
    muscle's drive over the frames with landmarks, and r times the expected sign."""
    ok = np.isfinite(clip.measures["mouth_width"])
    if ok.sum() < 3:
        return []
    rows = []
    for pair in MOVEMENT_PAIRS[clip.movement]:
        for side in ("right", "left") if pair.sided else (None,):
            name = f"{pair.measure}_{side}" if side else pair.measure
            r = correlations({name: clip.measures[name][ok]}, {"t": _truth(clip, pair, side)[ok]})
            value = r[name]["t"]
            rows.append(
                {
                    "measure": name,
                    "muscle": f"{pair.muscle}_{SIDES[side]}" if side else pair.muscle,
                    "sign": pair.sign,
                    "r": value,
                    "r_signed": pair.sign * value,
                    "frames_used": int(ok.sum()),
                }
            )
    return rows


def one_sided_change(clip: Clip, measure: str) -> dict[str, float]:
    """Hold minus rest mean of ``<measure>_right`` and ``_left``, in units of the eye-corner
    distance (a one-sided movement should move one side only)."""
    rest = np.sum(list(clip.drive.values()), axis=0) < 1e-6  # before the onset, after the end
    out = {}
    for side in ("right", "left"):
        m = clip.measures[f"{measure}_{side}"]
        out[side] = float(np.nanmean(m[clip.hold]) - np.nanmean(m[rest]))
    return out

"""The live crop margin that frames a face as the encoders' training crops do.

Training crops (:mod:`training.face_pairs`) are squares of ``crop_scale`` x the longer side of
the face's *true* box (the rendered head's extent); the pipeline crops around the *detector's*
box (BlazeFace in the ``eifer`` mode, :mod:`eifer_models.face_crop`), which is smaller and
differs with electrodes on (measured on the synthetic participant at 640x360: 0.57-0.69 of the
true side under Fridlund electrodes, 0.79-0.93 without). A bundle's ``crop.scale`` is therefore
``crop_scale`` x median(true side / detector side) over rendered frames of participants that
were not trained on, so the live crop shows the face at the size the encoders learned, and its
centre is moved by the median offset of the two boxes' centres (``CropSpec.offset``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DetectorFraming", "detector_framing"]


@dataclass(frozen=True)
class DetectorFraming:
    """How the detector's boxes relate to the true face boxes."""

    side_ratio: float  # median true side / detector side
    side_ratio_iqr: tuple[float, float]  # 25th and 75th percentiles
    centre_offset: tuple[float, float]  # median (detector - true) centre / true side, x and y
    frames: int  # frames with a detection
    missed: int  # frames without one

    def margin(self, crop_scale: float) -> float:
        """The live crop margin over the detector's box matching ``crop_scale`` x true box."""
        return round(crop_scale * self.side_ratio, 3)

    def box_offset(self) -> tuple[float, float]:
        """The live crop centre's shift from the detector's box centre to the true box's, as a
        fraction of the detector box's side (``CropSpec.offset``)."""
        dx, dy = (round(-v * self.side_ratio, 4) for v in self.centre_offset)
        return dx, dy


def detector_framing(
    seeds: list[int],
    *,
    occlusion: str | None = "fridlund",
    frames_per_participant: int = 3,
    width: int = 640,
    height: int = 360,
    seed: int = 0,
) -> DetectorFraming:
    """Render ``seeds``' faces in random expressions at the camera size ``width`` x ``height``
    and compare the pipeline's detector box with the true face box."""
    from eifer_models.face_crop import FaceCropper
    from simulation.emg import EmgSimulator
    from simulation.participant.model import (
        ExpressionMap,
        FaceState,
        ParticipantTraits,
        load_muscle_map,
    )
    from simulation.participant.render import ParticipantRenderer
    from training.face_pairs import random_activation

    labels = EmgSimulator().muscle_labels
    expression_map = ExpressionMap(load_muscle_map(), labels)
    cropper = FaceCropper(mode="eifer")
    ratios, offsets, missed = [], [], 0
    n = frames_per_participant
    for pid in seeds:
        traits = ParticipantTraits.from_seed(pid, len(labels))
        rng = np.random.default_rng([seed, pid, 777])
        activation = random_activation(rng, n, len(labels))
        state = FaceState(
            t_s=np.arange(n) / 30.0,
            phi=expression_map(activation * traits.face_gain),
            rotation=rng.normal(0.0, 0.05, (n, 3)),
            centre_frac=np.tile(np.asarray(traits.centre_frac), (n, 1)),
            zoom=np.ones(n),
            activation=activation,
        )
        renderer = ParticipantRenderer(traits, width, height, occlusion=occlusion)
        for i in range(n):
            view = renderer.render(state, i)
            box = cropper.detect(view.rgb)
            if box is None:
                missed += 1
                continue
            true = np.asarray(view.face_box, np.float64)
            found = np.asarray(box, np.float64)
            side = max(true[2], true[3])
            ratios.append(side / max(found[2], found[3]))
            offsets.append(((found[:2] + found[2:] / 2) - (true[:2] + true[2:] / 2)) / side)
    if not ratios:
        raise RuntimeError("the detector found no face in any rendered frame")
    r = np.asarray(ratios)
    off = np.median(np.asarray(offsets), axis=0)
    return DetectorFraming(
        side_ratio=round(float(np.median(r)), 4),
        side_ratio_iqr=(round(float(np.percentile(r, 25)), 4), round(float(np.percentile(r, 75)), 4)),
        centre_offset=(round(float(off[0]), 4), round(float(off[1]), 4)),
        frames=len(r),
        missed=missed,
    )  # fmt: skip

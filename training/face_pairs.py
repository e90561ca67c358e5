"""Paired face crops of synthetic participants: the same face state rendered with electrodes
(sEMG-occluded) and without (occlusion-free), with the true phi, head rotation and identity.

The encoders' data (``eifer train encoders`` / ``phase1``). Each participant (a seed of
:class:`~simulation.participant.model.ParticipantTraits`: identity, skin, light,
background) is drawn in ``frames`` random states: 1 to 3 muscle/side activations in [0.2, 1]
through the participant's muscle -> expression map (the same map that drives ``eifer synth``),
a random head rotation (normal, ``rotation_sd_rad``) and a small shift. Two framings:

- ``"box"``: the face is rasterised at ``crop_size`` and the crop is the square around the true
  face box times ``crop_scale``;
- ``"detector"``: the frame is rendered at ``camera_size`` as the participant camera renders it
  (the face rasterised at 224 px) and cropped as the pipeline crops it: BlazeFace's box on the
  frame under electrodes times ``crop_scale``, the live anti-aliased warp
  (:mod:`eifer_models.face_crop`); both views take that one crop. Live crops are then the
  training distribution, not a calibrated approximation of it (measured: an encoder trained on
  "box" crops reads held-out faces at 0.74 there and 0.42 through the live cropper, issue 23);
- ``"steady"``: as ``"detector"``, around the box a live steady cropper
  (``CropSpec.box = "steady"``: the running mean of the detections) holds on this participant:
  the head's true place and size in each frame, moved and scaled by the participant's mean
  detector box relative to the head. Each detection wanders ~7 % in size with expression and
  pose (benchmarks/results/face_framing.json); the steady box does not, its bias per
  participant remains.

``crop_jitter`` draws each frame's scale and centre shift around the box (a live box moves).
Deterministic per config; cached as one ``.npz`` named by the config's hash (never unpickled:
plain arrays).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from training.errors import DatasetError

__all__ = [
    "FacePairs",
    "load_or_render_pairs",
    "random_activation",
    "render_pairs",
    "steady_boxes",
]

log = logging.getLogger(__name__)
PAIRS_FORMAT = 2  # 2: crop scale and jitter (and, since, movement labels: "" when absent)
Framing = Literal["box", "detector", "steady"]


@dataclass
class FacePairs:
    """Per frame: crops with and without electrodes (n, S, S, 3) uint8 and the truth."""

    occluded: np.ndarray
    free: np.ndarray
    phi: np.ndarray  # (n, 55) float32
    rotation: np.ndarray  # (n, 3) float32, axis-angle (FLAME global pose)
    cam: np.ndarray  # (n, 3) float32, weak-perspective (s, tx, ty) of the crop (renderer's)
    shape: np.ndarray  # (n, 300) float32, the participant's identity coefficients
    participant: np.ndarray  # (n,) int64 seed
    movement: np.ndarray  # (n,) str: the protocol movement shown ("" for random states)

    def __len__(self) -> int:
        return len(self.phi)

    def select(self, rows: np.ndarray) -> FacePairs:
        return FacePairs(*(getattr(self, k)[rows] for k in FacePairs.__dataclass_fields__))


def _crop(
    rgb: np.ndarray, box: np.ndarray, size: int, scale: float
) -> tuple[np.ndarray, float, float, float]:
    """The square crop around ``box`` and its (crop px per frame px, box centre x, y)."""
    import cv2

    x, y, w, h = (float(v) for v in box)
    k = size / (scale * max(w, h))
    bx, by = x + w / 2, y + h / 2
    m = np.array([[k, 0, size / 2 - k * bx], [0, k, size / 2 - k * by]], np.float64)
    crop = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    return crop, k, bx, by


class _DetectorFraming:
    """The pipeline's crop of a frame: BlazeFace's box (no smoothing across frames: the states
    are independent), the live transform and warp. Where BlazeFace misses the face under
    electrodes, the box of the same frame without them (one geometry), else the participant's
    last box (what the live cropper keeps); ``misses`` counts both."""

    def __init__(self, size: int, scale: float) -> None:
        from eifer_models.face_crop import FaceCropper

        self.misses = 0
        self._cropper = FaceCropper(size, scale, detector="blazeface", smoothing=1.0)
        self._last: np.ndarray | None = None

    def box(self, occluded_rgb: np.ndarray, free_rgb: np.ndarray) -> np.ndarray:
        found = self._cropper.detect(occluded_rgb)
        if found is None:
            self.misses += 1
            found = self._cropper.detect(free_rgb)
        if found is None and self._last is None:
            raise DatasetError(
                "BlazeFace finds no face in a rendered frame, with or without electrodes"
            )
        if found is not None:
            self._last = np.asarray(found, np.float64)
        assert self._last is not None
        return self._last.copy()

    def new_participant(self) -> None:
        self._last = None

    @staticmethod
    def crop(
        rgb: np.ndarray, box: np.ndarray, size: int, scale: float
    ) -> tuple[np.ndarray, float, float, float]:
        """As :func:`_crop`, with the pipeline's transform and warp."""
        from eifer_models.face_detection.crop import box_transform, warp_crop

        transform = box_transform(box, scale, size)
        k = float(transform[0, 0])
        bx, by = (size / 2 - transform[:2, 2]) / k
        return warp_crop(rgb, transform, size, antialias=True), k, float(bx), float(by)


def steady_boxes(boxes: np.ndarray, heads: np.ndarray) -> np.ndarray:
    """(n, 4) square boxes a steady live box gives one participant: each frame's head
    (``heads`` (n, 3): centre x, y and pixels per metre, ``ParticipantRenderer.placement``)
    moved and scaled by the mean of the detector ``boxes`` (n, 4) relative to the head."""
    centre = boxes[:, :2] + boxes[:, 2:] / 2
    scale = heads[:, 2:3]
    offset = np.mean((centre - heads[:, :2]) / scale, axis=0)
    log_side = np.mean(np.log(boxes[:, 2:].max(axis=1) / heads[:, 2]))
    side = np.exp(log_side) * heads[:, 2:3]
    return np.concatenate([heads[:, :2] + offset * scale - side / 2, side, side], axis=1)


def crop_camera(
    k: float, box_centre: tuple[float, float], head_px: tuple[float, float, float], size: int
) -> np.ndarray:
    """Weak-perspective camera (s, tx, ty) that projects the head's model-space vertices onto
    the crop as :func:`eifer_models.renderer.project` does: the participant renderer places a
    vertex at ``centre + (v - HEAD_CENTRE_M) * scale`` (y down), the crop maps frame pixels by
    ``k`` around the box centre, NDC = pixel / size * 2 - 1."""
    from simulation.participant.render import HEAD_CENTRE_M

    cx, cy, scale = head_px
    s = 2.0 * k * scale / size
    tx = -HEAD_CENTRE_M[0] + (cx - box_centre[0]) / scale
    ty = -HEAD_CENTRE_M[1] - (cy - box_centre[1]) / scale
    return np.array([s, tx, ty], np.float32)


def random_activation(rng: np.random.Generator, frames: int, n_muscles: int) -> np.ndarray:
    """(frames, n_muscles) activations: per frame 1 to 3 muscle sides at U(0.2, 1), others 0."""
    activation = np.zeros((frames, n_muscles))
    for row in activation:
        chosen = rng.choice(n_muscles, rng.integers(1, 4), replace=False)
        row[chosen] = rng.uniform(0.2, 1.0, len(chosen))
    return activation


def render_pairs(
    seeds: list[int],
    frames: int,
    crop_size: int,
    *,
    crop_scale: float = 1.4,
    crop_jitter: float = 0.0,
    rotation_sd_rad: float = 0.08,
    occlusion: str = "fridlund",
    script: Literal["random", "movements"] = "random",
    framing: Framing = "box",
    camera_size: tuple[int, int] = (640, 360),
    seed: int = 0,
    progress: bool = False,
) -> FacePairs:
    """Render ``frames`` states of each participant in ``seeds`` (see module doc): random
    muscle activations, or (``script="movements"``) the protocol's functional movements in
    turn, each at a random intensity in [0.3, 1] (both sides, the levels of
    ``configs/movements.toml``), labelled in ``movement`` (per-movement evaluation);
    ``framing`` and ``camera_size``: which crop (module doc)."""
    from simulation.emg import EmgSimulator
    from simulation.movements import load_movements
    from simulation.participant.model import (
        ExpressionMap,
        FaceState,
        ParticipantTraits,
        load_muscle_map,
    )
    from simulation.participant.render import ParticipantRenderer

    labels = EmgSimulator().muscle_labels
    expression_map = ExpressionMap(load_muscle_map(), labels)
    library = load_movements()
    if labels != [f"{m}_{side}" for m in library.muscle_names for side in ("l", "r")]:
        raise DatasetError("the simulator's muscles differ from configs/movements.toml's")
    functional = [n for n, m in library.movements.items() if m.kind == "functional"]
    if framing not in ("box", "detector", "steady"):
        raise DatasetError(f"unknown face-pair framing {framing!r} (box, detector, steady)")
    if framing != "box":
        width, height = camera_size
        face_px: dict[str, Any] = {}  # the participant camera's rasterisation
        detector = _DetectorFraming(crop_size, crop_scale)
    else:
        height = 2 * crop_size
        width = height * 4 // 3
        face_px = {"face_px": crop_size}
        detector = None
    out: dict[str, list[np.ndarray]] = {k: [] for k in FacePairs.__dataclass_fields__}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(seeds) * frames, desc="render face pairs", unit="frame")
    for pid in seeds:
        traits = ParticipantTraits.from_seed(pid, len(labels))
        rng = np.random.default_rng([seed, pid, 4242])
        if detector is not None:
            detector.new_participant()
        renderers = {
            on: ParticipantRenderer(
                traits, width, height, occlusion=occlusion if on else None, **face_px
            )
            for on in (True, False)
        }
        activation = np.zeros((frames, len(labels)))
        shown = np.full(frames, "", dtype="<U32")
        if script == "movements":
            for i, name in enumerate(itertools.islice(itertools.cycle(functional), frames)):
                level = np.repeat(library.levels(name), 2)  # muscle_l, muscle_r
                activation[i] = level * rng.uniform(0.3, 1.0)
                shown[i] = name
        else:
            activation = random_activation(rng, frames, len(labels))
        phi = expression_map(activation * traits.face_gain)
        state = FaceState(
            t_s=np.arange(frames) / 30.0,
            phi=phi,
            rotation=rng.normal(0.0, rotation_sd_rad, (frames, 3)),
            centre_frac=np.asarray(traits.centre_frac) + rng.normal(0, 0.01, (frames, 2)),
            zoom=1.0 + rng.uniform(-0.05, 0.05, frames),
            activation=activation,
        )
        jitter = rng.uniform(-crop_jitter, crop_jitter, (frames, 3))  # scale, shift x, y
        frame_views = [
            {on: r.render(state, i) for on, r in renderers.items()} for i in range(frames)
        ]
        heads = [renderers[False].placement(state, i) for i in range(frames)]
        if detector is None:  # the true face box: one geometry in both views
            boxes = np.array([v[False].face_box for v in frame_views], np.float64)
        else:  # the pipeline sees the face under electrodes
            boxes = np.array([detector.box(v[True].rgb, v[False].rgb) for v in frame_views])
        if framing == "steady":
            boxes = steady_boxes(boxes, np.asarray(heads))
        crop_fn = _crop if detector is None else detector.crop
        for i, views in enumerate(frame_views):
            box = np.array(boxes[i], np.float64)
            side = max(box[2], box[3])
            box[:2] += jitter[i, 1:] * side
            scale = crop_scale * (1.0 + jitter[i, 0])
            crop, k, bx, by = crop_fn(views[False].rgb, box, crop_size, scale)
            out["free"].append(crop)
            out["occluded"].append(crop_fn(views[True].rgb, box, crop_size, scale)[0])
            out["cam"].append(crop_camera(k, (bx, by), heads[i], crop_size)[None])
            if bar is not None:
                bar.update(1)
        out["phi"].append(phi.astype(np.float32))
        out["rotation"].append(state.rotation.astype(np.float32))
        out["shape"].append(np.repeat(traits.shape[None].astype(np.float32), frames, 0))
        out["participant"].append(np.full(frames, pid, np.int64))
        out["movement"].append(shown)
    if bar is not None:
        bar.close()
    if detector is not None and detector.misses:
        log.info("face pairs: BlazeFace missed %d faces under electrodes", detector.misses)
    return FacePairs(
        np.stack(out["occluded"]), np.stack(out["free"]),
        *(np.concatenate(out[k]) for k in ("phi", "rotation", "cam", "shape", "participant", "movement")),
    )  # fmt: skip


def load_or_render_pairs(
    cache_dir: str | Path, seeds: list[int], frames: int, crop_size: int, *,
    crop_scale: float = 1.4, crop_jitter: float = 0.0,
    script: Literal["random", "movements"] = "random", framing: Framing = "box",
    camera_size: tuple[int, int] = (640, 360), seed: int = 0, progress: bool = False,
) -> FacePairs:  # fmt: skip
    """:func:`render_pairs`, cached in ``cache_dir`` under the hash of its arguments and the
    participant renderer's version."""
    from simulation.participant.render import RIG_VERSION

    key = {
        "format": PAIRS_FORMAT,
        "seeds": seeds,
        "frames": frames,
        "crop": crop_size,
        "crop_scale": crop_scale,
        "crop_jitter": crop_jitter,
        "seed": seed,
        "rig": RIG_VERSION,  # a cache drawn by an older participant renderer is not reused
    }
    if script != "random":
        key["script"] = script
    if framing != "box":  # "box" caches keep their names
        key["framing"] = framing
        key["camera_size"] = list(camera_size)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    file = Path(cache_dir) / f"face_pairs_{digest}.npz"
    if file.is_file():
        try:
            with np.load(file, allow_pickle=False) as data:
                arrays = {k: data[k] for k in FacePairs.__dataclass_fields__ if k in data}
            arrays.setdefault("movement", np.full(len(arrays["phi"]), "", dtype="<U32"))
            return FacePairs(**arrays)
        except (OSError, ValueError, KeyError) as exc:
            raise DatasetError(f"{file}: unreadable face-pair cache ({exc}); delete it") from None
    pairs = render_pairs(
        seeds, frames, crop_size, crop_scale=crop_scale, crop_jitter=crop_jitter,
        script=script, framing=framing, camera_size=camera_size, seed=seed, progress=progress,
    )  # fmt: skip
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp.npz")
    np.savez(tmp, **{k: getattr(pairs, k) for k in FacePairs.__dataclass_fields__})
    tmp.replace(file)
    log.info("face pairs cached: %s", file)
    return pairs

"""Encoders through the pipeline's own crop: held-out faces rendered at the camera's size, cropped
by the bundle's cropper (BlazeFace box, margin, anti-aliased warp), read by the encoders.

The comparison benchmark (:mod:`benchmarks.encoders_comparison`) scores encoders on the
training crops' framing (the true face box); live, the pipeline frames faces with BlazeFace's
box and the bundle's margin (:mod:`training.crop_calibration`). This checks that the two agree:
r per driven phi component, under electrodes and free, through both paths, on the same frames.

    .venv/bin/python -m benchmarks.encoders_live_crop --bundle DIR [--seeds 7 2000 2001]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results" / "encoders_live_crop.json"


def live_path_scores(
    bundle_dir: Path, seeds: list[int], frames: int, width: int, height: int
) -> dict[str, Any]:
    """r of the bundle's encoders on ``seeds`` in the protocol's movements, through the
    pipeline's cropper and through the training framing, under electrodes and free."""
    from eifer_models.bundle import load_bundle
    from eifer_models.face_crop import FaceCropper
    from simulation.emg import EmgSimulator
    from simulation.movements import load_movements
    from simulation.participant.model import (
        ExpressionMap,
        FaceState,
        ParticipantTraits,
        load_muscle_map,
    )
    from simulation.participant.render import ParticipantRenderer
    from training.encoder_runs import phi_scores
    from training.face_pairs import _crop

    bundle = load_bundle(bundle_dir)
    graph = bundle.build_module("encoders")
    spec = bundle.manifest.crop
    labels = EmgSimulator().muscle_labels
    expression_map = ExpressionMap(load_muscle_map(), labels)
    library = load_movements()
    functional = [n for n, m in library.movements.items() if m.kind == "functional"]
    crops: dict[str, dict[str, list[np.ndarray]]] = {
        v: {"live": [], "training": []} for v in ("occluded", "free")
    }
    truth = []
    missed = 0
    for pid in seeds:
        traits = ParticipantTraits.from_seed(pid, len(labels))
        rng = np.random.default_rng([pid, 99])
        act = np.array([
            np.repeat(library.levels(functional[i % len(functional)]), 2) * rng.uniform(0.3, 1.0)
            for i in range(frames)
        ])  # fmt: skip
        state = FaceState(
            t_s=np.arange(frames) / 30.0, phi=expression_map(act * traits.face_gain),
            rotation=rng.normal(0.0, 0.03, (frames, 3)),
            centre_frac=np.tile(np.asarray(traits.centre_frac), (frames, 1)),
            zoom=np.ones(frames), activation=act,
        )  # fmt: skip
        truth.append(state.phi)
        for view, occlusion in (("occluded", "fridlund"), ("free", None)):
            renderer = ParticipantRenderer(traits, width, height, occlusion=occlusion)
            cropper = FaceCropper.from_spec(spec)
            train_scale = bundle.manifest.training.get("crop_framing", {}).get("crop_scale", 1.4)
            for i in range(frames):
                frame = renderer.render(state, i)
                result = cropper.process(frame.rgb)
                if result.crop is None:
                    missed += 1
                    result_crop = np.zeros((spec.size, spec.size, 3), np.uint8)
                else:
                    result_crop = result.crop
                crops[view]["live"].append(result_crop)
                box = np.asarray(frame.face_box, np.float64)
                crops[view]["training"].append(_crop(frame.rgb, box, spec.size, train_scale)[0])
    phi_true = np.concatenate(truth)
    out: dict[str, Any] = {"bundle": str(bundle_dir), "crop": spec.model_dump(), "seeds": seeds,
                           "frames": len(phi_true), "camera": [width, height], "missed": missed}  # fmt: skip
    with torch.no_grad():
        for view, paths in crops.items():
            for path, images in paths.items():
                x = torch.as_tensor(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
                phi = graph(x)[2].numpy()
                out[f"{view}_{path}"] = phi_scores(phi, phi_true)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 2000, 2001, 2002])
    parser.add_argument("--frames", type=int, default=33, help="per participant (3 per movement)")
    parser.add_argument("--size", default="640x360", help="camera frame WIDTHxHEIGHT")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    scores = live_path_scores(args.bundle, args.seeds, args.frames, width, height)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(scores, indent=2))
    for key in ("occluded_live", "occluded_training", "free_live", "free_training"):
        print(f"{key:18s} mean r {scores[key]['mean_r']}")


if __name__ == "__main__":
    main()

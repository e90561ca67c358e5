"""A bundle with the trained encoders of an ``encoders`` or ``phase1`` run.

The MLPs in it are seeded and untrained (``trained: false`` in the manifest) until phase 2
replaces them: ``eifer train mlp --set encoders_bundle='"<this bundle>"'`` writes the bundle
with these encoders and trained EMG2Exp / Exp2EMG, the provenance of both and the evaluation.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from eifer_models.bundle import Bundle, default_emg_channels, save_bundle
from eifer_models.mlp import DEFAULT_HIDDEN, EMG2Exp, Exp2EMG
from training.encoder_runs import load_encoders
from training.errors import RunError

__all__ = ["encoder_crop", "export_demo_encoders", "training_method", "write_encoders_bundle"]


def encoder_crop(data_config: dict[str, Any], occlusion: str | None = "fridlund") -> dict[str, Any]:
    """The bundle's ``crop`` for encoders trained on ``data_config``'s crops: eifer mode, the
    encoders' input size, and the margin over BlazeFace's box: the training one for "detector"
    framing, else the one that frames a face as the training crops did
    (:mod:`training.crop_calibration`, measured on the held-out participants, under
    electrodes by default: the faces a live EIFER encoder reads), around the steady box moved to
    where the training crops' centre lies: the true face box does not wander with expression
    and pose as each detection does."""
    from training.crop_calibration import detector_framing
    from training.encoder_config import FaceDataConfig

    data = FaceDataConfig.model_validate(data_config)
    if data.framing != "box":  # trained on the pipeline's own crops: nothing to calibrate
        box = "steady" if data.framing == "steady" else "smoothed"
        return {
            "spec": {"mode": "eifer", "scale": data.crop_scale, "size": data.crop_size, "box": box},
            "framing": {"framing": data.framing, "camera_sizes": [list(c) for c in data.camera_sizes],
                        "occlusion": occlusion, "crop_scale": data.crop_scale},
        }  # fmt: skip
    framing = detector_framing(data.heldout_participants[:12], occlusion=occlusion)
    spec = {"mode": "eifer", "scale": framing.margin(data.crop_scale), "size": data.crop_size,
            "box": "steady", "offset": list(framing.box_offset())}  # fmt: skip
    return {
        "spec": spec,
        "framing": {**asdict(framing), "occlusion": occlusion, "crop_scale": data.crop_scale},
    }


def training_method(info: dict[str, Any]) -> str:
    """What trained a run's encoders, in words a bundle's reader needs: which faces, whether the
    truth was used on faces under electrodes (EIFER's phase 1 uses none there)."""
    config = info["config"]
    if info["kind"] == "phase1":
        return "EIFER's phase 1 (occlusion cycles, no truth under electrodes) from " + str(
            config.get("encoders", "")
        )
    if config.get("untrained"):
        return "UNTRAINED (seeded random)"
    views = {
        "free": "supervised with the synthetic truth on faces without electrodes",
        "occluded": "supervised with the synthetic truth on faces under electrodes (the upper "
        "bound (d) of the comparison, not EIFER's phase 1: real participants have no such truth)",
        "both": "supervised with the synthetic truth on faces with and without electrodes",
    }[config.get("views", "free")]
    return (
        f"{views}; {config.get('architecture', 'smirk')} encoder, {config['data']['crop_size']} px"
    )


def write_encoders_bundle(
    run: str | Path, out: str | Path, *, overwrite: bool = False, occlusion: str | None = "fridlund"
) -> Bundle:
    """Write a verified bundle holding the run's encoders; the run's provenance and held-out
    evaluation go into the manifest's ``training``, the crop follows :func:`encoder_crop`."""
    from streaming.pipeline.features import get_feature

    folder = Path(run)
    info_file = folder / "run.json"
    if not info_file.is_file():
        raise RunError(f"{info_file}: missing; not a run of `eifer train encoders|phase1`")
    info = json.loads(info_file.read_text())
    encoder, origin = load_encoders(folder)
    crop = encoder_crop(info["config"]["data"], occlusion)
    evaluation = (
        json.loads((folder / "eval.json").read_text()) if (folder / "eval.json").is_file() else {}
    )
    evaluation.pop("history", None)
    evaluation.pop("losses", None)
    torch.manual_seed(0)
    channels = default_emg_channels()
    dim = encoder.expression_dim
    return save_bundle(
        out, encoder.eval(), EMG2Exp(len(channels), dim, DEFAULT_HIDDEN).eval(),
        Exp2EMG(dim, len(channels), DEFAULT_HIDDEN).eval(),
        emg_channels=channels, feature=get_feature("low_latency"), trained=False,
        producer=f"training.encoder_bundle ({info['kind']} run {folder.name}, git "
        f"{info.get('git_commit', 'unknown')})",
        description=f"TRAINED encoders ({origin}); UNTRAINED MLPs until `eifer train mlp` "
        "with encoders_bundle",
        overwrite=overwrite,
        crop=crop["spec"],
        training={
            "phase": 1 if info["kind"] == "phase1" else 0,
            "encoders": info.get("provenance", ""),
            "encoders_trained": not info["config"].get("untrained", False),
            "mlps_trained": False,
            "config": info["config"],
            "git_commit": info.get("git_commit", "unknown"),
            "evaluation_heldout": evaluation,
            "crop_framing": crop["framing"],
            "mlps": "untrained (seeded)",
        },
    )  # fmt: skip


def export_demo_encoders(
    run: str | Path, out: str | Path, *, overwrite: bool = False,
    recipe: str = "",
) -> Path:  # fmt: skip
    """Copy a finished encoders run's encoders (float16: half the size, the demo's outputs
    change by < 1e-3) with their architecture and provenance into ``out``."""
    import shutil

    from safetensors.torch import save_file

    from eifer_models.demo_weights import PROVENANCE
    from streaming.errors import BundleError

    run, out = Path(run), Path(out)
    for name in ("run.json", "eval.json", "encoders.pt"):
        if not (run / name).is_file():
            raise BundleError(f"{run / name}: missing; not a finished encoders or phase-1 run")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise BundleError(f"{out}: folder exists and is not empty (pass overwrite)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    encoder, origin = load_encoders(run)
    info = json.loads((run / "run.json").read_text())
    evaluation = json.loads((run / "eval.json").read_text())
    data = info["config"]["data"]
    state = {k: v.detach().half().contiguous() for k, v in encoder.state_dict().items()}
    save_file(state, str(out / "encoders.safetensors"), metadata={"graph": "encoders"})
    (out / "encoders.json").write_text(json.dumps(encoder.config(), indent=2))
    provenance = {
        "what": "face encoders of the demo (the MLPs are in models/demo-mlp)",
        "run": run.name,
        "kind": info["kind"],
        "method": training_method(info),
        "origin": origin,
        "recipe": recipe,
        "git_commit": info.get("git_commit", "unknown"),
        "config": info["config"],
        "train_participant_seeds": data["train_participants"],
        "heldout_participant_seeds": data["heldout_participants"],
        "evaluation_heldout": {
            view: {
                k: evaluation[view][k]
                for k in ("mean_r", "per_component", "undefined")
                if k in evaluation[view]
            }
            for view in ("occluded", "free")
        },
        "crop": encoder_crop(data),
    }
    (out / PROVENANCE).write_text(json.dumps(provenance, indent=2))
    return out

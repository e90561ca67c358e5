"""A bundle with the trained encoders of an ``encoders`` or ``phase1`` run.

The MLPs in it are seeded and untrained (``trained: false`` in the manifest) until phase 2
replaces them: ``eifer train mlp --set encoders_bundle='"<this bundle>"'`` writes the bundle
with these encoders and trained EMG2Exp / Exp2EMG, the provenance of both and the evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from eifer_models.bundle import Bundle, default_emg_channels, save_bundle
from eifer_models.encoders import INPUT_SIZE
from eifer_models.mlp import DEFAULT_HIDDEN, EMG2Exp, Exp2EMG
from training.encoder_runs import load_encoders
from training.errors import RunError

__all__ = ["write_encoders_bundle"]


def write_encoders_bundle(run: str | Path, out: str | Path, *, overwrite: bool = False) -> Bundle:
    """Write a verified bundle holding the run's encoders; the run's provenance and held-out
    evaluation go into the manifest's ``training``."""
    from streaming.features import get_feature

    folder = Path(run)
    info_file = folder / "run.json"
    if not info_file.is_file():
        raise RunError(f"{info_file}: missing; not a run of `eifer train encoders|phase1`")
    info = json.loads(info_file.read_text())
    crop_size = int(info["config"]["data"]["crop_size"])
    if crop_size != INPUT_SIZE:
        raise RunError(
            f"{folder}: encoders trained on {crop_size}x{crop_size} crops; a bundle's encoders "
            f"take {INPUT_SIZE}x{INPUT_SIZE} (train with configs/training/encoders.toml)"
        )
    encoder, origin = load_encoders(folder)
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
        training={
            "phase": 1 if info["kind"] == "phase1" else 0,
            "encoders": info.get("provenance", ""),
            "config": info["config"],
            "git_commit": info.get("git_commit", "unknown"),
            "evaluation_heldout": evaluation,
            "mlps": "untrained (seeded)",
        },
    )  # fmt: skip

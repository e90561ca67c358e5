"""The encoders' trainers' own files and their evaluation of phi per component (the run
plumbing, folders, log, checkpoints and resume, is :mod:`training.runs`).

A run folder (``<output>/<run_name>``, never overwritten; ``--resume`` continues it)::

    run.json          kind, config, provenance, git commit, rank count
    train.log         the log
    last.pt           checkpoint after every epoch: weights, optimisers, schedules, epoch
    encoders.pt       the final encoders' state dict (``torch.load(weights_only=True)``)
    encoders.json     their architecture and sizes (:meth:`FaceEncoder.config`; none: SMIRK's)
    eval.json         Pearson r per driven phi component on held-out participants
    samples/          phase 1: sample images per epoch
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eifer_models.encoders import FaceEncoder, build_encoder
from training.errors import RunError
from training.metrics import driven_columns, pearson
from training.runs import RUN_FILE, Run, git_commit

__all__ = [
    "HOW_RENDERED",
    "crop_images",
    "encoder_phi",
    "load_encoders",
    "movement_scores",
    "phi_scores",
    "save_encoders",
    "write_run_info",
]

ENCODERS = "encoders.pt"
ENCODERS_CONFIG = "encoders.json"
# how the pairs are rendered, not which; which extra frames evaluate it, not what it learns:
# left out of the config hash (a config_hash ``ignore``)
HOW_RENDERED = {"data": {"render_workers", "movement_frames_per_participant"}}


def write_run_info(run: Run[Any], kind: str, provenance: str) -> None:
    """A new run's ``run.json``: what trained it, with which config, from which commit, on how
    many ranks (a run resumes with the rank count it started with)."""
    info = {"kind": kind, "config": run.config.model_dump(mode="json"), "provenance": provenance,
            "git_commit": git_commit(), "world_size": run.ctx.world_size}  # fmt: skip
    run.write_info(info)


def save_encoders(encoder: FaceEncoder, folder: Path) -> FaceEncoder:
    """The trained encoders on the CPU in eval mode, their state dict saved as ``encoders.pt``
    and their architecture as ``encoders.json``."""
    encoder = encoder.cpu().eval()
    torch.save(encoder.state_dict(), folder / ENCODERS)
    (folder / ENCODERS_CONFIG).write_text(json.dumps(encoder.config(), indent=2))
    return encoder


def load_encoders(source: str | Path) -> tuple[FaceEncoder, str]:
    """Encoders from a run folder (its ``encoders.pt``) or a ``.pt`` state dict (its
    architecture from the ``encoders.json`` beside it; none: SMIRK's); the second value says
    where they came from (for provenance)."""
    path = Path(source)
    file = path / ENCODERS if path.is_dir() else path
    if not file.is_file():
        raise RunError(f"{file}: missing; give a run folder of `eifer train encoders` or a .pt")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RunError(f"{file}: unreadable encoders ({type(exc).__name__}: {exc})") from None
    arch_file = file.parent / ENCODERS_CONFIG
    try:
        arch = json.loads(arch_file.read_text()) if arch_file.is_file() else {}
        encoder = build_encoder(arch)
    except (ValueError, TypeError) as exc:
        raise RunError(f"{arch_file}: not an encoder description ({exc})") from None
    try:
        encoder.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0:2]
        raise RunError(f"{file}: does not fit the encoders ({' '.join(first)})") from None
    origin = file
    info = file.parent / RUN_FILE
    if info.is_file():
        origin_text = json.loads(info.read_text()).get("provenance", "")
        return encoder, f"{origin} ({origin_text})"
    return encoder, str(origin)


def crop_images(crops: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 crops (n, S, S, 3) -> float images (n, 3, S, S) in [0, 1] on ``device``."""
    return torch.as_tensor(np.asarray(crops), device=device).permute(0, 3, 1, 2).float() / 255.0


@torch.no_grad()
def encoder_phi(
    encoder: FaceEncoder, crops: np.ndarray, device: torch.device, batch: int = 64
) -> np.ndarray:
    """phi (n, 55) of uint8 crops (n, S, S, 3), encoders in eval mode."""
    encoder.eval()
    out = []
    for start in range(0, len(crops), batch):
        out.append(encoder(crop_images(crops[start : start + batch], device)).phi.cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, encoder.expression_dim), np.float32)


def movement_scores(pred: np.ndarray, true: np.ndarray, movement: np.ndarray) -> dict[str, Any]:
    """:func:`phi_scores` within each movement's frames (the components that movement drives;
    across participants and intensities)."""
    return {
        str(name): phi_scores(pred[movement == name], true[movement == name])
        for name in dict.fromkeys(movement.tolist())
        if name
    }


def phi_scores(pred: np.ndarray, true: np.ndarray) -> dict[str, Any]:
    """Pearson r per driven phi component (the ones the muscle map moves), and their mean."""
    from simulation.participant.model import PHI_LABELS

    columns = driven_columns(true)
    r = pearson(pred, true)
    driven = np.flatnonzero(columns)
    # a driven component whose prediction is constant (r undefined) scores 0: a dead output
    # must lower the mean, not drop out of it; ``undefined`` names them
    undefined = [PHI_LABELS[i] for i in driven if not np.isfinite(r[i])]
    per = {PHI_LABELS[i]: round(float(r[i]), 4) if np.isfinite(r[i]) else 0.0 for i in driven}
    return {
        "mean_r": round(float(np.mean(list(per.values()))), 4) if per else None,
        "per_component": per,
        "undefined": undefined,
        "frames": len(true),
    }

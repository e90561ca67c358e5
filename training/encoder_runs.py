"""Shared by the encoders' trainers: run folders, checkpoints, evaluation of phi per component.

A run folder (``<output>/<run_name>``, never overwritten; ``--resume`` continues it)::

    run.json          kind, config, git commit, start checkpoint, status
    train.log         the log
    last.pt           checkpoint after every epoch: weights, optimisers, schedules, epoch
    encoders.pt       the final encoders' state dict (``torch.load(weights_only=True)``)
    encoders.json     their architecture and sizes (:meth:`FaceEncoder.config`; none: SMIRK's)
    eval.json         Pearson r per driven phi component on held-out participants
    samples/          phase 1: sample images per epoch
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from pydantic import BaseModel

from eifer_models.encoders import FaceEncoder, build_encoder
from training.distributed import DistContext
from training.errors import RunError
from training.metrics import driven_columns, pearson
from training.run_folder import new_run

__all__ = [
    "RUN_FILE",
    "config_hash",
    "encoder_phi",
    "load_checkpoint",
    "load_encoders",
    "movement_scores",
    "new_run",
    "open_run",
    "phi_scores",
    "pick_device",
    "run_config",
    "run_log",
    "save_checkpoint",
    "save_encoders",
    "write_run_info",
]

log = logging.getLogger(__name__)
CHECKPOINT = "last.pt"
ENCODERS = "encoders.pt"
ENCODERS_CONFIG = "encoders.json"
RUN_FILE = "run.json"
ConfigT = TypeVar("ConfigT", bound=BaseModel)


def run_config(
    config: ConfigT | None, resume: str | Path | None, config_type: type[ConfigT], command: str
) -> ConfigT:
    """The run's config: ``resume``'s (from its ``run.json``), else ``config``. ``command``
    (``encoders``, ``phase1``) names the trainer in errors."""
    if resume is not None:
        info_file = Path(resume) / RUN_FILE
        if not info_file.is_file():
            raise RunError(f"{info_file}: missing; not a run of `eifer train {command}`")
        return config_type.model_validate(json.loads(info_file.read_text())["config"])
    if config is None:
        raise RunError("give a config or a run folder to resume")
    return config


def open_run(ctx: DistContext, config: BaseModel, resume: str | Path | None) -> Path:
    """``resume``'s folder, else a new run folder made by rank 0 and shared with every rank."""
    if resume is not None:
        return Path(resume)
    made = str(new_run(config.output, config.run_name)) if ctx.is_main else None  # type: ignore[attr-defined]
    return Path(ctx.broadcast(made))


def write_run_info(
    folder: Path, kind: str, config: BaseModel, provenance: str, world_size: int = 1
) -> None:
    """A new run's ``run.json``: what trained it, with which config, from which commit, on how
    many ranks (a run resumes with the rank count it started with)."""
    from training.mlp import git_commit

    info = {"kind": kind, "config": config.model_dump(mode="json"), "provenance": provenance,
            "git_commit": git_commit(), "world_size": world_size}  # fmt: skip
    (folder / RUN_FILE).write_text(json.dumps(info, indent=2))


def save_encoders(encoder: FaceEncoder, folder: Path) -> FaceEncoder:
    """The trained encoders on the CPU in eval mode, their state dict saved as ``encoders.pt``
    and their architecture as ``encoders.json``."""
    encoder = encoder.cpu().eval()
    torch.save(encoder.state_dict(), folder / ENCODERS)
    (folder / ENCODERS_CONFIG).write_text(json.dumps(encoder.config(), indent=2))
    return encoder


def pick_device(device: str) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RunError("device cuda asked for, but torch sees no CUDA device")
    return torch.device(device)


def config_hash(config: Any) -> str:
    data = config.model_dump(mode="json")
    for key in ("output", "run_name", "device", "threads"):
        data.pop(key, None)
    # how the pairs are rendered, not which; which extra frames evaluate it, not what it learns
    for key in ("render_workers", "movement_frames_per_participant"):
        data.get("data", {}).pop(key, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@contextmanager
def run_log(folder: Path) -> Iterator[None]:
    """The run's ``train.log`` receives the trainer's log while the run is in this block."""
    handler = logging.FileHandler(folder / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    logger = logging.getLogger("training")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, expected_hash: str) -> dict[str, Any]:
    """A checkpoint of this config; a truncated/foreign file or another config is a RunError."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/EOFError for bad files
        raise RunError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or "epoch" not in state:
        raise RunError(f"{path}: not a checkpoint of the encoders' trainer")
    if state.get("config_hash") != expected_hash:
        raise RunError(f"{path}: made with another config; not resumed")
    return state


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
    info = file.parent / "run.json"
    if info.is_file():
        origin_text = json.loads(info.read_text()).get("provenance", "")
        return encoder, f"{origin} ({origin_text})"
    return encoder, str(origin)


@torch.no_grad()
def encoder_phi(
    encoder: FaceEncoder, crops: np.ndarray, device: torch.device, batch: int = 64
) -> np.ndarray:
    """phi (n, 55) of uint8 crops (n, S, S, 3), encoders in eval mode."""
    encoder.eval()
    out = []
    for start in range(0, len(crops), batch):
        x = torch.as_tensor(np.asarray(crops[start : start + batch])).to(device)
        x = x.permute(0, 3, 1, 2).float() / 255.0
        out.append(encoder(x).phi.cpu().numpy())
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

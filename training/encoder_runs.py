"""Shared by the encoders' trainers: run folders, checkpoints, evaluation of phi per component.

A run folder (``<output>/<run_name>``, never overwritten; ``--resume`` continues it)::

    run.json          kind, config, git commit, start checkpoint, status
    train.log         the log
    last.pt           checkpoint after every epoch: weights, optimisers, schedules, epoch
    encoders.pt       the final encoders' state dict (``torch.load(weights_only=True)``)
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
from typing import Any

import numpy as np
import torch

from eifer_models.encoders import SmirkEncoder
from training.errors import RunError
from training.metrics import driven_columns, pearson
from training.run_folder import new_run

__all__ = [
    "config_hash",
    "encoder_phi",
    "load_checkpoint",
    "load_encoders",
    "new_run",
    "phi_scores",
    "pick_device",
    "run_log",
    "save_checkpoint",
]

log = logging.getLogger(__name__)
CHECKPOINT = "last.pt"
ENCODERS = "encoders.pt"


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
    data.get("data", {}).pop("render_workers", None)  # how the pairs are rendered, not which
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


def load_encoders(source: str | Path) -> tuple[SmirkEncoder, str]:
    """Encoders from a run folder (its ``encoders.pt``) or a ``.pt`` state dict; the second
    value says where they came from (for provenance)."""
    path = Path(source)
    file = path / ENCODERS if path.is_dir() else path
    if not file.is_file():
        raise RunError(f"{file}: missing; give a run folder of `eifer train encoders` or a .pt")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RunError(f"{file}: unreadable encoders ({type(exc).__name__}: {exc})") from None
    encoder = SmirkEncoder()
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
    encoder: SmirkEncoder, crops: np.ndarray, device: torch.device, batch: int = 16
) -> np.ndarray:
    """phi (n, 55) of uint8 crops (n, S, S, 3), encoders in eval mode."""
    encoder.eval()
    out = []
    for start in range(0, len(crops), batch):
        x = torch.as_tensor(np.asarray(crops[start : start + batch])).to(device)
        x = x.permute(0, 3, 1, 2).float() / 255.0
        out.append(encoder(x).phi.cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, encoder.expression_dim), np.float32)


def phi_scores(pred: np.ndarray, true: np.ndarray) -> dict[str, Any]:
    """Pearson r per driven phi component (the ones the muscle map moves), and their mean."""
    from streaming.simulation.participant.model import PHI_LABELS

    columns = driven_columns(true)
    r = pearson(pred, true)
    per = {PHI_LABELS[i]: round(float(r[i]), 4) for i in np.flatnonzero(columns)}
    values = [v for v in per.values() if np.isfinite(v)]
    return {
        "mean_r": round(float(np.mean(values)), 4) if values else None,
        "per_component": per,
        "frames": len(true),
    }

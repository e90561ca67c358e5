"""The phase-2 training loop: EMG2Exp and Exp2EMG on the same batches, checkpointed, resumable,
data-parallel under torchrun.

Determinism: the order of epoch ``e`` is ``randperm`` from a generator seeded with
``(seed, fold, e)``, so a run resumed from a checkpoint (weights + Adam state + epoch) sees the
same batches as an uninterrupted one and ends with bit-identical weights. Data parallel: every
rank takes the same global batch of ``batch_size`` frames and computes the loss of its slice
scaled so that DDP's gradient average equals the single-process gradient of the whole batch (the
paper's batch of 512 stays the batch, whatever the number of ranks).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from eifer_models.mlp import EMG2Exp, Exp2EMG
from training.config import MlpConfig
from training.distributed import DistContext
from training.runs import CHECKPOINT, load_checkpoint, save_checkpoint

__all__ = ["FoldModels", "train_fold"]

log = logging.getLogger(__name__)


class FoldModels:
    """The two MLPs of one fold with their Adam optimisers (paper: lr 1e-3, no schedule)."""

    def __init__(self, config: MlpConfig, n_emg: int, dim: int, seed: int) -> None:
        torch.manual_seed(seed)
        self.emg2exp = EMG2Exp(n_emg, dim, config.hidden)
        self.exp2emg = Exp2EMG(dim, n_emg, config.hidden)
        self.opt_e = torch.optim.Adam(self.emg2exp.parameters(), lr=config.lr)
        self.opt_x = torch.optim.Adam(self.exp2emg.parameters(), lr=config.lr)
        self.epoch = 0  # epochs completed
        self.losses: list[tuple[float, float]] = []

    def state(self, config_hash: str) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "config_hash": config_hash,
            "emg2exp": self.emg2exp.state_dict(),
            "exp2emg": self.exp2emg.state_dict(),
            "opt_e": self.opt_e.state_dict(),
            "opt_x": self.opt_x.state_dict(),
            "losses": torch.tensor(self.losses, dtype=torch.float64).reshape(-1, 2),
        }

    def load(self, state: dict[str, Any]) -> None:
        self.emg2exp.load_state_dict(state["emg2exp"])
        self.exp2emg.load_state_dict(state["exp2emg"])
        self.opt_e.load_state_dict(state["opt_e"])
        self.opt_x.load_state_dict(state["opt_x"])
        self.epoch = int(state["epoch"])
        self.losses = [tuple(map(float, row)) for row in state["losses"].tolist()]  # type: ignore[misc]


def _epoch_order(n: int, seed: int, fold: int, epoch: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(
        int(np.random.SeedSequence([seed, fold, epoch]).generate_state(1)[0])
    )
    return torch.randperm(n, generator=generator)


def train_fold(
    config: MlpConfig,
    fold: int,
    x_emg: np.ndarray,
    phi: np.ndarray,
    checkpoint_dir: Path | None,
    dist_ctx: DistContext,
    config_hash: str,
    *,
    stop_after_epoch: int | None = None,
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> FoldModels:
    """Train both MLPs on ``x_emg`` (n, 22, normalised) <-> ``phi`` (n, dim) for
    ``config.epochs``; resumes from ``checkpoint_dir/last.pt`` when it is there.
    ``stop_after_epoch`` ends early (after its checkpoint): for tests of resume."""
    models = FoldModels(config, x_emg.shape[1], phi.shape[1], config.seed * 1000 + fold)
    checkpoint = checkpoint_dir / CHECKPOINT if checkpoint_dir is not None else None
    state = None
    if checkpoint is not None:
        state = load_checkpoint(
            checkpoint, config_hash, "mlp", made_with="another config or training set"
        )
    if state is not None:
        models.load(state)
        log.info("fold %d: resumed at epoch %d from %s", fold, models.epoch, checkpoint)
    device = dist_ctx.device
    e2x: nn.Module = models.emg2exp.to(device)
    x2e: nn.Module = models.exp2emg.to(device)
    if dist_ctx.enabled:
        e2x = nn.parallel.DistributedDataParallel(e2x)
        x2e = nn.parallel.DistributedDataParallel(x2e)
    x_all = torch.as_tensor(x_emg, dtype=torch.float32, device=device)
    y_all = torch.as_tensor(phi, dtype=torch.float32, device=device)
    n = len(x_all)
    world, rank = dist_ctx.world_size, dist_ctx.rank
    while models.epoch < config.epochs:
        order = _epoch_order(n, config.seed, fold, models.epoch).to(device)
        total_e = total_x = 0.0
        for start in range(0, n, config.batch_size):
            batch = order[start : start + config.batch_size]
            mine = batch[rank::world]
            scale = world / (len(batch) * 1.0)
            x, y = x_all[mine], y_all[mine]
            loss_e = ((e2x(x) - y) ** 2).mean(dim=1).sum() * scale
            loss_x = ((x2e(y) - x) ** 2).mean(dim=1).sum() * scale
            models.opt_e.zero_grad(set_to_none=True)
            models.opt_x.zero_grad(set_to_none=True)
            loss_e.backward()
            loss_x.backward()
            models.opt_e.step()
            models.opt_x.step()
            total_e += float(loss_e.detach()) * len(batch) / world
            total_x += float(loss_x.detach()) * len(batch) / world
        models.epoch += 1
        models.losses.append((total_e / n, total_x / n))  # this rank's share, batch-weighted
        if on_epoch is not None:
            on_epoch(models.epoch, total_e / n, total_x / n)
        last = models.epoch == config.epochs or models.epoch == stop_after_epoch
        if (
            checkpoint is not None
            and dist_ctx.is_main
            and (last or models.epoch % config.checkpoint_every == 0)
        ):
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            save_checkpoint(checkpoint, models.state(config_hash))
        if models.epoch == stop_after_epoch:
            break
    dist_ctx.barrier()
    models.emg2exp.cpu().eval()
    models.exp2emg.cpu().eval()
    return models

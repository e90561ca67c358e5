"""Launched by ``torchrun`` in the encoders' tests (not a test module).

``encoders|phase1 CONFIG.json STOP``: run a trainer on every rank with ``stop_after_epoch``,
which the CLI does not offer (resume under torchrun). ``gradients CONFIG.json OUT.json``: one
supervised step's gradients, split over the ranks as the trainer splits a batch (global
BatchNorm, averaged gradients), and the same batch's in one process, both against the exact
(float64, one process) gradient; rank 0 writes, per parameter, both relative errors and the
size of the gradient.

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/training/ranks.py ...
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import cast

import numpy as np
import torch

from eifer_models.encoders import SmirkEncoder
from training.distributed import init_distributed, sync_batchnorm
from training.encoder_config import EncodersConfig, Phase1Config
from training.encoder_runs import crop_images
from training.encoders import (
    TargetStatistics,
    _targets,
    load_pairs,
    run_encoders,
    supervised_loss,
)
from training.phase1 import run_phase1


def gradients(config: EncodersConfig, out: Path) -> None:
    ctx = init_distributed("cpu")
    if ctx.is_main:  # one rank renders and caches, as the trainer does
        load_pairs(config.data)
    ctx.barrier()
    train, _ = load_pairs(config.data)
    stats = TargetStatistics.of(train)
    rows = np.arange(min(len(train), config.batch_size))
    cpu = torch.device("cpu")
    torch.manual_seed(config.seed)
    one = SmirkEncoder().train()
    ranks = cast(SmirkEncoder, sync_batchnorm(copy.deepcopy(one), cpu).train())
    mine = rows[ctx.rank :: ctx.world_size]
    loss = supervised_loss(
        ranks, crop_images(train.free[mine], cpu), _targets(train, mine, cpu), config, stats
    )
    (loss.sum() * ctx.world_size / len(rows)).backward()
    ctx.average_gradients(ranks.parameters())
    if ctx.is_main:
        images, targets = crop_images(train.free[rows], cpu), _targets(train, rows, cpu)
        supervised_loss(one, images, targets, config, stats).mean().backward()
        exact = copy.deepcopy(one).double()
        exact.zero_grad()
        t64 = {k: v.double() for k, v in targets.items()}
        stats64 = TargetStatistics(
            {k: v.double() for k, v in stats.mean.items()},
            {k: v.double() for k, v in stats.scale.items()},
        )
        supervised_loss(exact, images.double(), t64, config, stats64).mean().backward()
        result = {}
        for (name, a), b, c in zip(
            ranks.named_parameters(), one.parameters(), exact.parameters(), strict=True
        ):
            assert a.grad is not None and b.grad is not None and c.grad is not None
            norm = c.grad.norm().clamp_min(1e-30)
            result[name] = {
                "ranks_error": float((a.grad.double() - c.grad).norm() / norm),
                "one_process_error": float((b.grad.double() - c.grad).norm() / norm),
                "max_abs": float(c.grad.abs().max()),
            }
        out.write_text(json.dumps(result))
    ctx.close()


if __name__ == "__main__":
    kind, values = sys.argv[1], json.loads(Path(sys.argv[2]).read_text())
    if kind == "gradients":
        gradients(EncodersConfig(**values), Path(sys.argv[3]))
    elif kind == "encoders":
        run_encoders(EncodersConfig(**values), stop_after_epoch=int(sys.argv[3]), progress=False)
    else:
        run_phase1(Phase1Config(**values), stop_after_epoch=int(sys.argv[3]), progress=False)

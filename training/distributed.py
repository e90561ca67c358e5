"""torchrun / DistributedDataParallel context: one process per rank, gloo on CPU, NCCL on GPU.

Started by ``torchrun --nproc-per-node N -m nodes.cli train mlp|encoders|phase1 ...``, a process
sees ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in its environment (torch.distributed elastic
launch). Without them the trainer runs as one process and nothing here touches
``torch.distributed``.

For the encoders: :meth:`DistContext.average_gradients` (one bucketed all-reduce of every
gradient, what DDP does after ``backward``; used instead of the DDP wrapper because phase 1 runs
each generator twice per step and unfreezes an encoder between stages) and
:func:`sync_batchnorm`, BatchNorm whose batch statistics span all ranks, so that N processes
with a slice each of a global batch train the same model as one process with the whole batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["CrossRankBatchNorm2d", "DistContext", "init_distributed", "sync_batchnorm"]


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (a run folder name, say)."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def average_gradients(self, params: Iterable[nn.Parameter]) -> None:
        """Replace each gradient by its mean over the ranks (one flat all-reduce). Every rank
        must pass parameters with gradients in the same order (same graph on every rank)."""
        if not self.enabled:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """The mean over ranks of each value (same keys on every rank): logged losses."""
        if not self.enabled or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)  # on the rank's device: NCCL reduces CUDA tensors only
        return {k: float(v) / self.world_size for k, v in zip(keys, t.tolist(), strict=True)}

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device: str = "auto") -> DistContext:
    """The context of this process: torchrun's ranks when launched by it, else one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if world <= 1:
        return DistContext(device=torch.device("cuda" if use_cuda else "cpu"))
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistContext(rank, world, torch.device(f"cuda:{local}" if use_cuda else "cpu"))


class _AllReduceSum(torch.autograd.Function):
    """Sum over the ranks whose backward sums the gradients over the ranks (every rank's loss
    depends on every rank's input through the sum)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        g = grad.clone()
        dist.all_reduce(g)
        return g


class CrossRankBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics are those of the global batch (all ranks),
    for CPU/gloo where ``nn.SyncBatchNorm`` is not implemented. The sums and then the squared
    deviations are all-reduced by a differentiable all-reduce, so the backward pass carries
    every rank's loss to every rank's inputs, as one process would. Same
    parameters and buffers as ``BatchNorm2d`` (state dicts load either way)."""

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        c = x.shape[1]
        count = torch.tensor([x.numel() / max(1, c)], dtype=x.dtype, device=x.device)
        # two passes (mean, then squared deviations), as one process's batch norm: the one-pass
        # E[x^2] - mean^2 loses the variance to cancellation on small late-layer maps
        stats = _AllReduceSum.apply(torch.cat([x.sum((0, 2, 3)), count]))
        n = stats[-1]
        mean = stats[:c] / n
        centred = x - mean[None, :, None, None]
        var = _AllReduceSum.apply((centred * centred).sum((0, 2, 3))) / n
        if self.track_running_stats and self.running_mean is not None:
            assert self.running_var is not None and self.num_batches_tracked is not None
            with torch.no_grad():
                self.num_batches_tracked += 1
                factor = (
                    self.momentum
                    if self.momentum is not None
                    else 1.0 / float(self.num_batches_tracked)
                )
                unbiased = var.detach() * (n / (n - 1).clamp_min(1.0))
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
        y = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y


def sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` with every BatchNorm2d computing global-batch statistics across the ranks:
    ``nn.SyncBatchNorm`` on CUDA, :class:`CrossRankBatchNorm2d` elsewhere. The parameters are
    the same objects (build optimisers after or before, either works)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert(module)


def _convert(module: nn.Module) -> nn.Module:
    out = module
    if type(module) is nn.BatchNorm2d:
        out = CrossRankBatchNorm2d(
            module.num_features, module.eps, module.momentum, module.affine,
            module.track_running_stats, device=None,
        )  # fmt: skip
        if module.affine:
            out.weight = module.weight
            out.bias = module.bias
        out.running_mean = module.running_mean
        out.running_var = module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _convert(child))
    return out

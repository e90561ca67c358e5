"""A compact conv-BN-ReLU face encoder that learns from nothing on a CPU.

SMIRK's MobileNetV3 encoders (:class:`~eifer_models.encoders.SmirkEncoder`) are made to start
from SMIRK's pre-trained weights; trained from random weights on synthetic faces they stall on
the eyes (issue 23: held-out free faces r 0.19-0.29 after 3,000 steps at 64 px, every mouth
and brow component <= 0.07, the same at 224 px). This network is a plain VGG-style stack
(Simonyan & Zisserman 2015) with batch normalisation (Ioffe & Szegedy 2015): four stages of two
3x3 convolutions, each stage halving the resolution and doubling the width, global average
pooling and a linear head. As in SMIRK, expression has a trunk of its own, so it learns from the
phi loss alone (a shared trunk spent itself on the head pose, which changes a crop 4-20x more
than a muscle does: measured, phi stayed at its mean); pose + camera and shape share a narrower
second trunk. Measured on the CPU (issue 23): a hidden fully connected layer over a 4x4 grid
memorised identities and, at lr 1e-3, died (constant outputs); pooled + linear at lr 3e-4 did
not.

Outputs are de-standardised inside the model (``out_mean + out_scale * head``): a trainer sets
the statistics of its training targets once (:meth:`CompactEncoder.set_output_statistics`), so
every head output starts at the targets' scale whatever a component's variance (jaw_x varies
~100x less than a brow), and the exported graph gives FLAME units.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eifer_models.face_encoder import N_EXP, N_EYELID, N_JAW, N_SHAPE, FaceEncoder

__all__ = ["CompactEncoder"]

N_POSE = 6  # rotation (axis-angle, 3) + weak-perspective camera (s, tx, ty)


def _conv_bn_relu(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)
    )


def _trunk(width: int) -> nn.Sequential:
    """Four stages of two conv-BN-ReLU (the first strided), widths 1, 2, 4, 8 x ``width``."""
    layers: list[nn.Module] = []
    c_in = 3
    for stage in range(4):
        c_out = width * 2**stage
        layers += [_conv_bn_relu(c_in, c_out, 2), _conv_bn_relu(c_out, c_out, 1)]
        c_in = c_out
    return nn.Sequential(*layers)


class CompactEncoder(FaceEncoder):
    """Face crop (N, 3, S, S) -> pose + camera, shape, phi (module doc). About 1.5 M parameters
    at ``width`` 32.

    Parameters
    ----------
    n_exp, n_shape : int
        FLAME expression and identity components (SMIRK: 50, 300).
    input_size : int
        Side of the square crop it is trained on (any size divisible by 16 runs).
    width : int
        Channels of the expression trunk's first stage (the stages have 1, 2, 4, 8 times as
        many); the pose and shape trunk has half as many.
    """

    architecture = "compact"

    def __init__(
        self, n_exp: int = N_EXP, n_shape: int = N_SHAPE, input_size: int = 64, width: int = 32
    ) -> None:
        super().__init__()
        if input_size % 16:
            raise ValueError(f"input_size {input_size}: must be a multiple of 16")
        self.n_exp, self.n_shape, self.input_size, self.width = n_exp, n_shape, input_size, width
        self.expression_trunk = _trunk(width)
        self.geometry_trunk = _trunk(max(1, width // 2))
        self.sizes = (N_POSE, n_shape, n_exp + N_EYELID + N_JAW)
        self.expression_head = nn.Linear(8 * width, self.sizes[2])
        self.geometry_head = nn.Linear(8 * max(1, width // 2), N_POSE + n_shape)
        for head in (self.expression_head, self.geometry_head):
            with torch.no_grad():  # outputs start at the targets' mean (module doc)
                head.weight.mul_(0.1)
                head.bias.zero_()
        self.out_mean: Tensor
        self.out_scale: Tensor
        self.register_buffer("out_mean", torch.zeros(sum(self.sizes)))
        self.register_buffer("out_scale", torch.ones(sum(self.sizes)))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "width": self.width}

    @torch.no_grad()
    def set_output_statistics(self, mean: Tensor, scale: Tensor) -> None:
        """Mean and scale of the training targets, in head order (pose 6, shape, phi)."""
        if mean.shape != self.out_mean.shape or scale.shape != self.out_scale.shape:
            raise ValueError(f"statistics need {tuple(self.out_mean.shape)} values")
        if not (torch.isfinite(mean).all() and torch.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("statistics must be finite, scales positive")
        self.out_mean.copy_(mean)
        self.out_scale.copy_(scale)

    def expression_modules(self) -> list[nn.Module]:
        return [self.expression_trunk, self.expression_head]

    def raw(self, img: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        pooled = lambda trunk: F.adaptive_avg_pool2d(trunk(img), 1).flatten(1)  # noqa: E731
        head = torch.cat(
            [self.geometry_head(pooled(self.geometry_trunk)),
             self.expression_head(pooled(self.expression_trunk))], dim=1,
        )  # fmt: skip
        pose, shape, phi = (self.out_mean + self.out_scale * head).split(self.sizes, dim=1)
        return pose, shape, phi

"""SMIRK's triple encoder: face crop -> FLAME pose/camera, shape and expression parameters.

Layout, head activations and initialisation follow SMIRK (Retsinas et al., CVPR 2024,
``src/smirk_encoder.py``; research note eifer_smirk.md section 1), which EIFER (Buechner et al.,
CVPR 2025) reuses:

- pose: ``tf_mobilenetv3_small_minimal_100`` -> Linear(576, 6) = rotation (axis-angle, 3) and
  weak-perspective camera (s, tx, ty), unbounded;
- shape: ``tf_mobilenetv3_large_minimal_100`` -> Linear(960, 300), unbounded;
- expression: ``tf_mobilenetv3_large_minimal_100`` -> Linear(960, n_exp + 5), sliced in this
  order: expression (n_exp, unbounded), eyelids (2, clamped to [0, 1]), jaw (3: ReLU on the
  opening, the two other angles clamped to +-0.2 rad).

Input: RGB in [0, 1], (N, 3, 224, 224), no mean/std normalisation (SMIRK ``demo.py``). Module
names match SMIRK's so checkpoints load key for key (see :mod:`eifer_models.checkpoints`).

Every encoder architecture (:data:`ARCHITECTURES`: ``smirk`` here, ``compact`` in
:mod:`eifer_models.compact_encoder`) is a :class:`~eifer_models.face_encoder.FaceEncoder`
(the interface, its constants and :class:`FlameParams`, re-exported here);
:func:`build_encoder` rebuilds one from a manifest's ``config``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eifer_models.compact_encoder import CompactEncoder
from eifer_models.face_encoder import (
    N_EXP,
    N_EYELID,
    N_JAW,
    N_SHAPE,
    FaceEncoder,
    FlameParams,
    split_expression_head,
)
from eifer_models.mobilenetv3 import create_backbone

__all__ = [
    "ARCHITECTURES",
    "INPUT_SIZE",
    "N_EXP",
    "N_SHAPE",
    "ExpressionEncoder",
    "FaceEncoder",
    "FlameParams",
    "PoseEncoder",
    "ShapeEncoder",
    "SmirkEncoder",
    "build_encoder",
    "split_expression_head",
]

INPUT_SIZE = 224  # SMIRK's crop size


def _pooled(backbone: nn.Module, img: Tensor) -> Tensor:
    return F.adaptive_avg_pool2d(backbone(img), 1).flatten(1)


class PoseEncoder(nn.Module):
    """Small backbone -> 6 raw values (rotation 3, camera 3); camera scale starts at 7."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = create_backbone("tf_mobilenetv3_small_minimal_100")
        head = nn.Linear(self.encoder.num_features, 6)
        self.pose_cam_layers = nn.Sequential(head)
        with torch.no_grad():  # SMIRK init_weights
            head.weight.mul_(0.001)
            head.bias.mul_(0.001)
            head.weight[3].zero_()
            head.bias[3] = 7.0

    def forward(self, img: Tensor) -> Tensor:
        return self.pose_cam_layers(_pooled(self.encoder, img))


class ShapeEncoder(nn.Module):
    """Large backbone -> n_shape identity coefficients (head initialised to zero as in SMIRK)."""

    def __init__(self, n_shape: int = N_SHAPE) -> None:
        super().__init__()
        self.encoder = create_backbone("tf_mobilenetv3_large_minimal_100")
        head = nn.Linear(self.encoder.num_features, n_shape)
        self.shape_layers = nn.Sequential(head)
        with torch.no_grad():
            head.weight.zero_()
            head.bias.zero_()

    def forward(self, img: Tensor) -> Tensor:
        return self.shape_layers(_pooled(self.encoder, img))


class ExpressionEncoder(nn.Module):
    """Large backbone -> raw n_exp + 5 head (activations applied by :func:`split_expression_head`)."""

    def __init__(self, n_exp: int = N_EXP) -> None:
        super().__init__()
        self.n_exp = n_exp
        self.encoder = create_backbone("tf_mobilenetv3_large_minimal_100")
        head = nn.Linear(self.encoder.num_features, n_exp + N_EYELID + N_JAW)
        self.expression_layers = nn.Sequential(head)
        with torch.no_grad():
            head.weight.mul_(0.1)
            head.bias.mul_(0.1)

    def forward(self, img: Tensor) -> Tensor:
        return self.expression_layers(_pooled(self.encoder, img))


class SmirkEncoder(FaceEncoder):
    """The three encoders; ``forward`` gives :class:`FlameParams`, ``forward_tensors`` the
    (pose (N, 6), shape (N, n_shape), phi (N, n_exp + 5)) triple that is exported to ONNX.
    ``input_size`` is SMIRK's 224 (the backbones pool globally, so other sizes run, but
    SMIRK's weights were trained on 224)."""

    architecture = "smirk"

    def __init__(self, n_exp: int = N_EXP, n_shape: int = N_SHAPE, input_size: int = INPUT_SIZE) -> None:  # fmt: skip
        super().__init__()
        self.n_exp = n_exp
        self.n_shape = n_shape
        self.input_size = input_size
        self.pose_encoder = PoseEncoder()
        self.shape_encoder = ShapeEncoder(n_shape)
        self.expression_encoder = ExpressionEncoder(n_exp)

    def raw(self, img: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.pose_encoder(img), self.shape_encoder(img), self.expression_encoder(img)

    def expression_modules(self) -> list[nn.Module]:
        return [self.expression_encoder]


def build_encoder(config: dict[str, Any]) -> FaceEncoder:
    """The encoder a manifest's ``graphs.encoders.config`` describes (no ``architecture``: a
    bundle written before there was a choice, SMIRK's)."""
    kwargs = dict(config)
    architecture = kwargs.pop("architecture", "smirk")
    classes: dict[str, type[FaceEncoder]] = {"smirk": SmirkEncoder, "compact": CompactEncoder}
    if architecture not in classes:
        raise ValueError(f"unknown encoder architecture {architecture!r} (have {sorted(classes)})")
    return classes[architecture](**kwargs)


ARCHITECTURES = ("smirk", "compact")

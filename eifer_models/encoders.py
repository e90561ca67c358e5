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
:mod:`eifer_models.compact_encoder`) is a :class:`FaceEncoder`: ``raw`` gives the unbounded head
outputs (what a trainer's loss reads: a clamp before the loss has zero gradient wherever the
raw value is outside the range), ``forward`` applies SMIRK's activations (inference), and
``config`` is what a bundle's manifest stores to rebuild it (:func:`build_encoder`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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

INPUT_SIZE = 224
N_EXP = 50  # FLAME expression components SMIRK predicts
N_SHAPE = 300  # FLAME identity components
N_EYELID = 2
N_JAW = 3
JAW_SIDE_LIMIT_RAD = 0.2  # SMIRK clamps the jaw's non-opening rotations to +-0.2


@dataclass(frozen=True)
class FlameParams:
    """FLAME parameters of a batch, as SMIRK names them (all (N, k) tensors)."""

    pose_params: Tensor  # (N, 3) global rotation, axis-angle
    cam: Tensor  # (N, 3) weak-perspective s, tx, ty
    shape_params: Tensor  # (N, n_shape)
    expression_params: Tensor  # (N, n_exp)
    eyelid_params: Tensor  # (N, 2) in [0, 1]
    jaw_params: Tensor  # (N, 3) axis-angle

    @property
    def phi(self) -> Tensor:
        """EIFER's expression vector: expression, eyelids, jaw (N, n_exp + 5)."""
        return torch.cat([self.expression_params, self.eyelid_params, self.jaw_params], dim=1)

    @property
    def pose(self) -> Tensor:
        """Rotation and camera (N, 6), the bus ``pose`` field."""
        return torch.cat([self.pose_params, self.cam], dim=1)


def split_expression_head(out: Tensor, n_exp: int = N_EXP) -> tuple[Tensor, Tensor, Tensor]:
    """Apply SMIRK's activations to the raw expression head output (N, n_exp + 5)."""
    expression = out[:, :n_exp]
    eyelid = out[:, n_exp : n_exp + N_EYELID].clamp(0.0, 1.0)
    jaw_open = F.relu(out[:, n_exp + N_EYELID : n_exp + N_EYELID + 1])
    jaw_side = out[:, n_exp + N_EYELID + 1 : n_exp + N_EYELID + N_JAW].clamp(
        -JAW_SIDE_LIMIT_RAD, JAW_SIDE_LIMIT_RAD
    )
    return expression, eyelid, torch.cat([jaw_open, jaw_side], dim=1)


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


class FaceEncoder(nn.Module):
    """Face crop (N, 3, S, S) RGB in [0, 1] -> FLAME parameters; subclasses give :meth:`raw`."""

    architecture = ""
    n_exp: int
    n_shape: int
    input_size: int

    @property
    def expression_dim(self) -> int:
        return self.n_exp + N_EYELID + N_JAW

    def raw(self, img: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Unbounded head outputs: pose + camera (N, 6), shape (N, n_shape), phi (N, n_exp + 5)
        before the eyelid and jaw activations."""
        raise NotImplementedError

    def expression_modules(self) -> list[nn.Module]:
        """The modules that compute phi alone (SMIRK's expression encoder; the compact
        encoder's expression trunk and head): what phase 1 fine-tunes by default."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Constructor arguments plus ``architecture``: a manifest rebuilds it from these."""
        return {"architecture": self.architecture, "n_exp": self.n_exp, "n_shape": self.n_shape,
                "input_size": self.input_size}  # fmt: skip

    def forward(self, img: Tensor) -> FlameParams:
        pose_cam, shape, phi_raw = self.raw(img)
        expression, eyelid, jaw = split_expression_head(phi_raw, self.n_exp)
        return FlameParams(
            pose_params=pose_cam[:, :3],
            cam=pose_cam[:, 3:],
            shape_params=shape,
            expression_params=expression,
            eyelid_params=eyelid,
            jaw_params=jaw,
        )

    def forward_tensors(self, img: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        params = self.forward(img)
        return params.pose, params.shape_params, params.phi


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
    from eifer_models.compact_encoder import CompactEncoder

    kwargs = dict(config)
    architecture = kwargs.pop("architecture", "smirk")
    classes: dict[str, type[FaceEncoder]] = {"smirk": SmirkEncoder, "compact": CompactEncoder}
    if architecture not in classes:
        raise ValueError(f"unknown encoder architecture {architecture!r} (have {sorted(classes)})")
    return classes[architecture](**kwargs)


ARCHITECTURES = ("smirk", "compact")

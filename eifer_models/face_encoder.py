"""The interface of every face encoder, and the FLAME parameters it gives.

A :class:`FaceEncoder` maps a face crop (N, 3, S, S), RGB in [0, 1], to FLAME parameters:
``raw`` gives the unbounded head outputs (what a trainer's loss reads: a clamp before the loss
has zero gradient wherever the raw value is outside the range), ``forward`` applies SMIRK's
activations (:func:`split_expression_head`; inference) into :class:`FlameParams`, and ``config``
is what a bundle's manifest stores to rebuild it (:func:`eifer_models.encoders.build_encoder`).
The architectures: ``smirk`` (:mod:`eifer_models.encoders`), ``compact``
(:mod:`eifer_models.compact_encoder`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "JAW_SIDE_LIMIT_RAD",
    "N_EXP",
    "N_EYELID",
    "N_JAW",
    "N_SHAPE",
    "FaceEncoder",
    "FlameParams",
    "split_expression_head",
]

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

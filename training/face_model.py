"""The face model of phase 1: FLAME (the synthetic head here, FLAME 2020 when given) + SMIRK's
monochrome renderer of the face-mask triangles, from encoder outputs to a render."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from eifer_models.encoders import FlameParams
from eifer_models.renderer import Renderer, RenderOutput

__all__ = ["FaceModel"]


class FaceModel(nn.Module):
    """``render(params)``: FLAME posed by the encoders' parameters, drawn at ``image_size`` with
    the encoders' weak-perspective camera (SMIRK: only the face-mask triangles)."""

    def __init__(self, image_size: int, flame_npz: str | Path | None = None) -> None:
        super().__init__()
        from eifer_models.flame import FLAME
        from eifer_models.synthetic_head import synthetic_flame

        self.flame = FLAME.from_npz(flame_npz) if flame_npz else synthetic_flame()
        self.flame.requires_grad_(False)
        self.renderer = Renderer(self.flame.faces, self.flame.face_triangles, image_size)

    def render(self, params: FlameParams) -> RenderOutput:
        out = self.flame(
            shape=params.shape_params,
            expression=params.expression_params,
            eyelid=params.eyelid_params,
            jaw=params.jaw_params,
            pose=params.pose_params,
        )
        return self.renderer(out.vertices, params.cam)

    def forward(self, params: FlameParams) -> torch.Tensor:
        return self.render(params).image

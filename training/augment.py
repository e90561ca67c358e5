"""Augmentations on (B,3,H,W) images in [0, 1], drawn from a ``torch.Generator`` so a resumed
run sees the same images.

- :func:`augment`, phase 1 (EIFER supplement: random crop, sharpen, horizontal and vertical
  flip). Probabilities and strengths are this project's choice (the paper gives none). The
  vertical flip is off by default: phase 1 feeds the augmented face to the frozen occlusion-free
  encoder, whose phi of an upside-down face means nothing. A horizontal flip is consistent
  there (both cycles see the same mirrored face).
- :func:`photometric`, supervised training: brightness, contrast and per-channel gains; no
  geometric change, so the truth (one-sided components, the camera) stays valid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from streaming.config import Config

__all__ = ["AugmentConfig", "augment", "photometric"]

_SHARPEN = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]])


class AugmentConfig(Config):
    crop_min_fraction: float = Field(0.9, gt=0.0, le=1.0)  # random square crop side, resized back
    sharpen_p: float = Field(0.3, ge=0.0, le=1.0)  # 3x3 sharpen kernel blended in at U(0, 1)
    hflip_p: float = Field(0.5, ge=0.0, le=1.0)
    vflip_p: float = Field(0.0, ge=0.0, le=1.0)  # upside-down faces (module doc: off)


def augment(image: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """One random draw of every augmentation per image of the batch."""
    out = []
    H, W = image.shape[-2:]
    for img in image:
        u = torch.rand(6, generator=generator).tolist()
        side = config.crop_min_fraction + (1.0 - config.crop_min_fraction) * u[0]
        h, w = max(1, round(H * side)), max(1, round(W * side))
        top, left = round((H - h) * u[1]), round((W - w) * u[2])
        x = img[None, :, top : top + h, left : left + w]
        if (h, w) != (H, W):
            x = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False)
        if u[3] < config.sharpen_p:
            kernel = _SHARPEN.to(x).expand(3, 1, 3, 3)
            sharp = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=3)
            x = (x + u[3] / max(config.sharpen_p, 1e-9) * (sharp - x)).clamp(0, 1)
        if u[4] < config.hflip_p:
            x = x.flip(-1)
        if u[5] < config.vflip_p:
            x = x.flip(-2)
        out.append(x[0])
    return torch.stack(out)


def photometric(image: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Per image: contrast about its mean grey, brightness and a gain per colour channel, each
    drawn uniformly in 1 +- ``strength`` (brightness: +- ``strength`` / 2), clipped to [0, 1]."""
    n = image.shape[0]
    u = torch.rand(n, 5, generator=generator).to(image) * 2.0 - 1.0  # [-1, 1)
    contrast = 1.0 + strength * u[:, 0, None, None, None]
    brightness = 0.5 * strength * u[:, 1, None, None, None]
    gains = 1.0 + strength * u[:, 2:, None, None]
    grey = image.mean(dim=(1, 2, 3), keepdim=True)
    return ((image - grey) * contrast + grey + brightness).mul(gains).clamp(0.0, 1.0)

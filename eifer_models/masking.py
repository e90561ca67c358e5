"""Appearance-pixel sampling inside the rendered face (EIFER's masking function).

SMIRK samples the generator's appearance pixels inside the convex hull of MediaPipe landmarks;
landmarks fail under sEMG electrodes, so EIFER samples inside the area covered by the rendered
FLAME face instead (Buechner et al., CVPR 2025). Here the area is the renderer's ``coverage``
mask. Pixels are drawn uniformly without replacement among covered pixels; the number is given
directly or as a fraction of the image (SMIRK's ``mask_ratio``: 0.01 of 224^2 = 501 pixels in
training) and EIFER shrinks it over the training stages (:func:`stage_fraction`). A
``torch.Generator`` makes the draw reproducible.

What the generator sees (:func:`generator_pixels`) keeps SMIRK's behaviour outside the face
(``src/utils/masking.py`` ``masking``): the image outside the face region dilated by
``mask_dilation_radius`` (10 px at 224) is kept as it is (hair, background, neck), the region
itself is blanked, and only the sampled appearance pixels are pasted back inside it. EIFER
changes only the region: the rendered face instead of the landmark hull. SMIRK's extra-point
noise (x N(1, 0.05)) and random 11x11 drop-out patches are not reproduced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class AppearanceSample:
    """``appearance`` (B,C,H,W) image at sampled pixels, 0 elsewhere; ``sample_mask`` (B,1,H,W)
    1 at sampled pixels; ``counts`` (B,) pixels drawn per image (fewer than asked only when the
    covered area is smaller)."""

    appearance: Tensor
    sample_mask: Tensor
    counts: Tensor
    kept_outside: Tensor | None = None  # (B,1,H,W) 1 outside the dilated face (generator_pixels)


def landmark_hull_mask(landmarks_xy: np.ndarray, shape: tuple[int, int] = (224, 224)) -> np.ndarray:
    """SMIRK's hull mask (``datasets/base_dataset.py`` ``create_mask``): (H, W) uint8, 0 inside
    the convex hull of the landmarks (crop pixels; truncated to integers as SMIRK does), 1
    outside. SMIRK masks the face out of the generator's input with it; crop-frame landmarks
    come from ``eifer_models.face_detection.crop.to_crop``."""
    import cv2

    points = np.asarray(landmarks_xy)[:, :2].astype(np.int32)
    if points.shape[0] < 3:
        raise ValueError(f"a hull needs at least 3 landmarks, got {points.shape[0]}")
    mask = np.ones(shape, dtype=np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(points), 0)
    return mask


def pixel_count(fraction: float, height: int, width: int) -> int:
    """Pixels for a fraction of the image, SMIRK's ``int(mask_ratio * H * W)``."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"pixel fraction must be in [0, 1], got {fraction}")
    return int(fraction * height * width)


def stage_fraction(stage: int, fractions: Sequence[float] = (0.05, 0.02, 0.01)) -> float:
    """Appearance-pixel fraction for a training stage (0-based; EIFER shrinks it per stage).
    The default values are this project's choice (EIFER's are not published)."""
    if stage < 0:
        raise ValueError(f"stage must be >= 0, got {stage}")
    return fractions[min(stage, len(fractions) - 1)]


def sample_appearance(
    image: Tensor,
    coverage: Tensor,
    *,
    n_pixels: int | None = None,
    fraction: float | None = None,
    generator: torch.Generator | None = None,
) -> AppearanceSample:
    """Keep ``n_pixels`` (or ``fraction`` of H*W) random pixels of ``image`` (B,C,H,W) inside
    ``coverage`` (B,1,H,W or B,H,W; nonzero = face), zero the rest. Differentiable w.r.t. image."""
    if (n_pixels is None) == (fraction is None):
        raise ValueError("give exactly one of n_pixels or fraction")
    B, _, H, W = image.shape
    cov = coverage.reshape(coverage.shape[0], -1) != 0
    if cov.shape != (B, H * W):
        raise ValueError(
            f"coverage {tuple(coverage.shape)} does not match image {tuple(image.shape)}"
        )
    n = pixel_count(fraction, H, W) if fraction is not None else int(n_pixels)  # type: ignore[arg-type]
    if n < 0:
        raise ValueError(f"n_pixels must be >= 0, got {n}")
    n = min(n, H * W)
    keys = torch.rand(
        B, H * W, generator=generator, device=generator.device if generator else image.device
    )
    keys = keys.to(image.device).masked_fill(~cov, -1.0)
    top = keys.topk(n, dim=1)
    chosen = torch.zeros(B, H * W, dtype=torch.bool, device=image.device)
    chosen.scatter_(1, top.indices, top.values >= 0)
    mask = chosen.view(B, 1, H, W)
    return AppearanceSample(image * mask.to(image.dtype), mask.to(image.dtype), chosen.sum(1))


def dilate(mask: Tensor, radius_px: int) -> Tensor:
    """Binary dilation of (B,1,H,W) ``mask`` by a (2r+1)^2 square (SMIRK: ``max_pool2d``)."""
    if radius_px < 0:
        raise ValueError(f"dilation radius must be >= 0, got {radius_px}")
    m = (mask != 0).to(torch.float32)
    if radius_px == 0:
        return m
    return torch.nn.functional.max_pool2d(m, 2 * radius_px + 1, stride=1, padding=radius_px)


def dilation_px(image_size: int, radius_at_224: int = 10) -> int:
    """SMIRK's ``mask_dilation_radius`` (10 px at 224) scaled to another image size."""
    return max(1, round(radius_at_224 * image_size / 224))


def generator_pixels(
    image: Tensor,
    coverage: Tensor,
    *,
    n_pixels: int | None = None,
    fraction: float | None = None,
    dilation_radius_px: int = 10,
    generator: torch.Generator | None = None,
) -> AppearanceSample:
    """The generator's image input: ``image`` (B,3,H,W) kept outside the rendered face
    ``coverage`` dilated by ``dilation_radius_px``, zero inside it except ``n_pixels`` (or
    ``fraction``) appearance pixels sampled inside the rendered face itself. ``sample_mask`` is 1
    where a pixel is given (kept outside or sampled), ``counts`` the pixels sampled inside."""
    inside = sample_appearance(
        image, coverage, n_pixels=n_pixels, fraction=fraction, generator=generator
    )
    cov = coverage.reshape(image.shape[0], 1, *image.shape[-2:])
    outside = 1.0 - dilate(cov, dilation_radius_px).to(image.dtype)
    given = (outside + inside.sample_mask).clamp(max=1.0)
    return AppearanceSample(image * outside + inside.appearance, given, inside.counts, outside)

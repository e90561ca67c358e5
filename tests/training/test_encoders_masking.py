"""EIFER's masking: the generator sees the image outside the dilated rendered face unchanged and
appearance pixels sampled only inside the rendered face (SMIRK's behaviour outside the face)."""

from __future__ import annotations

import pytest
import torch

from eifer_models.masking import dilate, dilation_px, generator_pixels


def _scene() -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(1)) + 0.01  # no 0s
    coverage = torch.zeros(2, 1, 48, 48, dtype=torch.bool)
    coverage[0, :, 10:30, 12:34] = True  # a rectangle "face"
    coverage[1, :, 20:40, 5:20] = True
    return image, coverage


def test_outside_is_kept_and_pixels_come_only_from_inside_the_rendered_face() -> None:
    image, coverage = _scene()
    radius = 3
    px = generator_pixels(image, coverage, n_pixels=40, dilation_radius_px=radius,
                          generator=torch.Generator().manual_seed(0))  # fmt: skip
    hole = dilate(coverage, radius).bool()
    outside = ~hole
    # the image outside the dilated face is passed through exactly (hair, background)
    assert torch.equal(px.appearance * outside, image * outside)
    assert torch.equal(px.kept_outside.bool(), outside)
    # inside the hole only sampled pixels are nonzero, and they lie inside the rendered face
    inside_given = (px.appearance.abs().sum(1, keepdim=True) > 0) & hole
    assert inside_given.sum().item() == 2 * 40
    assert not (inside_given & ~coverage).any()  # nothing sampled in the dilation ring
    assert torch.equal(px.appearance * inside_given, image * inside_given)
    assert px.counts.tolist() == [40, 40]
    # the mask channel says which pixels are given: outside plus the samples
    assert torch.equal(px.sample_mask.bool(), outside | inside_given)


def test_dilation_grows_the_face_by_the_radius() -> None:
    _, coverage = _scene()
    hole = dilate(coverage, 2).bool()
    assert hole[0, 0, 8:32, 10:36].all() and not hole[0, 0, 7, 20] and not hole[0, 0, 20, 36]
    assert dilation_px(224) == 10 and dilation_px(64) == 3
    with pytest.raises(ValueError, match="radius"):
        dilate(coverage, -1)


def test_gradient_reaches_the_image_through_kept_and_sampled_pixels() -> None:
    image, coverage = _scene()
    image.requires_grad_(True)
    px = generator_pixels(image, coverage, fraction=0.01, dilation_radius_px=2)
    px.appearance.sum().backward()
    assert torch.equal(image.grad != 0, (px.sample_mask != 0).expand_as(image))

"""Appearance pixels are sampled only inside the rendered face, as many as asked, reproducibly."""

from __future__ import annotations

import pytest
import torch

from eifer_models.masking import pixel_count, sample_appearance, stage_fraction
from eifer_models.renderer import Renderer
from eifer_models.synthetic_head import synthetic_flame


@pytest.fixture(scope="module")
def rendered() -> tuple[torch.Tensor, torch.Tensor]:
    flame = synthetic_flame()
    renderer = Renderer(flame.faces, flame.face_triangles, image_size=224)
    out = renderer(
        flame(expression=torch.zeros(2, 50)).vertices,
        torch.tensor([[7.0, 0, 0], [6.0, 0.02, 0.01]]),
    )
    image = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    return image, out.coverage


def test_samples_lie_inside_the_rendered_face_and_count_is_as_requested(
    rendered: tuple[torch.Tensor, torch.Tensor],
) -> None:
    image, coverage = rendered
    s = sample_appearance(image, coverage, n_pixels=501, generator=torch.Generator().manual_seed(0))
    assert s.counts.tolist() == [501, 501]
    assert s.sample_mask.sum((1, 2, 3)).tolist() == [501, 501]
    assert not (s.sample_mask.bool() & ~coverage).any()
    chosen = s.sample_mask.bool().expand_as(image)
    assert torch.equal(s.appearance[chosen], image[chosen]) and (s.appearance[~chosen] == 0).all()


def test_fraction_follows_smirks_mask_ratio(rendered: tuple[torch.Tensor, torch.Tensor]) -> None:
    image, coverage = rendered
    assert pixel_count(0.01, 224, 224) == 501
    s = sample_appearance(image, coverage, fraction=0.01)
    assert s.counts.tolist() == [501, 501]
    assert stage_fraction(0) > stage_fraction(1) > stage_fraction(2) == stage_fraction(7)


def test_sampling_is_reproducible_with_a_seed(rendered: tuple[torch.Tensor, torch.Tensor]) -> None:
    image, coverage = rendered

    def draw(seed: int):
        generator = torch.Generator().manual_seed(seed)
        return sample_appearance(image, coverage, n_pixels=300, generator=generator)

    assert torch.equal(draw(5).sample_mask, draw(5).sample_mask)
    assert not torch.equal(draw(5).sample_mask, draw(6).sample_mask)


def test_small_face_area_gives_all_covered_pixels_and_no_others() -> None:
    coverage = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    coverage[0, 0, 4:6, 7:10] = True
    s = sample_appearance(torch.ones(1, 3, 16, 16), coverage, n_pixels=100)
    assert s.counts.tolist() == [6] and torch.equal(s.sample_mask.bool(), coverage)


def test_bad_arguments_are_rejected() -> None:
    image, cov = torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 8)
    with pytest.raises(ValueError, match="exactly one"):
        sample_appearance(image, cov)
    with pytest.raises(ValueError, match="exactly one"):
        sample_appearance(image, cov, n_pixels=3, fraction=0.1)
    with pytest.raises(ValueError, match="does not match"):
        sample_appearance(image, torch.ones(1, 1, 4, 4), n_pixels=3)
    with pytest.raises(ValueError, match="fraction"):
        sample_appearance(image, cov, fraction=1.5)

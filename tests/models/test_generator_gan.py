"""Generator and discriminator: architecture as EIFER describes it, shapes, ranges, LSGAN losses."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from eifer_models.discriminator import (
    EiferDiscriminator,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from eifer_models.generator import IN_CHANNELS, EiferGenerator, ResnetBlock, generator_input


@pytest.fixture(scope="module")
def generator() -> EiferGenerator:
    torch.manual_seed(0)
    return EiferGenerator().eval()


def test_generator_architecture_has_9_blocks_64_features_instance_norm_and_no_transposed_convs(
    generator: EiferGenerator,
) -> None:
    mods = list(generator.modules())
    assert sum(isinstance(m, ResnetBlock) for m in mods) == 9
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in mods)
    assert any(isinstance(m, nn.Upsample) for m in mods)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in mods)
    assert any(isinstance(m, nn.InstanceNorm2d) for m in mods)
    assert (
        generator.stem[1].in_channels == IN_CHANNELS == 5 and generator.stem[1].out_channels == 64
    )


@pytest.mark.parametrize("size", [(224, 224), (60, 92), (90, 90)])
def test_generator_output_is_rgb_in_unit_range_at_the_input_size(
    generator: EiferGenerator, size: tuple[int, int]
) -> None:
    render = torch.rand(2, 1, *size)
    appearance = torch.rand(2, 3, *size)
    mask = (torch.rand(2, 1, *size) < 0.05).float()
    with torch.no_grad():
        out = generator(generator_input(render, appearance * mask, mask))
    assert out.shape == (2, 3, *size)
    assert out.min() >= 0 and out.max() <= 1


def test_generator_skips_carry_the_input_through(generator: EiferGenerator) -> None:
    """A U-Net skip lets a change of one input pixel reach the output near that pixel."""
    x = torch.rand(1, 5, 64, 64, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    generator(x)[0, :, 40, 20].sum().backward()
    grad = x.grad.abs().sum((0, 1))
    assert grad[40, 20] > 3 * grad.mean()


def test_generator_output_follows_the_inputs_absolute_colour(generator: EiferGenerator) -> None:
    """Instance normalisation removes each feature map's mean: behind a normalised stem alone a
    face and the same face uniformly brighter are one input, so no training could keep a face's
    colours. The outermost skip carries the input itself to the output convolution."""
    x = torch.rand(1, 5, 64, 64, generator=torch.Generator().manual_seed(0)) * 0.5
    with torch.no_grad():
        change = (generator(x + 0.3) - generator(x)).abs().mean()
        assert change > 1e-3
        # a uniform image's colour reaches the output: two backgrounds are two outputs
        pink, green = torch.zeros(1, 5, 64, 64), torch.zeros(1, 5, 64, 64)
        pink[:, 1:4] = torch.tensor([0.8, 0.5, 0.5])[:, None, None]
        green[:, 1:4] = torch.tensor([0.5, 0.7, 0.5])[:, None, None]
        assert (generator(pink) - generator(green)).abs().mean() > 1e-3


def test_discriminator_has_three_conv_layers_and_two_outputs() -> None:
    d = EiferDiscriminator()
    assert sum(isinstance(m, nn.Conv2d) for m in d.modules()) == 3
    scores = d(torch.rand(4, 3, 224, 224))
    assert scores.shape == (4, 2)


def test_lsgan_losses_are_zero_at_their_targets_and_push_the_right_way() -> None:
    real_ok, fake_ok = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert lsgan_discriminator_loss(real_ok, fake_ok) == 0
    assert lsgan_generator_loss(real_ok) == 0
    assert lsgan_discriminator_loss(fake_ok, real_ok) == pytest.approx(1.0)
    scores = torch.tensor([[0.2, 0.7]], requires_grad=True)
    lsgan_generator_loss(scores).backward()
    assert scores.grad[0, 0] < 0 and scores.grad[0, 1] > 0  # raise "real", lower "fake"


def test_one_adversarial_step_lowers_the_discriminator_loss() -> None:
    torch.manual_seed(0)
    d = EiferDiscriminator(features=16)
    opt = torch.optim.Adam(d.parameters(), lr=1e-3)
    real = torch.rand(4, 3, 32, 32) * 0.5 + 0.5
    fake = torch.rand(4, 3, 32, 32) * 0.5
    losses = []
    for _ in range(20):
        loss = lsgan_discriminator_loss(d(real), d(fake))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_render_sample_generate_chain_learns_a_real_photo() -> None:
    """Render of the synthetic head + appearance pixels of a real face photo (skimage's
    astronaut) -> generator; a few Adam steps on L1 + LSGAN lower the L1 error."""
    from skimage.data import astronaut
    from skimage.transform import resize

    from eifer_models.masking import sample_appearance
    from eifer_models.renderer import Renderer
    from eifer_models.synthetic_head import synthetic_flame

    torch.manual_seed(0)
    size = 64
    photo = resize(astronaut()[20:220, 150:350], (size, size), anti_aliasing=True)
    photo = torch.as_tensor(photo, dtype=torch.float32).permute(2, 0, 1)[None]
    flame = synthetic_flame()
    render = Renderer(flame.faces, flame.face_triangles, image_size=size)(
        flame(expression=torch.zeros(1, 50)).vertices, torch.tensor([[9.0, 0.0, 0.0]])
    )
    sample = sample_appearance(
        photo, render.coverage, fraction=0.05, generator=torch.Generator().manual_seed(0)
    )
    x = generator_input(render.image, sample.appearance, sample.sample_mask)
    g, d = EiferGenerator(features=16, res_blocks=2), EiferDiscriminator(features=16)
    opt = torch.optim.Adam(g.parameters(), lr=2e-3)
    errors = []
    for _ in range(12):
        out = g(x)
        l1 = (out - photo).abs().mean()
        loss = l1 + 0.1 * lsgan_generator_loss(d(out))
        opt.zero_grad()
        loss.backward()
        opt.step()
        errors.append(l1.item())
    assert errors[-1] < 0.7 * errors[0]

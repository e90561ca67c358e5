"""EIFER's discriminator and least-squares GAN losses.

EIFER (Buechner et al., CVPR 2025, supplementary): a 3-layer CNN with two output neurons
(real / fake), trained with the least-squares GAN loss (LSGAN, Mao et al., ICCV 2017). The
convolutions follow CycleGAN's ``NLayerDiscriminator`` (4x4, stride 2, LeakyReLU 0.2, instance
norm after the first layer); global average pooling and a linear layer give the two neurons.
Targets: a real image should score (1, 0), a generated one (0, 1); the generator wants its
images scored (1, 0).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

REAL = (1.0, 0.0)
FAKE = (0.0, 1.0)


class EiferDiscriminator(nn.Module):
    """(B, 3, H, W) image in [0, 1] -> (B, 2) scores (real, fake)."""

    def __init__(self, in_channels: int = 3, features: int = 64, layers: int = 3) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        c_in, c_out = in_channels, features
        for i in range(layers):
            mods.append(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1))
            if i > 0:
                mods.append(nn.InstanceNorm2d(c_out, affine=True))
            mods.append(nn.LeakyReLU(0.2, inplace=True))
            c_in, c_out = c_out, c_out * 2
        self.features = nn.Sequential(*mods)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out = nn.Linear(c_in, 2)

    def forward(self, image: Tensor) -> Tensor:
        return self.out(self.pool(self.features(image)).flatten(1))


def _target(scores: Tensor, target: tuple[float, float]) -> Tensor:
    return torch.tensor(target, dtype=scores.dtype, device=scores.device).expand_as(scores)


def lsgan_discriminator_loss(scores_real: Tensor, scores_fake: Tensor) -> Tensor:
    """0.5 * (MSE(D(real), REAL) + MSE(D(fake), FAKE)); pass ``fake.detach()`` through D."""
    mse = nn.functional.mse_loss
    return 0.5 * (
        mse(scores_real, _target(scores_real, REAL)) + mse(scores_fake, _target(scores_fake, FAKE))
    )


def lsgan_generator_loss(scores_fake: Tensor) -> Tensor:
    """MSE(D(fake), REAL): the generator wants its images taken for real."""
    return nn.functional.mse_loss(scores_fake, _target(scores_fake, REAL))

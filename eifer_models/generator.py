"""EIFER's image generator: render + sparse appearance pixels -> RGB face.

EIFER (Buechner et al., CVPR 2025, supplementary) describes a ResNet generator with 9 residual
blocks and 64 base features, instance normalisation, U-Net-like skip connections and every
transposed convolution replaced by upsampling + convolution (no checkerboard artefacts; Odena
et al., Distill 2016). The layout follows CycleGAN's ``ResnetGenerator`` (Zhu et al., ICCV 2017):
reflection-padded 7x7 stem, two stride-2 3x3 downsamplings, residual blocks at 1/4 resolution,
two upsampling stages, 7x7 output. Skips concatenate the encoder features of the same
resolution before each upsampling stage's fusion convolution, and the outermost skip carries the
input itself to the output convolution: instance normalisation removes every feature map's mean,
so after the normalised stem an image and the same image made uniformly brighter are one input,
and a uniform background of any colour becomes zero (pix2pix's U-Net, Isola et al., CVPR 2017,
leaves its outermost level unnormalised for this reason). Without it the phase-1 generators could
not keep a face's colours even when given every pixel of it (issue 23). Output through a sigmoid
(SMIRK's generator: images in [0, 1]).

Input channels (default 5): the monochrome render (1), the sampled appearance pixels (3, zero
elsewhere) and the sample mask (1) that says which pixels were sampled, so a black sampled pixel
differs from an unsampled one (SMIRK passes 3 render + 3 masked-image channels, no mask; this
project adds the mask channel).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

IN_CHANNELS = 5  # render 1 + appearance 3 + sample mask 1


def _conv_norm_relu(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    pad = kernel // 2
    return nn.Sequential(
        nn.ReflectionPad2d(pad),
        nn.Conv2d(c_in, c_out, kernel, stride=stride),
        nn.InstanceNorm2d(c_out),
        nn.ReLU(),
    )


class ResnetBlock(nn.Module):
    """CycleGAN residual block: (reflect pad, 3x3 conv, IN, ReLU) x2 without the last ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class UpBlock(nn.Module):
    """Upsample x2 (bilinear) + 3x3 conv, then concatenate the skip and fuse with a 3x3 conv."""

    def __init__(self, c_in: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv = _conv_norm_relu(c_in, c_out, 3)
        self.fuse = _conv_norm_relu(c_out + c_skip, c_out, 3)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.conv(self.up(x))
        if x.shape[-2:] != skip.shape[-2:]:  # odd input sizes
            x = nn.functional.interpolate(
                x, size=skip.shape[-2:], mode="bilinear", align_corners=False
            )
        return self.fuse(torch.cat([x, skip], 1))


class EiferGenerator(nn.Module):
    """ResNet generator with U-Net skips: (B, in_channels, H, W) -> (B, 3, H, W) in [0, 1]."""

    def __init__(
        self,
        in_channels: int = IN_CHANNELS,
        out_channels: int = 3,
        features: int = 64,
        res_blocks: int = 9,
    ) -> None:
        super().__init__()
        f = features
        self.stem = _conv_norm_relu(in_channels, f, 7)
        self.down1 = _conv_norm_relu(f, 2 * f, 3, stride=2)
        self.down2 = _conv_norm_relu(2 * f, 4 * f, 3, stride=2)
        self.blocks = nn.Sequential(*[ResnetBlock(4 * f) for _ in range(res_blocks)])
        self.up1 = UpBlock(4 * f, 2 * f, 2 * f)
        self.up2 = UpBlock(2 * f, f, f)
        self.head = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(f + in_channels, out_channels, 7), nn.Sigmoid()
        )

    def forward(self, x: Tensor) -> Tensor:
        e0 = self.stem(x)
        e1 = self.down1(e0)
        y = self.blocks(self.down2(e1))
        return self.head(torch.cat([self.up2(self.up1(y, e1), e0), x], 1))


def generator_input(render: Tensor, appearance: Tensor, sample_mask: Tensor) -> Tensor:
    """Stack the generator's 5 input channels: render (B,1|3,H,W; one channel kept),
    appearance (B,3,H,W) and sample mask (B,1,H,W)."""
    return torch.cat([render[:, :1], appearance, sample_mask.to(appearance.dtype)], 1)

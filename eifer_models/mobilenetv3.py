"""MobileNetV3 "minimal" backbones with timm-compatible parameter names (features only).

SMIRK (Retsinas et al., CVPR 2024, ``src/smirk_encoder.py``) builds its encoders with
``timm.create_model(name, features_only=True)`` and keeps the last feature map. timm needs
torchvision, which does not load with the CPU torch pinned here, so the two architectures SMIRK
uses are written out in this module with timm's module names (``conv_stem``, ``bn1``,
``blocks.S.B.{conv_dw,conv_pw,conv_pwl,conv,bn1,bn2,bn3}``) so a SMIRK checkpoint loads with its
keys as they are.

Architecture (timm 0.9.16 ``_gen_mobilenet_v3``, "minimal" variants; Howard et al., ICCV 2019,
Table 1/2 with SE and h-swish removed): ReLU everywhere, 3x3 depthwise kernels, no SE, no bias in
convs. The ``tf_`` prefix means TensorFlow-ported weights: BatchNorm eps 1e-3 and TF "SAME"
padding, i.e. every stride-2 conv pads asymmetrically at run time (0 before, 1 after for an even
input size), which PyTorch ``padding=1`` does not reproduce.
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ARCH_DEFS",
    "BN_EPS",
    "Conv2dSame",
    "ConvBnAct",
    "DepthwiseSeparable",
    "InvertedResidual",
    "MobileNetV3Features",
    "create_backbone",
    "make_divisible",
]

BN_EPS = 1e-3  # TensorFlow's BatchNorm default, used by every ``tf_`` timm model
STEM_CHANNELS = 16

# Block strings in timm's notation: type, repeats, kernel, stride, expansion, out channels.
# ``ds`` depthwise-separable, ``ir`` inverted residual, ``cn`` 1x1 conv-bn-act.
ARCH_DEFS: dict[str, list[list[str]]] = {
    "tf_mobilenetv3_small_minimal_100": [
        ["ds_r1_k3_s2_e1_c16"],
        ["ir_r1_k3_s2_e4.5_c24", "ir_r1_k3_s1_e3.67_c24"],
        ["ir_r1_k3_s2_e4_c40", "ir_r2_k3_s1_e6_c40"],
        ["ir_r2_k3_s1_e3_c48"],
        ["ir_r3_k3_s2_e6_c96"],
        ["cn_r1_k1_s1_c576"],
    ],
    "tf_mobilenetv3_large_minimal_100": [
        ["ds_r1_k3_s1_e1_c16"],
        ["ir_r1_k3_s2_e4_c24", "ir_r1_k3_s1_e3_c24"],
        ["ir_r3_k3_s2_e3_c40"],
        ["ir_r1_k3_s2_e6_c80", "ir_r1_k3_s1_e2.5_c80", "ir_r2_k3_s1_e2.3_c80"],
        ["ir_r2_k3_s1_e6_c112"],
        ["ir_r3_k3_s2_e6_c160"],
        ["cn_r1_k1_s1_c960"],
    ],
}


def make_divisible(value: float, divisor: int = 8, round_limit: float = 0.9) -> int:
    """Channel rounding of the TF MobileNet reference (and timm): nearest multiple of 8,
    never more than 10 % below ``value``."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < round_limit * value:
        new += divisor
    return new


def pad_same(x: Tensor, kernel: int, stride: int, dilation: int = 1) -> Tensor:
    """TF "SAME" padding for ``x`` (N, C, H, W): output size ceil(in / stride), the odd pixel
    of padding goes after (bottom/right)."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad order: last dim first
        total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class Conv2dSame(nn.Conv2d):
    """Conv2d with TF "SAME" padding computed from the input size (timm ``Conv2dSame``)."""

    def forward(self, x: Tensor) -> Tensor:
        x = pad_same(x, self.kernel_size[0], self.stride[0], self.dilation[0])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def create_conv2d(
    c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1
) -> nn.Conv2d:
    """timm ``create_conv2d(padding='same')``: static symmetric padding where it equals SAME
    (stride 1), dynamic :class:`Conv2dSame` otherwise."""
    if stride > 1:
        return Conv2dSame(c_in, c_out, kernel, stride=stride, groups=groups, bias=False)
    return nn.Conv2d(
        c_in, c_out, kernel, stride=1, padding=(kernel - 1) // 2, groups=groups, bias=False
    )


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class DepthwiseSeparable(nn.Module):
    """``conv_dw -> bn1 -> ReLU -> conv_pw -> bn2`` (+ skip if stride 1 and in == out)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.has_skip = stride == 1 and c_in == c_out
        self.conv_dw = create_conv2d(c_in, c_in, kernel, stride, groups=c_in)
        self.bn1 = _bn(c_in)
        self.conv_pw = create_conv2d(c_in, c_out, 1)
        self.bn2 = _bn(c_out)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv_dw(x)))
        y = self.bn2(self.conv_pw(y))
        return x + y if self.has_skip else y


class InvertedResidual(nn.Module):
    """``conv_pw -> bn1 -> ReLU -> conv_dw -> bn2 -> ReLU -> conv_pwl -> bn3`` (+ skip)."""

    def __init__(self, c_in: int, c_mid: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.has_skip = stride == 1 and c_in == c_out
        self.conv_pw = create_conv2d(c_in, c_mid, 1)
        self.bn1 = _bn(c_mid)
        self.conv_dw = create_conv2d(c_mid, c_mid, kernel, stride, groups=c_mid)
        self.bn2 = _bn(c_mid)
        self.conv_pwl = create_conv2d(c_mid, c_out, 1)
        self.bn3 = _bn(c_out)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv_pw(x)))
        y = F.relu(self.bn2(self.conv_dw(y)))
        y = self.bn3(self.conv_pwl(y))
        return x + y if self.has_skip else y


class ConvBnAct(nn.Module):
    """``conv -> bn1 -> ReLU`` (timm ``ConvBnAct``; the last block of the minimal models)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv = create_conv2d(c_in, c_out, kernel, stride)
        self.bn1 = _bn(c_out)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn1(self.conv(x)))


def _parse_block(spec: str) -> tuple[str, int, int, int, float, int]:
    kind, *opts = spec.split("_")
    values = {o[0]: o[1:] for o in opts}
    return (
        kind,
        int(values["r"]),
        int(values["k"]),
        int(values["s"]),
        float(values.get("e", 1.0)),
        int(values["c"]),
    )


class MobileNetV3Features(nn.Module):
    """Stem + stages of a minimal MobileNetV3; ``forward`` returns the last feature map
    (N, C, H/32, W/32), ``forward_features`` the last map of every resolution (timm
    ``features_only`` order)."""

    def __init__(self, arch: list[list[str]]) -> None:
        super().__init__()
        self.conv_stem = create_conv2d(3, STEM_CHANNELS, 3, stride=2)
        self.bn1 = _bn(STEM_CHANNELS)
        stages: list[nn.Sequential] = []
        self.feature_info: list[dict[str, int | str]] = []
        c_in, reduction = STEM_CHANNELS, 2
        last_name = "bn1"
        for stage_idx, stage in enumerate(arch):
            blocks: list[nn.Module] = []
            for spec in stage:
                kind, repeats, kernel, stride, expansion, c_out = _parse_block(spec)
                for rep in range(repeats):
                    s = stride if rep == 0 else 1
                    if s > 1:  # a new resolution starts: the previous map is a feature
                        self.feature_info.append(
                            {"module": last_name, "num_chs": c_in, "reduction": reduction}
                        )
                        reduction *= s
                    if kind == "ds":
                        blocks.append(DepthwiseSeparable(c_in, c_out, kernel, s))
                    elif kind == "ir":
                        c_mid = make_divisible(c_in * expansion)
                        blocks.append(InvertedResidual(c_in, c_mid, c_out, kernel, s))
                    elif kind == "cn":
                        blocks.append(ConvBnAct(c_in, c_out, kernel, s))
                    else:
                        raise ValueError(f"unknown block type {kind!r} in {spec!r}")
                    c_in = c_out
                    last_name = f"blocks.{stage_idx}.{len(blocks) - 1}"
            stages.append(nn.Sequential(*blocks))
        self.feature_info.append({"module": last_name, "num_chs": c_in, "reduction": reduction})
        self.blocks = nn.Sequential(*stages)
        self.num_features = c_in
        _init_weights(self)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """Every feature map named in ``feature_info`` (strides 2, 4, 8, 16, 32)."""
        wanted = {str(f["module"]) for f in self.feature_info}
        x = F.relu(self.bn1(self.conv_stem(x)))
        features = [x] if "bn1" in wanted else []
        for s, stage in enumerate(self.blocks):
            for b, block in enumerate(cast(nn.Sequential, stage)):
                x = block(x)
                if f"blocks.{s}.{b}" in wanted:
                    features.append(x)
        return features

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv_stem(x)))
        return self.blocks(x)


def _init_weights(model: nn.Module) -> None:
    """timm's ``_init_weight_goog``: conv normal(0, sqrt(2 / fan_out)), BN weight 1 bias 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def create_backbone(name: str) -> MobileNetV3Features:
    """The features-only backbone ``name`` (one of :data:`ARCH_DEFS`), randomly initialised."""
    if name not in ARCH_DEFS:
        raise ValueError(f"unknown backbone {name!r}; available: {sorted(ARCH_DEFS)}")
    return MobileNetV3Features(ARCH_DEFS[name])


def _count(module: nn.Module) -> int:  # used in tests and docs
    return sum(p.numel() for p in module.parameters())


if __name__ == "__main__":  # pragma: no cover - quick look at the sizes
    for arch_name in ARCH_DEFS:
        net = create_backbone(arch_name).eval()
        with torch.no_grad():
            shapes = [tuple(f.shape) for f in net.forward_features(torch.zeros(1, 3, 224, 224))]
        print(arch_name, _count(net), shapes)

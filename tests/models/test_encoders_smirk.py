"""SMIRK triple encoder and its MobileNetV3 backbones: architecture, names, shapes, ranges."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from eifer_models.encoders import SmirkEncoder, split_expression_head
from eifer_models.mobilenetv3 import Conv2dSame, create_backbone, make_divisible


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_backbones_have_timm_parameter_counts_and_feature_maps():
    # counts of timm 0.9.16 features_only models (research note eifer_smirk.md section 1)
    small = create_backbone("tf_mobilenetv3_small_minimal_100").eval()
    large = create_backbone("tf_mobilenetv3_large_minimal_100").eval()
    assert _params(small) == 428_888
    assert _params(large) == 1_413_208
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        small_maps = [tuple(f.shape[1:]) for f in small.forward_features(x)]
        large_maps = [tuple(f.shape[1:]) for f in large.forward_features(x)]
    assert small_maps == [(16, 112, 112), (16, 56, 56), (24, 28, 28), (48, 14, 14), (576, 7, 7)]
    assert large_maps == [(16, 112, 112), (24, 56, 56), (40, 28, 28), (112, 14, 14), (960, 7, 7)]


def test_backbone_uses_tf_bn_eps_and_timm_key_names():
    small = create_backbone("tf_mobilenetv3_small_minimal_100")
    keys = set(small.state_dict())
    assert {"conv_stem.weight", "bn1.running_var", "blocks.0.0.conv_dw.weight"} <= keys
    assert {
        "blocks.1.0.conv_pw.weight",
        "blocks.1.0.conv_pwl.weight",
        "blocks.1.0.bn3.bias",
    } <= keys
    assert small.state_dict()["blocks.5.0.conv.weight"].shape == (576, 96, 1, 1)
    assert small.state_dict()["blocks.1.0.conv_pw.weight"].shape == (72, 16, 1, 1)
    bns = [m for m in small.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.eps == 1e-3 for m in bns)


def test_stride_two_convs_pad_tf_same_not_symmetric():
    small = create_backbone("tf_mobilenetv3_small_minimal_100")
    same = [n for n, m in small.named_modules() if isinstance(m, Conv2dSame)]
    # the stem and the first conv of each stride-2 block (research note: stem, 0.0, 1.0, 2.0, 4.0)
    assert same == [
        "conv_stem",
        "blocks.0.0.conv_dw",
        "blocks.1.0.conv_dw",
        "blocks.2.0.conv_dw",
        "blocks.4.0.conv_dw",
    ]
    conv = small.conv_stem
    x = torch.rand(1, 3, 224, 224)
    expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, None, 2)
    symmetric = F.conv2d(x, conv.weight, None, 2, padding=1)
    assert torch.allclose(conv(x), expected, atol=1e-6)
    assert not torch.allclose(conv(x), symmetric, atol=1e-3)


def test_make_divisible_reproduces_mid_channels():
    assert make_divisible(24 * 3.67) == 88
    assert make_divisible(80 * 2.3) == 184
    assert make_divisible(16 * 4.5) == 72


def test_encoder_matches_smirk_sizes_and_outputs_flame_parameters():
    torch.manual_seed(0)
    enc = SmirkEncoder().eval()
    assert len(enc.state_dict()) == 762  # SMIRK_em1.pt encoder entries
    assert _params(enc) == 3_599_921
    assert [_params(m) for m in (enc.pose_encoder, enc.shape_encoder, enc.expression_encoder)] == [
        432_350,
        1_701_508,
        1_466_063,
    ]
    with torch.no_grad():
        params = enc(torch.rand(2, 3, 224, 224))
    assert params.pose.shape == (2, 6) and params.shape_params.shape == (2, 300)
    assert params.phi.shape == (2, 55) and params.expression_params.shape == (2, 50)
    assert torch.allclose(params.cam[:, 0], torch.full((2,), 7.0))  # SMIRK camera-scale init
    assert torch.count_nonzero(params.shape_params) == 0  # SMIRK zero-initialises the shape head


def test_expression_head_activations_bound_eyelids_and_jaw():
    raw = torch.linspace(-3, 3, 55 * 8).reshape(8, 55)
    expression, eyelid, jaw = split_expression_head(raw)
    assert torch.equal(expression, raw[:, :50])
    assert eyelid.min() >= 0 and eyelid.max() <= 1
    assert jaw[:, 0].min() >= 0
    assert jaw[:, 1:].abs().max() <= 0.2 + 1e-7
    assert torch.equal(jaw[:, 0], raw[:, 52].clamp(min=0))


def test_expression_dimension_is_a_constructor_property():
    enc = SmirkEncoder(n_exp=20, n_shape=100).eval()
    assert enc.expression_dim == 25
    with torch.no_grad():
        pose, shape, phi = enc.forward_tensors(torch.rand(1, 3, 224, 224))
    assert (pose.shape, shape.shape, phi.shape) == ((1, 6), (1, 100), (1, 25))


def test_backbone_equals_timm_given_the_same_weights():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    for name in ("tf_mobilenetv3_small_minimal_100", "tf_mobilenetv3_large_minimal_100"):
        ref = timm.create_model(name, pretrained=False, features_only=True).eval()
        ours = create_backbone(name).eval()
        state = ref.state_dict()
        for k, v in state.items():  # random BN statistics so the comparison is not trivial
            if k.endswith(("running_mean", "bias")):
                state[k] = torch.randn_like(v) * 0.1
            elif k.endswith("running_var"):
                state[k] = torch.rand_like(v) + 0.5
        ref.load_state_dict(state)
        ours.load_state_dict(state, strict=True)  # same key names, same shapes
        x = torch.rand(2, 3, 224, 224)
        with torch.no_grad():
            err = (ref(x)[-1] - ours(x)).abs().max().item()
        print(f"{name}: max abs error vs timm {err:.2e}")
        assert err < 1e-4

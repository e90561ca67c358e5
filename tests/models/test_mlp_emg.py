"""EMG2Exp / Exp2EMG: shapes, output ranges, loading Linear-stack weights of unknown naming."""

from __future__ import annotations

from itertools import pairwise

import pytest
import torch

from eifer_models.mlp import (
    EMG2Exp,
    Exp2EMG,
    linear_stack_shapes,
    load_linear_weights,
    mlp_from_state_dict,
)
from streaming.errors import BundleError


def test_emg2exp_maps_22_envelopes_to_phi_in_tanh_range():
    torch.manual_seed(0)
    model = EMG2Exp().eval()
    out = model(torch.rand(64, 22) * 50)  # large inputs drive the tanh to its bounds
    assert out.shape == (64, 55)
    assert out.abs().max() <= 1.0
    assert isinstance(model.net[-1], torch.nn.Tanh)
    assert all(isinstance(model.net[i], torch.nn.ReLU) for i in range(1, len(model.net) - 1, 2))


def test_exp2emg_maps_phi_to_non_negative_envelopes():
    torch.manual_seed(0)
    model = Exp2EMG(hidden=(64, 32, 16)).eval()
    out = model(torch.randn(64, 55) * 3)
    assert out.shape == (64, 22)
    assert out.min() >= 0.0 and out.max() > 0.0
    assert [m.out_features for m in model.net if isinstance(m, torch.nn.Linear)] == [64, 32, 16, 22]
    assert model.config() == {"n_in": 55, "n_out": 22, "hidden": [64, 32, 16]}


def _foreign_state(widths: list[int]) -> dict[str, torch.Tensor]:
    """Linear stack named like someone else's code: layers.0, layers.2, ..., layers.10."""
    torch.manual_seed(3)
    return {
        **{
            f"layers.{2 * i}.weight": torch.randn(b, a) for i, (a, b) in enumerate(pairwise(widths))
        },
        **{f"layers.{2 * i}.bias": torch.randn(b) for i, (a, b) in enumerate(pairwise(widths))},
    }


def test_foreign_linear_stack_loads_by_order_and_shape():
    widths = [22, 40, 40, 40, 40, 40, 55]  # six layers: keys layers.0 .. layers.10
    state = _foreign_state(widths)
    assert [s for _, s in linear_stack_shapes(state)] == [
        (40, 22),
        (40, 40),
        (40, 40),
        (40, 40),
        (40, 40),
        (55, 40),
    ]
    model = mlp_from_state_dict(EMG2Exp, state)
    assert model.hidden == (40, 40, 40, 40, 40)
    last = [m for m in model.net if isinstance(m, torch.nn.Linear)][-1]
    assert torch.equal(last.weight, state["layers.10.weight"])
    x = torch.rand(3, 22)
    h = x
    for i in range(6):
        h = h @ state[f"layers.{2 * i}.weight"].T + state[f"layers.{2 * i}.bias"]
        h = torch.relu(h) if i < 5 else torch.tanh(h)
    assert torch.allclose(model(x), h, atol=1e-5)


def test_mismatched_widths_fail_with_expected_and_found_shapes():
    state = _foreign_state([22, 128, 55])
    with pytest.raises(
        BundleError,
        match=r"\[\(128, 22\), \(55, 128\)\].*\[\(256, 22\), \(256, 256\), \(55, 256\)\]",
    ):
        load_linear_weights(EMG2Exp(), state, "authors.pt")


def test_non_linear_tensors_are_rejected():
    state = _foreign_state([22, 16, 55])
    state["bn.running_mean"] = torch.zeros(16)
    with pytest.raises(BundleError, match=r"bn\.running_mean"):
        mlp_from_state_dict(EMG2Exp, state)
    with pytest.raises(BundleError, match="do not chain"):
        mlp_from_state_dict(
            EMG2Exp, {"a.weight": torch.zeros(16, 22), "b.weight": torch.zeros(55, 17)}
        )

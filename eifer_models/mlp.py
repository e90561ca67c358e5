"""EIFER's EMG <-> expression MLPs (phase 2; Buechner et al., CVPR 2025, section 3.3).

- EMG2Exp: 22 normalised EMG envelopes -> phi (55), ReLU between layers, Tanh output.
- Exp2EMG: phi (55) -> 22 normalised envelopes, ReLU between layers, ReLU output
  (envelopes are non-negative).

The paper gives the activations but not the widths, and the released weights' format is not
public (research note eifer_smirk.md section 6), so widths and depth are constructor arguments
(default two hidden layers of 256: a guess) and :func:`load_linear_weights` accepts any state
dict that is a plain stack of Linear layers, mapping tensors to layers by order and shape and
failing with the expected vs found shapes otherwise. :func:`mlp_from_state_dict` infers the
widths from such a file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from itertools import pairwise

import torch
from torch import Tensor, nn

from streaming.errors import BundleError

__all__ = [
    "EXPRESSION_DIM",
    "MLP",
    "N_EMG",
    "EMG2Exp",
    "Exp2EMG",
    "linear_stack_shapes",
    "load_linear_weights",
    "mlp_from_state_dict",
]

N_EMG = 22  # bipolar Fridlund channels
EXPRESSION_DIM = 55  # SMIRK phi: 50 expression + 2 eyelid + 3 jaw
DEFAULT_HIDDEN = (256, 256)


class MLP(nn.Module):
    """Linear layers with ReLU between them and ``out_activation`` after the last."""

    def __init__(
        self, n_in: int, n_out: int, hidden: Sequence[int], out_activation: nn.Module
    ) -> None:
        super().__init__()
        self.n_in, self.n_out, self.hidden = n_in, n_out, tuple(int(h) for h in hidden)
        widths = [n_in, *self.hidden, n_out]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(pairwise(widths)):
            layers.append(nn.Linear(a, b))
            layers.append(nn.ReLU() if i < len(widths) - 2 else out_activation)
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def config(self) -> dict[str, object]:
        """Constructor arguments (for a bundle manifest)."""
        return {"n_in": self.n_in, "n_out": self.n_out, "hidden": list(self.hidden)}


class EMG2Exp(MLP):
    """Normalised EMG envelopes (N, 22) -> phi (N, 55) in (-1, 1)."""

    def __init__(
        self, n_in: int = N_EMG, n_out: int = EXPRESSION_DIM, hidden: Sequence[int] = DEFAULT_HIDDEN
    ) -> None:
        super().__init__(n_in, n_out, hidden, nn.Tanh())


class Exp2EMG(MLP):
    """phi (N, 55) -> normalised EMG envelopes (N, 22), non-negative."""

    def __init__(
        self, n_in: int = EXPRESSION_DIM, n_out: int = N_EMG, hidden: Sequence[int] = DEFAULT_HIDDEN
    ) -> None:
        super().__init__(n_in, n_out, hidden, nn.ReLU())


def _natural_key(key: str) -> list[object]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]


def linear_stack_shapes(state: Mapping[str, Tensor]) -> list[tuple[str, tuple[int, int]]]:
    """(prefix, (out, in)) of every Linear layer in ``state``, in layer order (natural sort of
    the key names, so ``net.10`` follows ``net.2``). BundleError if a tensor is not part of a
    Linear layer (weight 2-D with an optional matching 1-D bias)."""
    layers: dict[str, dict[str, Tensor]] = {}
    for key, value in state.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf not in ("weight", "bias"):
            raise BundleError(f"tensor {key!r} is not a Linear weight/bias; not a plain MLP")
        layers.setdefault(prefix, {})[leaf] = value
    result = []
    for prefix in sorted(layers, key=_natural_key):
        parts = layers[prefix]
        weight, bias = parts.get("weight"), parts.get("bias")
        if weight is None or weight.ndim != 2:
            raise BundleError(f"layer {prefix!r} has no 2-D weight; not a Linear layer")
        if bias is not None and tuple(bias.shape) != (weight.shape[0],):
            raise BundleError(
                f"layer {prefix!r}: bias {tuple(bias.shape)} vs weight {tuple(weight.shape)}"
            )
        result.append((prefix, (int(weight.shape[0]), int(weight.shape[1]))))
    return result


def load_linear_weights(
    model: MLP, state: Mapping[str, Tensor], source: str = "state dict"
) -> None:
    """Copy a plain Linear-stack state dict into ``model``, layer by layer in order. The shapes
    must agree exactly; BundleError lists the expected and found layer shapes otherwise."""
    found = linear_stack_shapes(state)
    linears = [m for m in model.net if isinstance(m, nn.Linear)]
    expected = [(m.out_features, m.in_features) for m in linears]
    if [s for _, s in found] != expected:
        raise BundleError(
            f"{source}: Linear layers {[s for _, s in found]} (out, in) do not match "
            f"{type(model).__name__} {expected}; build the model with matching widths "
            "(mlp_from_state_dict infers them)"
        )
    with torch.no_grad():
        for (prefix, _), layer in zip(found, linears, strict=True):
            layer.weight.copy_(state[f"{prefix}.weight"])
            if f"{prefix}.bias" in state:
                layer.bias.copy_(state[f"{prefix}.bias"])
            else:
                layer.bias.zero_()


def mlp_from_state_dict(
    cls: type[EMG2Exp] | type[Exp2EMG], state: Mapping[str, Tensor], source: str = "state dict"
) -> MLP:
    """Build ``cls`` with the widths found in ``state`` and load it (the authors' released
    weights come in an undocumented format; this accepts any plain Linear stack)."""
    found = [s for _, s in linear_stack_shapes(state)]
    if not found:
        raise BundleError(f"{source}: no Linear layers")
    for (out_a, _), (_, in_b) in pairwise(found):
        if out_a != in_b:
            raise BundleError(f"{source}: layer widths do not chain: {found}")
    model = cls(n_in=found[0][1], n_out=found[-1][0], hidden=[o for o, _ in found[:-1]])
    load_linear_weights(model, state, source)
    return model

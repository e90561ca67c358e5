"""Load SMIRK encoder checkpoints (``SMIRK_em1.pt`` and training snapshots) safely.

SMIRK saves a flat state dict whose keys start with ``smirk_encoder.`` (encoder) or
``smirk_generator.`` (generator); ``demo.py`` strips ``smirk_encoder.`` before
``SmirkEncoder.load_state_dict`` (research note eifer_smirk.md, "Checkpoint"). Our module names
match SMIRK's, so after prefix stripping keys map one to one. Files are read with
``torch.load(weights_only=True)`` (no arbitrary unpickling) or safetensors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from streaming.errors import BundleError

__all__ = [
    "ENCODER_PREFIXES",
    "IGNORED_PREFIXES",
    "LoadReport",
    "load_smirk_encoder",
    "read_state_dict",
]

# Stripped in this order (DataParallel's "module." first).
ENCODER_PREFIXES = ("module.", "smirk_encoder.")
# Parts of a SMIRK checkpoint that are not the encoder: skipped, counted, not "unexpected".
IGNORED_PREFIXES = ("smirk_generator.",)
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "encoder")


@dataclass(frozen=True)
class LoadReport:
    """What a checkpoint load did: every key is accounted for."""

    source: str
    loaded: int
    missing: list[str] = field(default_factory=list)  # model keys the file lacks
    unexpected: list[str] = field(default_factory=list)  # file keys the model lacks
    ignored: int = 0  # keys under IGNORED_PREFIXES (e.g. the generator)

    def summary(self) -> str:
        text = f"{self.source}: loaded {self.loaded} tensors"
        if self.ignored:
            text += f", ignored {self.ignored} (generator)"
        if self.missing:
            text += f", {len(self.missing)} missing (e.g. {self.missing[:3]})"
        if self.unexpected:
            text += f", {len(self.unexpected)} unexpected (e.g. {self.unexpected[:3]})"
        return text


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a ``.safetensors`` file or a ``torch.save`` file (weights only; a
    ``{"state_dict": ...}``-style wrapper is unwrapped). BundleError names the file on failure."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: object = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickle with non-tensor objects, ...
        raise BundleError(
            f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc}); expected a state "
            "dict saved with torch.save or a .safetensors file"
        ) from None
    for _ in range(2):
        if isinstance(state, Mapping):
            inner = next(
                (state[k] for k in WRAPPER_KEYS if isinstance(state.get(k), Mapping)), None
            )
            if inner is not None and not any(isinstance(v, Tensor) for v in state.values()):
                state = inner
    if not isinstance(state, Mapping):
        raise BundleError(f"{path}: holds a {type(state).__name__}, not a state dict")
    tensors = {str(k): v for k, v in state.items() if isinstance(v, Tensor)}
    if not tensors:
        raise BundleError(f"{path}: state dict holds no tensors")
    return tensors


def _strip(key: str) -> str:
    for prefix in ENCODER_PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def load_smirk_encoder(
    encoder: nn.Module, source: str | Path | Mapping[str, Tensor], *, strict: bool = False
) -> LoadReport:
    """Copy a SMIRK checkpoint into ``encoder`` (a :class:`~eifer_models.encoders.SmirkEncoder`
    or one sub-encoder whose keys match after prefix stripping).

    Raises BundleError when no key matches (wrong file), when a tensor's shape differs (names
    the key and both shapes; e.g. a different expression dimension), or, with ``strict``, when
    keys are missing.
    """
    name = str(source) if not isinstance(source, Mapping) else "state dict"
    state = read_state_dict(source) if not isinstance(source, Mapping) else dict(source)
    target = encoder.state_dict()
    ignored = sum(1 for k in state if k.startswith(IGNORED_PREFIXES))
    mapped = {_strip(k): v for k, v in state.items() if not k.startswith(IGNORED_PREFIXES)}
    matched = {k: v for k, v in mapped.items() if k in target}
    if not matched:
        raise BundleError(
            f"{name}: no key matches the encoder (file keys e.g. {sorted(state)[:3]}, expected "
            f"e.g. {sorted(target)[:3]} after stripping {ENCODER_PREFIXES}); is this a SMIRK "
            "encoder checkpoint?"
        )
    for key, value in matched.items():
        if tuple(value.shape) != tuple(target[key].shape):
            raise BundleError(
                f"{name}: tensor {key!r} has shape {tuple(value.shape)}, the encoder needs "
                f"{tuple(target[key].shape)} (different expression/shape dimension?)"
            )
    missing = sorted(k for k in target if k not in matched)
    unexpected = sorted(k for k in mapped if k not in target)
    if strict and missing:
        raise BundleError(f"{name}: {len(missing)} encoder tensors missing, e.g. {missing[:5]}")
    encoder.load_state_dict(matched, strict=False)
    return LoadReport(name, len(matched), missing, unexpected, ignored)

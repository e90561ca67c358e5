"""Loading SMIRK checkpoints: key mapping, generator keys skipped, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from eifer_models.checkpoints import load_smirk_encoder, read_state_dict
from eifer_models.encoders import SmirkEncoder
from streaming.errors import BundleError

SMIRK_KEYS = json.loads((Path(__file__).parent / "fixtures" / "smirk_em1_keys.json").read_text())


def _smirk_style_checkpoint(seed: int = 1) -> dict[str, torch.Tensor]:
    """A checkpoint with exactly the key names and shapes of the published ``SMIRK_em1.pt``
    (written down in ``fixtures/smirk_em1_keys.json``, independent of this project's encoder
    code), random values, plus generator keys (SMIRK saves both, flat)."""
    generator = torch.Generator().manual_seed(seed)
    state = {
        key: torch.zeros((), dtype=torch.long)
        if key.endswith("num_batches_tracked")
        else torch.randn(shape, generator=generator) * 0.05
        for key, shape in SMIRK_KEYS["encoder"].items()
    }
    state["smirk_generator.encoder1.enc1conv1.weight"] = torch.zeros(32, 6, 3, 3)
    state["smirk_generator.conv.bias"] = torch.zeros(3)
    return state


def test_the_written_down_smirk_key_list_is_the_published_one():
    keys = SMIRK_KEYS["encoder"]
    assert len(keys) == 762 and all(k.startswith("smirk_encoder.") for k in keys)
    # spot values stated in the research note (eifer_smirk.md, "Checkpoint")
    assert keys["smirk_encoder.pose_encoder.encoder.blocks.1.0.conv_pw.weight"] == [72, 16, 1, 1]
    assert keys["smirk_encoder.pose_encoder.encoder.blocks.5.0.conv.weight"] == [576, 96, 1, 1]
    assert keys["smirk_encoder.expression_encoder.expression_layers.0.weight"] == [55, 960]


def test_smirk_checkpoint_loads_key_for_key_and_skips_the_generator(tmp_path):
    state = _smirk_style_checkpoint()
    path = tmp_path / "SMIRK_em1.pt"
    torch.save(state, path)
    enc = SmirkEncoder().eval()
    report = load_smirk_encoder(enc, path, strict=True)
    assert report.loaded == 762 and report.ignored == 2
    assert report.missing == [] and report.unexpected == []
    loaded = enc.state_dict()
    key = "pose_encoder.encoder.blocks.1.0.conv_pw.weight"
    assert torch.equal(loaded[key], state[f"smirk_encoder.{key}"])
    assert "loaded 762" in report.summary()


def test_safetensors_and_dataparallel_prefixes_load(tmp_path):
    state = {f"module.{k}": v.contiguous() for k, v in _smirk_style_checkpoint().items()}
    path = tmp_path / "enc.safetensors"
    save_file(state, str(path))
    report = load_smirk_encoder(SmirkEncoder(), path, strict=True)
    assert report.loaded == 762


def test_partial_checkpoint_reports_missing_and_unexpected_keys():
    state = _smirk_style_checkpoint()
    del state["smirk_encoder.shape_encoder.shape_layers.0.weight"]
    state["smirk_encoder.pose_encoder.encoder.conv_head.weight"] = torch.zeros(1024, 576, 1, 1)
    report = load_smirk_encoder(SmirkEncoder(), state)
    assert report.missing == ["shape_encoder.shape_layers.0.weight"]
    assert report.unexpected == ["pose_encoder.encoder.conv_head.weight"]
    with pytest.raises(BundleError, match="1 encoder tensors missing"):
        load_smirk_encoder(SmirkEncoder(), state, strict=True)


def test_unrelated_checkpoint_is_rejected_with_the_keys_it_has(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(BundleError, match=r"no key matches the encoder.*fc\.weight"):
        load_smirk_encoder(SmirkEncoder(), path)


def test_wrong_expression_dimension_names_the_tensor_and_shapes():
    state = _smirk_style_checkpoint()
    for suffix, shape in [("weight", (25, 960)), ("bias", (25,))]:  # a 20-expression checkpoint
        state[f"smirk_encoder.expression_encoder.expression_layers.0.{suffix}"] = torch.zeros(shape)
    with pytest.raises(BundleError, match=r"expression_layers.0.weight.*\(25, 960\).*\(55, 960\)"):
        load_smirk_encoder(SmirkEncoder(n_exp=50), state)


def test_pickled_objects_are_refused_not_executed(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("unpickled!",))

    path = tmp_path / "evil.pt"
    torch.save({"x": Payload()}, path)
    with pytest.raises(BundleError, match="cannot read checkpoint"):
        read_state_dict(path)


def test_missing_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(BundleError, match="not found"):
        read_state_dict(tmp_path / "absent.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(BundleError, match=r"bad\.pt"):
        read_state_dict(bad)


def test_wrapped_state_dict_is_unwrapped(tmp_path):
    path = tmp_path / "wrapped.pt"
    torch.save({"state_dict": _smirk_style_checkpoint(), "epoch": 3}, path)
    assert len(read_state_dict(path)) == 764

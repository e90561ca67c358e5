"""Model bundles: round trip, manifest contents, and clear errors for every kind of damage."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from eifer_models.bundle import FORMAT_VERSION, create_demo_bundle, load_bundle, sha256_file
from eifer_models.mlp import EMG2Exp
from streaming.acquisition.electrodes import load_scheme
from streaming.errors import BundleError


@pytest.fixture(scope="module")
def demo(demo_bundle_factory):
    return demo_bundle_factory()


@pytest.fixture
def copy(demo, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(demo.path, dst)
    return dst


def _edit_manifest(path, edit):
    data = json.loads((path / "manifest.json").read_text())
    edit(data)
    (path / "manifest.json").write_text(json.dumps(data))


def test_demo_bundle_round_trips_with_a_complete_manifest(demo):
    bundle = load_bundle(demo.path)
    m = bundle.manifest
    assert m.format_version == FORMAT_VERSION and m.trained is False
    assert "UNTRAINED" in m.description and "UNTRAINED" in bundle.summary()
    assert (m.expression_dim, m.n_exp, m.n_shape) == (55, 50, 300)
    assert m.emg_channels == [f"F{i}" for i in range(1, 23)]
    assert m.emg_channels == load_scheme("fridlund").labels  # the EMG node's default labels
    assert bundle.feature_definition().name == "low_latency"
    assert m.input_normalisation["image"]["range"] == [0.0, 1.0]
    assert set(m.files) == {
        f"{g}.{ext}" for g in ("encoders", "emg2exp", "exp2emg") for ext in ("onnx", "safetensors")
    }
    assert all(sha256_file(demo.path / f) == d for f, d in m.files.items())
    _, outputs = bundle.io("encoders")
    assert [s.name for s in outputs] == ["pose", "shape", "expression"]


def test_modules_rebuilt_from_the_bundle_equal_the_seeded_models(demo, tmp_path):
    again = create_demo_bundle(tmp_path / "again", seed=0, fp16_onnx=False)
    for graph in ("emg2exp", "exp2emg"):
        a, b = demo.build_module(graph), again.build_module(graph)
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert ka == kb and torch.equal(va, vb)
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        pose, shape, phi = demo.build_module("encoders")(x)
    assert (pose.shape, shape.shape, phi.shape) == ((1, 6), (1, 300), (1, 55))


def test_corrupted_weights_fail_the_checksum_naming_the_file(copy):
    with (copy / "emg2exp.safetensors").open("r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00\x01\x02")
    with pytest.raises(BundleError, match=r"emg2exp.safetensors: sha256 .* does not match"):
        load_bundle(copy)


def test_manifest_checksum_mismatch_and_missing_file_are_named(copy):
    _edit_manifest(copy, lambda d: d["files"].__setitem__("exp2emg.onnx", "0" * 64))
    with pytest.raises(BundleError, match=r"exp2emg\.onnx: sha256"):
        load_bundle(copy)
    (copy / "exp2emg.onnx").unlink()
    with pytest.raises(BundleError, match=r"exp2emg\.onnx: missing"):
        load_bundle(copy)


def test_wrong_declared_shape_is_rejected(copy):
    def edit(d):
        d["graphs"]["emg2exp"]["outputs"][0]["shape"] = [1, 54]

    _edit_manifest(copy, edit)
    with pytest.raises(
        BundleError, match=r"graphs.emg2exp.outputs.expression shape \[1, 54\], expected \[1, 55\]"
    ):
        load_bundle(copy)


def test_weights_of_the_wrong_shape_name_the_tensor(copy):
    torch.manual_seed(0)
    other = EMG2Exp(hidden=(128, 256))
    save_file(dict(other.state_dict()), str(copy / "emg2exp.safetensors"))
    _edit_manifest(
        copy,
        lambda d: d["files"].__setitem__(
            "emg2exp.safetensors", sha256_file(copy / "emg2exp.safetensors")
        ),
    )
    with pytest.raises(
        BundleError, match=r"emg2exp.safetensors: tensor 'net.0.weight' has shape \(128, 22\)"
    ):
        load_bundle(copy)


def test_version_and_format_problems_are_clear(copy, tmp_path):
    _edit_manifest(copy, lambda d: d.__setitem__("format_version", 99))
    with pytest.raises(BundleError, match="format_version 99 not supported"):
        load_bundle(copy)
    _edit_manifest(
        copy, lambda d: (d.__setitem__("format_version", FORMAT_VERSION), d.pop("emg_channels"))
    )
    with pytest.raises(BundleError, match="emg_channels: Field required"):
        load_bundle(copy)
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"manifest\.json: not valid JSON"):
        load_bundle(copy)
    with pytest.raises(BundleError, match="missing; not a model bundle"):
        load_bundle(tmp_path)
    with pytest.raises(BundleError, match="not found"):
        load_bundle(tmp_path / "nowhere")


def test_saving_over_an_existing_bundle_needs_overwrite(demo):
    with pytest.raises(BundleError, match="not empty"):
        create_demo_bundle(demo.path, fp16_onnx=False)


def test_bundle_weights_and_onnx_agree(demo):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(demo.onnx_path("exp2emg")), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(1, 55)).astype(np.float32)
    (out,) = sess.run(None, {"expression": x})
    state = load_file(str(demo.path / "exp2emg.safetensors"))
    module = demo.build_module("exp2emg")
    assert set(state) == set(module.state_dict())
    with torch.no_grad():
        assert np.abs(module(torch.from_numpy(x)).numpy() - out).max() < 1e-5


@pytest.mark.slow
def test_build_engine_cli_writes_a_demo_bundle_and_reports_the_backend(tmp_path, capsys):
    from nodes.cli import main

    target = tmp_path / "cli_bundle"
    assert main(["build-engine", str(target), "--create-demo", "--seed", "2"]) == 0
    printed = capsys.readouterr().out
    assert "UNTRAINED" in printed
    assert load_bundle(target).manifest.trained is False
    if not torch.cuda.is_available():
        assert "TensorRT engines not built" in printed and "would use: onnxruntime" in printed
        assert main(["build-engine", str(target)]) == 2  # nothing to build here
    assert main(["build-engine", str(tmp_path / "absent")]) == 1  # clear one-line error

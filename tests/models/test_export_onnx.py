"""ONNX export: the encoders as one graph and each MLP, parity with ONNX Runtime, FP16 variant."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from eifer_models.encoders import SmirkEncoder
from eifer_models.export import export_encoders, export_mlp, onnx_io
from eifer_models.mlp import EMG2Exp, Exp2EMG

# Parity of the float32 graphs with eager torch on the CPU. The randomised encoder's outputs reach
# ~1e3 (random BN statistics), so the encoder bound is relative to the largest output: measured
# here max abs error pose 5e-9, shape 4e-4 (of 987), expression 8e-5 (of 280), i.e. relative
# <= 5e-7. MLP outputs are O(1): absolute error measured ~1e-7.
MAX_REL_ERROR_FP32 = 1e-5
MAX_ABS_ERROR_FP32 = 1e-5
# FP16 graph (weights and activations in half precision) vs float32 torch: measured max abs
# error 2.2 of 987 on shape, 0.37 of 280 on expression: relative 2e-3.
MAX_REL_ERROR_FP16 = 1e-2


@pytest.fixture(scope="module")
def encoder() -> SmirkEncoder:
    torch.manual_seed(0)
    enc = SmirkEncoder().eval()
    with torch.no_grad():  # non-trivial heads and BN statistics so parity means something
        for m in enc.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        enc.shape_encoder.shape_layers[0].weight.normal_(0, 0.05)
        enc.expression_encoder.expression_layers[0].weight.normal_(0, 0.05)
    return enc


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_encoders_export_as_one_checked_graph_matching_torch(encoder, tmp_path):
    path = export_encoders(encoder, tmp_path / "encoders.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    io = onnx_io(path)
    assert list(io["inputs"]) == ["image"] and io["inputs"]["image"]["shape"] == [1, 3, 224, 224]
    assert list(io["outputs"]) == ["pose", "shape", "expression"]
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        ref = [t.numpy() for t in encoder.forward_tensors(x)]
    out = _session(path).run(None, {"image": x.numpy()})
    errors = [float(np.abs(r - o).max()) for r, o in zip(ref, out, strict=True)]
    relative = [e / float(np.abs(r).max()) for e, r in zip(errors, ref, strict=True)]
    print("encoders ONNX Runtime vs torch, max abs error (pose, shape, expression):", errors)
    assert max(relative) < MAX_REL_ERROR_FP32
    assert [o.shape for o in out] == [(1, 6), (1, 300), (1, 55)]


def test_dynamic_batch_export_runs_other_batch_sizes(tmp_path):
    torch.manual_seed(1)
    mlp = Exp2EMG().eval()
    path = export_mlp(mlp, tmp_path / "exp2emg.onnx", "expression", "emg", dynamic_batch=True)
    assert onnx_io(path)["inputs"]["expression"]["shape"] == [None, 55]
    x = torch.randn(5, 55)
    (out,) = _session(path).run(None, {"expression": x.numpy()})
    with torch.no_grad():
        err = float(np.abs(out - mlp(x).numpy()).max())
    assert out.shape == (5, 22) and err < MAX_ABS_ERROR_FP32


def test_mlp_graphs_match_torch(tmp_path):
    torch.manual_seed(2)
    for mlp, i_name, o_name, n in (
        (EMG2Exp(), "emg", "expression", 22),
        (Exp2EMG(), "expression", "emg", 55),
    ):
        path = export_mlp(mlp.eval(), tmp_path / f"{o_name}.onnx", i_name, o_name)
        x = torch.rand(1, n)
        (out,) = _session(path).run(None, {i_name: x.numpy()})
        with torch.no_grad():
            err = float(np.abs(out - mlp(x).numpy()).max())
        print(f"{type(mlp).__name__} ONNX max abs error {err:.1e}")
        assert err < MAX_ABS_ERROR_FP32


def test_fp16_graph_keeps_float32_io_and_half_weights(encoder, tmp_path):
    path = export_encoders(encoder, tmp_path / "encoders_fp16.onnx", half=True)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    io = onnx_io(path)
    assert io["inputs"]["image"]["dtype"] == "float32"
    assert {v["dtype"] for v in io["outputs"].values()} == {"float32"}
    dtypes = {init.data_type for init in model.graph.initializer if len(init.dims) == 4}
    assert dtypes == {onnx.TensorProto.FLOAT16}  # every conv weight in half precision
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        ref = [t.numpy() for t in encoder.forward_tensors(x)]
    out = _session(path).run(None, {"image": x.numpy()})
    errors = [float(np.abs(r - o).max()) for r, o in zip(ref, out, strict=True)]
    relative = [e / float(np.abs(r).max()) for e, r in zip(errors, ref, strict=True)]
    print("FP16 encoders graph vs float32 torch, max abs error (pose, shape, expression):", errors)
    assert max(relative) < MAX_REL_ERROR_FP16

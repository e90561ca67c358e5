"""Runtimes: one interface over ONNX Runtime, torch-CUDA and TensorRT; automatic selection."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from eifer_models.runtimes.base import BackendUnavailableError
from eifer_models.runtimes.onnxruntime_backend import OnnxRuntimeBackend
from eifer_models.runtimes.select import backend_status, open_runtime, select_backend
from eifer_models.runtimes.tensorrt_backend import engine_key, engine_matches
from eifer_models.runtimes.torch_cuda_backend import TorchCudaBackend
from streaming.config import ConfigError

HAS_CUDA = torch.cuda.is_available()
HAS_TRT = importlib.util.find_spec("tensorrt") is not None and HAS_CUDA


@pytest.fixture(scope="module")
def bundle(demo_bundle_factory):
    return demo_bundle_factory(fp16_onnx=HAS_TRT)


@pytest.mark.skipif(HAS_CUDA, reason="checks the CPU-only choice")
def test_selection_on_a_cpu_machine_picks_onnxruntime_and_says_why(bundle):
    sel = select_backend(bundle)
    assert sel.backend == "onnxruntime"
    assert "tensorrt" in sel.rejected and "torch-cuda" in sel.rejected
    assert "torch.cuda.is_available() is False" in sel.rejected["torch-cuda"]
    text = sel.describe()
    assert text.startswith("backend onnxruntime: ONNX Runtime on the CPU") and "passed over" in text
    assert backend_status(bundle)["onnxruntime"] is None


@pytest.mark.skipif(HAS_CUDA, reason="checks the CPU-only refusal")
def test_requesting_an_unavailable_backend_fails_with_the_reason(bundle):
    with pytest.raises(BackendUnavailableError, match=r"'torch-cuda' requested but torch\.cuda"):
        select_backend(bundle, "torch-cuda")
    with pytest.raises(BackendUnavailableError, match="tensorrt"):
        select_backend(bundle, "tensorrt")


def test_explicit_override_and_unknown_names(bundle):
    assert select_backend(bundle, "onnxruntime").reason == "requested explicitly"
    with pytest.raises(ConfigError, match="'cuda' unknown"):
        select_backend(bundle, "cuda")


def test_onnxruntime_runtime_runs_a_graph_and_checks_its_inputs(bundle):
    runtime, note = open_runtime(bundle, "emg2exp", "onnxruntime", threads=1)
    assert isinstance(runtime, OnnxRuntimeBackend) and runtime.device == "cpu"
    assert "emg2exp.onnx" in note
    runtime.warm_up(1)
    x = np.random.default_rng(0).random((1, 22), dtype=np.float32)
    out = runtime.run({"emg": x})
    with torch.no_grad():
        ref = bundle.build_module("emg2exp")(torch.from_numpy(x)).numpy()
    assert list(out) == ["expression"] and out["expression"].dtype == np.float32
    assert np.abs(out["expression"] - ref).max() < 1e-5
    with pytest.raises(ValueError, match=r"input 'emg' has shape \(1, 21\), expected \(1, 22\)"):
        runtime.run({"emg": x[:, :21]})
    with pytest.raises(ValueError, match="unknown input"):
        runtime.run({"emg": x, "other": x})
    with pytest.raises(ValueError, match="'emg' missing"):
        runtime.run({})


def test_engine_sidecar_mismatch_names_the_field():
    meta = {
        "tensorrt_version": "10.13.0",
        "gpu": "NVIDIA H100",
        "compute_capability": "9.0",
        "onnx_sha256": "a",
    }
    assert engine_matches(meta, dict(meta)) is None
    why = engine_matches(meta, {**meta, "tensorrt_version": "11.4.0"})
    assert why is not None and why.startswith("tensorrt_version")
    assert engine_key("10.13.0", "NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3-trt10.13.0"


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_torch_backend_eager_on_cpu_matches_onnxruntime(bundle, dtype):
    # the torch-cuda backend's data handling, run eagerly on the CPU (no streams, no graph)
    ort_rt, _ = open_runtime(bundle, "encoders", "onnxruntime", threads=1)
    inputs, outputs = bundle.io("encoders")
    rt = TorchCudaBackend(
        bundle.build_module("encoders"), inputs, outputs, graph="encoders", dtype=dtype,
        cuda_graph=False, device="cpu",
    )  # fmt: skip
    assert (rt.name, rt.device, rt.captured) == ("torch-cpu", "cpu", False)
    x = np.random.default_rng(4).random((1, 3, 224, 224), dtype=np.float32)
    ref, out = ort_rt.run({"image": x}), rt.run({"image": x})
    assert [o.name for o in outputs] == list(out) and out["expression"].dtype == np.float32
    rel = max(float(np.abs(out[k] - ref[k]).max() / max(np.abs(ref[k]).max(), 1e-6)) for k in ref)
    print(f"torch cpu {dtype} vs ONNX Runtime: max relative error {rel:.1e}")
    assert rel < (1e-5 if dtype == "float32" else 5e-2)
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        TorchCudaBackend(bundle.build_module("exp2emg"), *bundle.io("exp2emg"), device="cpu")


def test_torch_backend_runs_other_batch_sizes_eagerly(bundle):
    from eifer_models.runtimes.base import TensorSpec

    inputs = (TensorSpec("expression", (None, 55)),)
    outputs = (TensorSpec("emg", (None, 22)),)
    rt = TorchCudaBackend(
        bundle.build_module("exp2emg"),
        inputs,
        outputs,
        dtype="float32",
        cuda_graph=False,
        device="cpu",
    )
    x = np.random.default_rng(5).normal(size=(4, 55)).astype(np.float32)
    with torch.no_grad():
        ref = bundle.build_module("exp2emg")(torch.from_numpy(x)).numpy()
    out = rt.run({"expression": x})["emg"]
    assert out.shape == (4, 22) and np.abs(out - ref).max() < 1e-6


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_torch_cuda_graph_replay_matches_onnxruntime(bundle, dtype):
    ort_rt, _ = open_runtime(bundle, "encoders", "onnxruntime")
    cuda_rt, _ = open_runtime(bundle, "encoders", "torch-cuda", dtype=dtype)
    x = np.random.default_rng(1).random((1, 3, 224, 224), dtype=np.float32)
    ref = ort_rt.run({"image": x})
    for _ in range(3):  # first call captures, later calls replay
        out = cuda_rt.run({"image": x})
    assert cuda_rt.captured
    err = max(float(np.abs(out[k] - ref[k]).max()) for k in ref)
    print(f"torch-cuda {dtype} (CUDA graph) vs ONNX Runtime fp32: max abs error {err:.2e}")
    assert err < (0.15 if dtype == "float16" else 0.5)
    other = cuda_rt.run({"image": np.zeros_like(x)})  # graph input really changes per call
    assert not np.allclose(other["expression"], out["expression"])


@pytest.mark.tensorrt
@pytest.mark.skipif(not HAS_TRT, reason="needs tensorrt and CUDA")
def test_tensorrt_engine_is_built_cached_and_matches_onnxruntime(bundle):
    ort_rt, _ = open_runtime(bundle, "encoders", "onnxruntime")
    trt_rt, note = open_runtime(bundle, "encoders", "tensorrt")
    assert note.startswith("built engine")
    x = np.random.default_rng(2).random((1, 3, 224, 224), dtype=np.float32)
    ref, out = ort_rt.run({"image": x}), trt_rt.run({"image": x})
    assert max(float(np.abs(out[k] - ref[k]).max()) for k in ref) < 0.15
    _, note_again = open_runtime(bundle, "encoders", "tensorrt")
    assert note_again.startswith("loaded engine")


# --- engines: only plans this machine built are loaded -----------------------------------------


def _write_engine(folder, meta, plan=b"serialized-engine-bytes", key=None):
    from eifer_models.runtimes.engine_trust import SIGNATURE_FIELD, sign_engine

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "encoders.plan").write_bytes(plan)
    meta = dict(meta)
    if key is not None:
        meta[SIGNATURE_FIELD] = sign_engine(plan, meta, key)
    (folder / "encoders.json").write_text(json.dumps(meta))
    return folder / "encoders.plan"


ENGINE_META = {
    "tensorrt_version": "10.13.0",
    "gpu": "NVIDIA H200",
    "compute_capability": "9.0",
    "onnx_sha256": "abc",
    "precision": "fp16-flag",
}


def test_a_plan_signed_by_this_machine_and_matching_is_loadable(tmp_path):
    from eifer_models.runtimes.engine_trust import machine_key
    from eifer_models.runtimes.tensorrt_backend import stale_engine_reason

    key = machine_key(tmp_path / "key")
    plan = _write_engine(tmp_path / "engines", ENGINE_META, key=key)
    assert stale_engine_reason(plan, ENGINE_META, key) is None
    assert machine_key(tmp_path / "key") == key  # created once, then reused
    assert (tmp_path / "key").stat().st_mode & 0o777 == 0o600


def test_a_plan_that_arrived_inside_a_bundle_is_never_loaded(tmp_path):
    from eifer_models.runtimes.engine_trust import machine_key
    from eifer_models.runtimes.tensorrt_backend import stale_engine_reason

    ours, theirs = machine_key(tmp_path / "ours"), machine_key(tmp_path / "theirs")
    assert ours != theirs
    unsigned = _write_engine(tmp_path / "a", ENGINE_META)
    assert "no signature" in stale_engine_reason(unsigned, ENGINE_META, ours)
    foreign = _write_engine(tmp_path / "b", ENGINE_META, key=theirs)  # same GPU, other machine
    assert "does not verify" in stale_engine_reason(foreign, ENGINE_META, ours)
    tampered = _write_engine(tmp_path / "c", ENGINE_META, key=ours)
    tampered.write_bytes(b"another plan with the same sidecar")
    assert "does not verify" in stale_engine_reason(tampered, ENGINE_META, ours)


def test_an_engine_of_another_precision_gpu_or_onnx_is_rebuilt(tmp_path):
    from eifer_models.runtimes.engine_trust import machine_key
    from eifer_models.runtimes.tensorrt_backend import engine_precision, stale_engine_reason

    key = machine_key(tmp_path / "key")
    plan = _write_engine(tmp_path / "engines", ENGINE_META, key=key)
    for field, value in [("precision", "fp32"), ("gpu", "NVIDIA H100"), ("onnx_sha256", "d")]:
        why = stale_engine_reason(plan, {**ENGINE_META, field: value}, key)
        assert why is not None and why.startswith(field)
    assert stale_engine_reason(tmp_path / "none.plan", ENGINE_META, key) == "no engine yet"
    (tmp_path / "engines" / "encoders.json").write_text("{not json")
    assert "unreadable sidecar" in stale_engine_reason(plan, ENGINE_META, key)
    assert engine_precision(10, True, False) == "fp16-flag"
    assert engine_precision(11, True, True) == "fp16-onnx"
    assert engine_precision(11, True, False) == "fp32"  # TRT 11 without an FP16 graph
    assert engine_precision(10, False, False) == "fp32"


# --- per-graph fallback --------------------------------------------------------------------------


def test_a_graph_whose_backend_fails_to_open_falls_back_and_says_so(bundle):
    from eifer_models.runtimes.select import Selection, open_graph_with_fallback

    # torch-cuda selected (as on a GPU machine); here it fails to open for real (no CUDA)
    opened = open_graph_with_fallback(bundle, "exp2emg", Selection("torch-cuda", "test"))
    if HAS_CUDA:
        assert opened.backend == "torch-cuda" and not opened.failed
        return
    assert opened.backend == "onnxruntime" and isinstance(opened.runtime, OnnxRuntimeBackend)
    assert [b for b, _ in opened.failed] == ["torch-cuda"]
    assert "torch.cuda.is_available() is False" in opened.failed[0][1]
    assert "fell back from torch-cuda" in opened.describe()
    out = opened.runtime.run({"expression": np.zeros((1, 55), np.float32)})
    assert out["emg"].shape == (1, 22)


@pytest.mark.skipif(HAS_CUDA, reason="checks the refusal without CUDA")
def test_an_explicit_backend_request_does_not_fall_back(bundle):
    from eifer_models.runtimes.select import Selection, open_graph_with_fallback

    with pytest.raises(BackendUnavailableError, match="no backend could open graph 'exp2emg'"):
        open_graph_with_fallback(
            bundle, "exp2emg", Selection("torch-cuda", "requested explicitly"), fallback=False
        )

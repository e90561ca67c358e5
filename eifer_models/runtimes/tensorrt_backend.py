"""TensorRT engines: build from ONNX (offline), cache per GPU and TensorRT version, run on torch
CUDA tensors with ``execute_async_v3``.

Written against the TensorRT 10/11 Python API as documented (research note
inference_and_peers.md, sections 1 and 2): named I/O tensors, ``build_serialized_network``,
``set_memory_pool_limit``, a timing cache file, ``set_tensor_address`` + ``execute_async_v3`` on a
non-default stream. Precision: TensorRT 10 builds the float32 ONNX with ``BuilderFlag.FP16``;
TensorRT 11 removed that flag and is always strongly typed, so it builds the FP16 ONNX
(half-precision graph exported by :mod:`eifer_models.export`) when the bundle has one.

Engines only load on the TensorRT version and GPU they were built for, so they live under
``engines/<gpu>-trt<version>/<graph>.plan`` with a ``<graph>.json`` sidecar (TensorRT version,
GPU, compute capability, ONNX sha256, precision); a mismatching sidecar, a changed ONNX or a plan
that ``deserialize_cuda_engine`` rejects (returns None) is rebuilt from the ONNX.

TensorRT's runtime is not obtainable on the development machines: this module imports
``tensorrt`` lazily, and its tests are marked ``tensorrt``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eifer_models.runtimes.base import BackendUnavailableError, Runtime, TensorSpec, check_inputs

__all__ = [
    "TensorRTBackend",
    "build_engine",
    "engine_key",
    "engine_matches",
    "load_or_build",
    "tensorrt_unavailable",
]

log = logging.getLogger(__name__)
DEFAULT_WORKSPACE_BYTES = 1 << 30


def tensorrt_unavailable() -> str | None:
    """None when TensorRT and a CUDA device are usable, else why not."""
    try:
        import tensorrt  # noqa: F401
    except Exception as exc:  # ImportError, or a wheel whose runtime libraries are missing
        return f"tensorrt does not import ({type(exc).__name__}: {exc})"
    if not torch.cuda.is_available():
        return "tensorrt imports but torch sees no CUDA device"
    return None


def _trt() -> Any:
    reason = tensorrt_unavailable()
    if reason:
        raise BackendUnavailableError(reason)
    import tensorrt as trt

    return trt


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def gpu_identity(index: int = 0) -> dict[str, str]:
    props = torch.cuda.get_device_properties(index)
    return {"gpu": props.name, "compute_capability": f"{props.major}.{props.minor}"}


def engine_key(trt_version: str, gpu_name: str) -> str:
    """Folder name under ``engines/``, e.g. ``nvidia-h100-80gb-hbm3-trt10.13.3.9``."""
    return f"{_slug(gpu_name)}-trt{trt_version}"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def engine_matches(meta: Mapping[str, Any], expected: Mapping[str, Any]) -> str | None:
    """None when the sidecar ``meta`` fits ``expected`` (TensorRT version, GPU, compute
    capability, ONNX checksum), else the first difference."""
    for key in ("tensorrt_version", "gpu", "compute_capability", "onnx_sha256"):
        if meta.get(key) != expected.get(key):
            return f"{key}: engine has {meta.get(key)!r}, this machine/bundle needs {expected.get(key)!r}"
    return None


def build_engine(
    onnx_path: str | Path,
    plan_path: str | Path,
    *,
    fp16: bool = True,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    timing_cache: str | Path | None = None,
) -> dict[str, Any]:
    """Parse ``onnx_path``, build a serialized engine, write ``plan_path`` and its ``.json``
    sidecar; returns the sidecar. ``fp16`` sets ``BuilderFlag.FP16`` on TensorRT < 11; on 11+
    the precision is the ONNX graph's (pass the FP16 graph)."""
    trt = _trt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    flags = 0
    if major >= 11 or not fp16:
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise BackendUnavailableError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    precision = "onnx-typed"
    if fp16 and major < 11:
        config.set_flag(trt.BuilderFlag.FP16)
        precision = "fp16-flag"
    cache_path = Path(timing_cache) if timing_cache else None
    cache_bytes = cache_path.read_bytes() if cache_path and cache_path.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, True)
    t0 = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise BackendUnavailableError(f"TensorRT failed to build an engine from {onnx_path}")
    plan_path = Path(plan_path)
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_bytes(bytes(plan))
    if cache_path:
        cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    meta = {
        "tensorrt_version": trt.__version__,
        **gpu_identity(),
        "onnx": Path(onnx_path).name,
        "onnx_sha256": sha256_file(onnx_path),
        "precision": precision,
        "workspace_bytes": workspace_bytes,
        "build_s": round(time.perf_counter() - t0, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    plan_path.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    return meta


_TORCH_OF_TRT = {
    "FLOAT": torch.float32,
    "HALF": torch.float16,
    "BF16": torch.bfloat16,
    "INT32": torch.int32,
    "INT64": torch.int64,
    "BOOL": torch.bool,
}


class TensorRTBackend(Runtime):
    """A deserialized engine with preallocated CUDA tensors bound once by address."""

    name = "tensorrt"

    def __init__(self, plan_path: str | Path, graph: str = "") -> None:
        trt = _trt()
        self.graph = graph or Path(plan_path).stem
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        engine = self._runtime.deserialize_cuda_engine(Path(plan_path).read_bytes())
        if engine is None:  # version tag or device mismatch (logged by TensorRT)
            raise BackendUnavailableError(
                f"{plan_path}: TensorRT {trt.__version__} cannot load this engine (built for "
                "another TensorRT version or GPU); rebuild it with `eifer build-engine`"
            )
        self._engine = engine
        self._context = engine.create_execution_context()
        self.device = f"cuda:0 ({torch.cuda.get_device_name(0)}, TensorRT {trt.__version__})"
        self._stream = torch.cuda.Stream()
        self._tensors: dict[str, torch.Tensor] = {}
        inputs, outputs = [], []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            shape = tuple(int(d) for d in engine.get_tensor_shape(name))
            dtype = _TORCH_OF_TRT[engine.get_tensor_dtype(name).name]
            spec = TensorSpec(name, tuple(None if d < 0 else d for d in shape), "float32")
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (inputs if is_input else outputs).append(spec)
            concrete = tuple(1 if d < 0 else d for d in shape)
            if is_input:
                self._context.set_input_shape(name, concrete)
            self._tensors[name] = torch.empty(concrete, dtype=dtype, device="cuda")
        for spec in outputs:  # output shapes resolved after the input shapes are set
            shape = tuple(int(d) for d in self._context.get_tensor_shape(spec.name))
            self._tensors[spec.name] = torch.empty(
                shape, dtype=self._tensors[spec.name].dtype, device="cuda"
            )
        for name, tensor in self._tensors.items():
            self._context.set_tensor_address(name, tensor.data_ptr())
        self.inputs, self.outputs = tuple(inputs), tuple(outputs)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = check_inputs(self.inputs, inputs, self.graph)
        for name, array in feed.items():
            if array.shape != tuple(self._tensors[name].shape):
                raise ValueError(
                    f"{self.graph}: input {name!r} shape {array.shape} differs from the engine's "
                    f"bound shape {tuple(self._tensors[name].shape)}"
                )
        with torch.cuda.stream(self._stream):
            for name, array in feed.items():
                self._tensors[name].copy_(torch.from_numpy(array), non_blocking=False)
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError(f"{self.graph}: TensorRT execute_async_v3 failed")
            host = {s.name: self._tensors[s.name].float().cpu() for s in self.outputs}
        self._stream.synchronize()
        return {n: t.numpy().copy() for n, t in host.items()}

    def close(self) -> None:
        self._context = None
        self._engine = None


def load_or_build(
    onnx_path: str | Path,
    engines_root: str | Path,
    graph: str,
    *,
    fp16_onnx_path: str | Path | None = None,
    fp16: bool = True,
    force: bool = False,
) -> tuple[TensorRTBackend, str]:
    """The engine for ``graph`` under ``engines_root/<gpu>-trt<version>/``, rebuilt when absent,
    stale or unloadable; returns the backend and what happened (for the log)."""
    trt = _trt()
    ident = gpu_identity()
    folder = Path(engines_root) / engine_key(trt.__version__, ident["gpu"])
    plan = folder / f"{graph}.plan"
    major = int(trt.__version__.split(".")[0])
    source = Path(fp16_onnx_path) if (fp16 and major >= 11 and fp16_onnx_path) else Path(onnx_path)
    expected = {"tensorrt_version": trt.__version__, **ident, "onnx_sha256": sha256_file(source)}
    why = "forced rebuild" if force else None
    if why is None and plan.is_file() and plan.with_suffix(".json").is_file():
        why = engine_matches(json.loads(plan.with_suffix(".json").read_text()), expected)
        if why is None:
            try:
                return TensorRTBackend(plan, graph), f"loaded engine {plan}"
            except BackendUnavailableError as exc:
                why = str(exc)
    why = why or "no engine yet"
    log.info("building TensorRT engine %s from %s (%s)", plan, source.name, why)
    build_engine(source, plan, fp16=fp16, timing_cache=folder / "timing.cache")
    return TensorRTBackend(plan, graph), f"built engine {plan} ({why})"

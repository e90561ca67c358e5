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
GPU of the current CUDA device, compute capability, ONNX sha256, precision, and this machine's
signature, :mod:`eifer_models.runtimes.engine_trust`); a mismatching or unsigned sidecar (a plan
that arrived inside a bundle), a changed ONNX, another precision, or a plan that
``deserialize_cuda_engine`` rejects (returns None) is rebuilt from the ONNX.

Per frame: inputs are staged in pinned host buffers, copied to the device asynchronously on the
backend's stream, the engine is enqueued, outputs are copied back into pinned host buffers
asynchronously, and the stream is synchronised once.

TensorRT's runtime is not obtainable on the development machines: this module imports
``tensorrt`` lazily, and its tests are marked ``tensorrt``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eifer_models.bundle_manifest import sha256_file
from eifer_models.runtimes.base import BackendUnavailableError, Runtime, TensorSpec, check_inputs
from eifer_models.runtimes.engine_trust import (
    SIGNATURE_FIELD,
    machine_key,
    sign_engine,
    signature_problem,
)

__all__ = [
    "TensorRTBackend",
    "build_engine",
    "engine_key",
    "engine_matches",
    "engine_precision",
    "load_or_build",
    "stale_engine_reason",
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


def gpu_identity(index: int | None = None) -> dict[str, str]:
    """Name and compute capability of CUDA device ``index`` (default: the current device, which
    ``CUDA_VISIBLE_DEVICES`` or ``torch.cuda.set_device`` chose; never silently device 0)."""
    index = torch.cuda.current_device() if index is None else index
    props = torch.cuda.get_device_properties(index)
    return {"gpu": props.name, "compute_capability": f"{props.major}.{props.minor}"}


def engine_precision(trt_major: int, fp16: bool, fp16_onnx: bool) -> str:
    """What an engine computes in: ``fp16-flag`` (TensorRT < 11 with ``BuilderFlag.FP16``),
    ``fp16-onnx`` (strongly typed build of the FP16 graph), or ``fp32``."""
    if not fp16:
        return "fp32"
    if trt_major < 11:
        return "fp16-flag"
    return "fp16-onnx" if fp16_onnx else "fp32"


def engine_key(trt_version: str, gpu_name: str) -> str:
    """Folder name under ``engines/``, e.g. ``nvidia-h100-80gb-hbm3-trt10.13.3.9``."""
    return f"{_slug(gpu_name)}-trt{trt_version}"


MATCHED_FIELDS = ("tensorrt_version", "gpu", "compute_capability", "onnx_sha256", "precision")


def engine_matches(meta: Mapping[str, Any], expected: Mapping[str, Any]) -> str | None:
    """None when the sidecar ``meta`` fits ``expected`` (TensorRT version, GPU, compute
    capability, ONNX checksum, precision), else the first difference."""
    for key in MATCHED_FIELDS:
        if meta.get(key) != expected.get(key):
            return f"{key}: engine has {meta.get(key)!r}, this machine/bundle needs {expected.get(key)!r}"
    return None


def stale_engine_reason(plan_path: Path, expected: Mapping[str, Any], key: bytes) -> str | None:
    """None when ``plan_path`` may be loaded: its sidecar exists, matches ``expected`` and carries
    this machine's signature of the plan; else why it must be rebuilt. Pure file logic (no
    TensorRT), so it is tested on machines without a GPU."""
    sidecar = plan_path.with_suffix(".json")
    if not plan_path.is_file() or not sidecar.is_file():
        return "no engine yet"
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:
        return f"unreadable sidecar {sidecar.name} ({exc})"
    if not isinstance(meta, dict):
        return f"sidecar {sidecar.name} is not a JSON object"
    return engine_matches(meta, expected) or signature_problem(plan_path.read_bytes(), meta, key)


def build_engine(
    onnx_path: str | Path,
    plan_path: str | Path,
    *,
    fp16: bool = True,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    timing_cache: str | Path | None = None,
    fp16_onnx: bool = False,
) -> dict[str, Any]:
    """Parse ``onnx_path``, build a serialized engine, write ``plan_path`` and its signed
    ``.json`` sidecar; returns the sidecar.

    Parameters
    ----------
    onnx_path : str | Path
        The ONNX graph to build from.
    plan_path : str | Path
        Where the engine is written; the sidecar goes beside it (``.json``).
    fp16 : bool
        FP16 engine: ``BuilderFlag.FP16`` on TensorRT < 11; on 11+ the precision is the ONNX
        graph's (pass the FP16 graph and ``fp16_onnx=True``).
    workspace_bytes : int
        TensorRT's workspace memory pool limit (default 1 GiB).
    timing_cache : str | Path | None
        A timing cache file read before and written after the build (faster rebuilds).
    fp16_onnx : bool
        ``onnx_path`` is the FP16 graph.

    Returns
    -------
    dict
        The sidecar: TensorRT version, GPU identity, the ONNX file's sha256, precision, build
        time, and this machine's signature (:mod:`eifer_models.runtimes.engine_trust`).

    Raises
    ------
    BackendUnavailableError
        TensorRT cannot parse the graph or build an engine.
    """
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
    precision = engine_precision(major, fp16, fp16_onnx)
    if precision == "fp16-flag":
        config.set_flag(trt.BuilderFlag.FP16)
    cache_path = Path(timing_cache) if timing_cache else None
    cache_bytes = cache_path.read_bytes() if cache_path and cache_path.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, True)
    t0 = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise BackendUnavailableError(f"TensorRT failed to build an engine from {onnx_path}")
    plan_bytes = bytes(plan)
    plan_path = Path(plan_path)
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_bytes(plan_bytes)
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
    meta[SIGNATURE_FIELD] = sign_engine(plan_bytes, meta, machine_key())
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
    """A deserialized engine with device tensors bound once by address and pinned host staging
    buffers, on the current CUDA device and its own stream.

    Parameters
    ----------
    plan_path
        Serialized engine; load it only through :func:`load_or_build`, which checks that this
        machine built it.
    graph
        Graph name for messages (default: the plan's stem).
    """

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
        index = torch.cuda.current_device()
        self._device = torch.device("cuda", index)
        self.device = (
            f"cuda:{index} ({torch.cuda.get_device_name(index)}, TensorRT {trt.__version__})"
        )
        self._stream = torch.cuda.Stream(self._device)
        self._tensors: dict[str, torch.Tensor] = {}
        inputs: list[TensorSpec] = []
        outputs: list[TensorSpec] = []
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
            self._tensors[name] = torch.empty(concrete, dtype=dtype, device=self._device)
        for spec in outputs:  # output shapes resolved after the input shapes are set
            shape = tuple(int(d) for d in self._context.get_tensor_shape(spec.name))
            self._tensors[spec.name] = torch.empty(
                shape, dtype=self._tensors[spec.name].dtype, device=self._device
            )
        for name, tensor in self._tensors.items():
            self._context.set_tensor_address(name, tensor.data_ptr())
        self.inputs, self.outputs = tuple(inputs), tuple(outputs)
        # pinned staging: inputs in the engine's dtype, outputs as float32 (converted on device)
        self._host_in = {
            s.name: torch.empty(
                self._tensors[s.name].shape, dtype=self._tensors[s.name].dtype
            ).pin_memory()
            for s in self.inputs
        }
        self._device_out32 = {
            s.name: torch.empty(self._tensors[s.name].shape, device=self._device)
            for s in self.outputs
        }
        self._host_out = {
            s.name: torch.empty(self._tensors[s.name].shape).pin_memory() for s in self.outputs
        }
        # buffers were allocated on the current stream: order the engine's stream after it
        self._stream.wait_stream(torch.cuda.current_stream(self._device))

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
                self._host_in[name].copy_(torch.from_numpy(array))  # host side, converts dtype
                self._tensors[name].copy_(self._host_in[name], non_blocking=True)
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError(f"{self.graph}: TensorRT execute_async_v3 failed")
            for spec in self.outputs:
                self._device_out32[spec.name].copy_(self._tensors[spec.name])
                self._host_out[spec.name].copy_(self._device_out32[spec.name], non_blocking=True)
        self._stream.synchronize()  # the one synchronisation per frame
        return {s.name: self._host_out[s.name].numpy().copy() for s in self.outputs}

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
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
) -> tuple[TensorRTBackend, str]:
    """The engine for ``graph`` under ``engines_root/<gpu>-trt<version>/``, rebuilt when absent,
    stale, of another precision, not signed by this machine, or unloadable.

    Parameters
    ----------
    onnx_path : str | Path
        The float32 ONNX graph.
    engines_root : str | Path
        Folder of the engine caches (a bundle's ``engines/``).
    graph : str
        Graph name: the plan is ``<graph>.plan``.
    fp16_onnx_path : str | Path | None
        The FP16 ONNX graph, built from on TensorRT 11+ when ``fp16``.
    fp16 : bool
        Build (or expect) an FP16 engine.
    force : bool
        Rebuild even when a valid engine exists.
    workspace_bytes : int
        As in :func:`build_engine`.

    Returns
    -------
    backend : TensorRTBackend
    note : str
        What happened, for the log (loaded, or built and why).
    """
    trt = _trt()
    ident = gpu_identity()
    folder = Path(engines_root) / engine_key(trt.__version__, ident["gpu"])
    plan = folder / f"{graph}.plan"
    major = int(trt.__version__.split(".")[0])
    use_fp16_onnx = bool(fp16 and major >= 11 and fp16_onnx_path)
    source = Path(fp16_onnx_path) if use_fp16_onnx and fp16_onnx_path else Path(onnx_path)
    expected = {
        "tensorrt_version": trt.__version__,
        **ident,
        "onnx_sha256": sha256_file(source),
        "precision": engine_precision(major, fp16, use_fp16_onnx),
    }
    why = "forced rebuild" if force else stale_engine_reason(plan, expected, machine_key())
    if why is None:
        try:
            return TensorRTBackend(plan, graph), f"loaded engine {plan}"
        except BackendUnavailableError as exc:
            why = str(exc)
    log.info("building TensorRT engine %s from %s (%s)", plan, source.name, why)
    build_engine(
        source,
        plan,
        fp16=fp16,
        workspace_bytes=workspace_bytes,
        timing_cache=folder / "timing.cache",
        fp16_onnx=use_fp16_onnx,
    )
    return TensorRTBackend(plan, graph), f"built engine {plan} ({why})"

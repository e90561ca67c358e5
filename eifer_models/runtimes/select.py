"""Pick the inference backend: TensorRT, else torch on CUDA, else ONNX Runtime on the CPU.

DESIGN.md ("Model bundles"): TensorRT when a matching engine exists or can be built, else torch
on CUDA (CUDA graphs), else ONNX Runtime on the CPU; an explicit override wins and fails clearly
when it cannot run. The :class:`Selection` says which backend and why, for the pipeline's log
and status.

A backend that looks usable can still fail to open one graph (an engine build that runs out of
memory, an operator TensorRT cannot parse, a CUDA error): :func:`open_graph_with_fallback` then
falls back for that graph alone, TensorRT -> torch CUDA -> ONNX Runtime, and :class:`OpenedGraph`
says which backend runs it and why the better ones did not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from eifer_models.runtimes.base import BACKENDS, BackendUnavailableError, Runtime
from eifer_models.runtimes.onnxruntime_backend import OnnxRuntimeBackend, onnxruntime_unavailable
from eifer_models.runtimes.tensorrt_backend import engine_key, gpu_identity, tensorrt_unavailable
from eifer_models.runtimes.torch_cuda_backend import TorchCudaBackend, torch_cuda_unavailable
from streaming.config import ConfigError

if TYPE_CHECKING:
    from eifer_models.bundle import Bundle

__all__ = [
    "OpenedGraph",
    "Selection",
    "backend_status",
    "open_graph_with_fallback",
    "open_runtime",
    "select_backend",
]

AUTO = "auto"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    """The chosen backend, why, and why each better one was passed over."""

    backend: str
    reason: str
    rejected: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        text = f"backend {self.backend}: {self.reason}"
        if self.rejected:
            text += "; passed over: " + "; ".join(f"{b} ({r})" for b, r in self.rejected.items())
        return text


def backend_status(bundle: Bundle | None = None) -> dict[str, str | None]:
    """For each backend, None when it can run here (for ``bundle``), else why not."""
    status = {
        "tensorrt": tensorrt_unavailable(),
        "torch-cuda": torch_cuda_unavailable(),
        "onnxruntime": onnxruntime_unavailable(),
    }
    if bundle is not None:
        no_onnx = [g for g in bundle.manifest.graphs if bundle.onnx_path(g) is None]
        if no_onnx:
            for b in ("tensorrt", "onnxruntime"):
                status[b] = status[b] or f"bundle has no ONNX graph for {no_onnx}"
    return status


def _tensorrt_reason(bundle: Bundle | None) -> str:
    import tensorrt as trt

    if bundle is None:
        return f"TensorRT {trt.__version__} with CUDA is available"
    folder = bundle.engines_root / engine_key(trt.__version__, gpu_identity()["gpu"])
    if all((folder / f"{g}.plan").is_file() for g in bundle.manifest.graphs):
        return f"TensorRT {trt.__version__}: engines for this GPU found in {folder}"
    return f"TensorRT {trt.__version__}: engines will be built from the bundle's ONNX into {folder}"


def select_backend(bundle: Bundle | None = None, override: str | None = None) -> Selection:
    """The backend to use. ``override``: None/"auto", or one of ``BACKENDS`` (then it must be
    usable: BackendUnavailableError says why not)."""
    status = backend_status(bundle)
    if override and override != AUTO:
        if override not in BACKENDS:
            raise ConfigError(f"backend {override!r} unknown; choose one of {[AUTO, *BACKENDS]}")
        if status[override] is not None:
            raise BackendUnavailableError(f"backend {override!r} requested but {status[override]}")
        return Selection(override, "requested explicitly")
    rejected: dict[str, str] = {}
    for backend in BACKENDS:
        why_not = status[backend]
        if why_not is not None:
            rejected[backend] = why_not
            continue
        if backend == "tensorrt":
            reason = _tensorrt_reason(bundle)
        elif backend == "torch-cuda":
            import torch

            reason = (
                f"torch {torch.__version__} on {torch.cuda.get_device_name()}, fp16, CUDA graphs"
            )
        else:
            reason = "ONNX Runtime on the CPU (no GPU backend available)"
        return Selection(backend, reason, rejected)
    raise BackendUnavailableError(
        "no inference backend can run here: " + "; ".join(f"{b}: {r}" for b, r in rejected.items())
    )


def open_runtime(
    bundle: Bundle, graph: str, backend: str, *, threads: int | None = None, dtype: str = "float16"
) -> tuple[Runtime, str]:
    """Open one graph of a bundle on one backend, without fallback.

    :func:`open_graph_with_fallback` tries the next backends when this fails.

    Parameters
    ----------
    bundle : Bundle
        The verified model bundle.
    graph : str
        ``"encoders"``, ``"emg2exp"`` or ``"exp2emg"``.
    backend : str
        One of ``BACKENDS``: ``"tensorrt"`` (engine loaded from, or built into, the bundle's
        ``engines/`` folder for this GPU), ``"torch-cuda"`` or ``"onnxruntime"`` (CPU).
    threads : int | None
        ONNX Runtime's intra-op threads (None: its default).
    dtype : str
        Precision of the torch CUDA backend (``"float16"`` or ``"float32"``).

    Returns
    -------
    runtime : Runtime
    note : str
        What was opened, for the log (e.g. whether a TensorRT engine was loaded or built).

    Raises
    ------
    BackendUnavailableError
        The backend cannot run here (no CUDA, no TensorRT, no ONNX graph in the bundle).
    streaming.config.ConfigError
        Unknown ``backend``.
    """
    if backend == "onnxruntime":
        onnx = bundle.onnx_path(graph)
        if onnx is None:
            raise BackendUnavailableError(f"bundle {bundle.path} has no ONNX graph for {graph!r}")
        return OnnxRuntimeBackend(onnx, graph, threads=threads), f"{onnx.name} on ONNX Runtime"
    if backend == "torch-cuda":
        inputs, outputs = bundle.io(graph)
        module = bundle.build_module(graph)
        return TorchCudaBackend(
            module, inputs, outputs, graph=graph, dtype=dtype
        ), f"{graph} torch {dtype}"
    if backend == "tensorrt":
        from eifer_models.runtimes.tensorrt_backend import load_or_build

        onnx = bundle.onnx_path(graph)
        if onnx is None:
            raise BackendUnavailableError(f"bundle {bundle.path} has no ONNX graph for {graph!r}")
        return load_or_build(
            onnx, bundle.engines_root, graph, fp16_onnx_path=bundle.onnx_path(graph, fp16=True)
        )
    raise ConfigError(f"backend {backend!r} unknown; choose one of {list(BACKENDS)}")


@dataclass(frozen=True)
class OpenedGraph:
    """One graph opened on the first backend that worked.

    Attributes
    ----------
    runtime
        The open runtime.
    backend
        The backend that runs the graph (one of ``BACKENDS``).
    note
        What opening did (e.g. "loaded engine ...").
    failed
        Backends tried before, in order, each with the reason it failed to open.
    """

    runtime: Runtime
    backend: str
    note: str
    failed: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        text = f"{self.runtime.graph or 'graph'} on {self.backend} ({self.note})"
        if self.failed:
            text += "; fell back from " + "; ".join(f"{b}: {why}" for b, why in self.failed)
        return text


# What a backend raises when it cannot open a graph here: missing or broken libraries, CUDA and
# TensorRT errors (RuntimeError), unreadable files. Programming errors (TypeError, ...) propagate.
_OPEN_FAILURES = (BackendUnavailableError, RuntimeError, OSError, ImportError, MemoryError)


def open_graph_with_fallback(
    bundle: Bundle,
    graph: str,
    selection: Selection,
    *,
    fallback: bool = True,
    threads: int | None = None,
    dtype: str = "float16",
) -> OpenedGraph:
    """Open ``graph`` on ``selection.backend``; if that fails and ``fallback`` is set, on each
    later backend of ``BACKENDS`` that is usable here, in order.

    Parameters
    ----------
    bundle, graph
        The model bundle and the graph name (``encoders``, ``exp2emg``, ``emg2exp``).
    selection
        From :func:`select_backend`; an explicit request (``fallback=False``) fails instead of
        falling back.
    threads, dtype
        Passed to :func:`open_runtime`.

    Raises
    ------
    BackendUnavailableError
        When no backend could open the graph; the message lists every attempt.
    """
    start = BACKENDS.index(selection.backend)
    candidates = [selection.backend]
    if fallback:
        status = backend_status(bundle)
        candidates += [b for b in BACKENDS[start + 1 :] if status[b] is None]
    failed: list[tuple[str, str]] = []
    for backend in candidates:
        try:
            runtime, note = open_runtime(bundle, graph, backend, threads=threads, dtype=dtype)
        except _OPEN_FAILURES as exc:
            failed.append((backend, f"{type(exc).__name__}: {exc}"))
            log.warning("%s: backend %s failed to open (%s)", graph, backend, exc)
            continue
        return OpenedGraph(runtime, backend, note, tuple(failed))
    raise BackendUnavailableError(
        f"no backend could open graph {graph!r}: " + "; ".join(f"{b} ({why})" for b, why in failed)
    )

"""ONNX Runtime on the CPU: the backend that runs everywhere (and the one tested here)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from eifer_models.runtimes.base import BackendUnavailableError, Runtime, TensorSpec, check_inputs

__all__ = ["OnnxRuntimeBackend", "onnxruntime_unavailable"]

_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64"}


def onnxruntime_unavailable() -> str | None:
    """None when onnxruntime imports, else why not."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return f"onnxruntime does not import ({exc})"
    return None


class OnnxRuntimeBackend(Runtime):
    """An ``InferenceSession`` with the CPU provider, full graph optimisation, ``threads`` intra-op
    threads (default: ONNX Runtime's choice, one per core).

    Worker spinning is off by default: on a machine whose cores are shared with the acquisition
    nodes, spinning threads compete for the cores and the p99 latency suffers (measured here,
    2 threads on 2 busy cores: encoders p99 40 ms spinning vs 13 ms not, p50 9 vs 12 ms).
    """

    name = "onnxruntime"

    def __init__(
        self,
        onnx_path: str | Path,
        graph: str = "",
        threads: int | None = None,
        *,
        spinning: bool = False,
    ) -> None:
        reason = onnxruntime_unavailable()
        if reason:
            raise BackendUnavailableError(reason)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if spinning else "0"
        )
        self.graph = graph or Path(onnx_path).stem
        self.device = "cpu"
        self._session = ort.InferenceSession(
            str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
        )

        def spec(v: ort.NodeArg) -> TensorSpec:
            shape = tuple(d if isinstance(d, int) else None for d in v.shape)
            return TensorSpec(v.name, shape, _DTYPES.get(v.type, "float32"))

        self.inputs = tuple(spec(v) for v in self._session.get_inputs())
        self.outputs = tuple(spec(v) for v in self._session.get_outputs())
        self._output_names = [s.name for s in self.outputs]

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = check_inputs(self.inputs, inputs, self.graph)
        values = self._session.run(self._output_names, feed)
        return {
            n: np.asarray(v, dtype=np.float32)
            for n, v in zip(self._output_names, values, strict=True)
        }

"""The runtime interface every backend implements: named float arrays in, named arrays out.

A runtime wraps one graph (``encoders``, ``emg2exp`` or ``exp2emg``, see
:mod:`eifer_models.export`). Inputs are checked against the graph's declared names, shapes and
dtypes before they reach the backend, so a wrong array gives an error naming the tensor instead
of a backend-specific crash.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from streaming.errors import EiferError

__all__ = ["BACKENDS", "BackendUnavailableError", "Runtime", "TensorSpec", "check_inputs"]

BACKENDS = ("tensorrt", "torch-cuda", "onnxruntime")


class BackendUnavailableError(EiferError):
    """A requested inference backend cannot run on this machine (the message says why)."""


@dataclass(frozen=True)
class TensorSpec:
    """A graph input/output: name, shape (None = any size, e.g. a dynamic batch), dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str = "float32"

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> TensorSpec:
        dims = cast("Sequence[int | None]", data["shape"])  # JSON list: int or null per axis
        shape = tuple(None if d is None else int(d) for d in dims)
        return cls(str(data["name"]), shape, str(data.get("dtype", "float32")))

    def matches(self, array: np.ndarray) -> bool:
        return array.ndim == len(self.shape) and all(
            want is None or want == got for want, got in zip(self.shape, array.shape, strict=True)
        )


def check_inputs(
    specs: Sequence[TensorSpec], inputs: Mapping[str, np.ndarray], graph: str
) -> dict[str, np.ndarray]:
    """Contiguous arrays in the declared dtype; ValueError naming the tensor when a name is
    missing/unknown or a shape differs."""
    names = {s.name for s in specs}
    unknown = sorted(set(inputs) - names)
    if unknown:
        raise ValueError(f"{graph}: unknown input(s) {unknown}; the graph takes {sorted(names)}")
    result = {}
    for spec in specs:
        if spec.name not in inputs:
            raise ValueError(f"{graph}: input {spec.name!r} missing")
        array = np.asarray(inputs[spec.name])
        if not spec.matches(array):
            raise ValueError(
                f"{graph}: input {spec.name!r} has shape {array.shape}, expected {spec.shape}"
            )
        result[spec.name] = np.ascontiguousarray(array, dtype=spec.dtype)
    return result


class Runtime(ABC):
    """One graph on one backend. ``run`` takes and returns float arrays keyed by tensor name."""

    name: str  # backend name, one of BACKENDS
    device: str  # e.g. "cpu", "cuda:0 (NVIDIA H100 80GB HBM3)"
    graph: str  # graph name in the bundle
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @abstractmethod
    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs as host float32 arrays (copies the caller may keep)."""

    def warm_up(self, iterations: int = 3) -> None:
        """Run zeros through the graph so lazy allocation, autotuning and graph capture happen
        before the first real frame."""
        zeros = {
            s.name: np.zeros([1 if d is None else d for d in s.shape], dtype=s.dtype)
            for s in self.inputs
        }
        for _ in range(iterations):
            self.run(zeros)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release device resources."""

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(graph={self.graph!r}, device={self.device!r})"

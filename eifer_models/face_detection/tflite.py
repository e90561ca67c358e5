"""A TFLite model on LiteRT (``ai-edge-litert``, the TFLite runtime Google ships on PyPI).

Chosen over ``mediapipe`` itself: a ~60 MB runtime with no OpenCV, jax or protobuf pins, against
~1.1 GB of dependencies and a clashing ``cv2`` (figures in benchmarks/face_detection.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eifer_models.face_detection.models import ModelFilesError

__all__ = ["TFLiteModel"]


class TFLiteModel:
    """``model(x)`` -> the output tensors by name, for a float32 NHWC input of the model's shape."""

    def __init__(self, path: Path, num_threads: int = 1) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # pragma: no cover - a dependency in pyproject
            raise ModelFilesError(
                "the TFLite runtime is missing: pip install ai-edge-litert"
            ) from None
        self.path = Path(path)
        self._interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        self._interpreter.allocate_tensors()
        (detail,) = self._interpreter.get_input_details()
        self._input = detail["index"]
        self.input_shape = tuple(int(n) for n in detail["shape"])
        details = self._interpreter.get_output_details()
        self._outputs = {d["name"]: d["index"] for d in details}
        self.output_shapes = {d["name"]: tuple(int(n) for n in d["shape"]) for d in details}

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self._outputs)

    def output_with_size(self, n_values: int) -> str:
        """The name of the output holding ``n_values`` numbers (outputs are told apart by size,
        their names differ between model versions)."""
        for name, shape in self.output_shapes.items():
            if int(np.prod(shape)) == n_values or shape[-1] == n_values:
                return name
        raise ModelFilesError(
            f"{self.path.name}: no output of {n_values} values ({self.output_shapes})"
        )

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        if x.shape != self.input_shape or x.dtype != np.float32:
            raise ValueError(
                f"{self.path.name}: input {x.shape} {x.dtype}, needs {self.input_shape}"
            )
        self._interpreter.set_tensor(self._input, x)
        self._interpreter.invoke()
        return {n: self._interpreter.get_tensor(i) for n, i in self._outputs.items()}

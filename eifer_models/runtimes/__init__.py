"""Inference backends behind one interface (:class:`~eifer_models.runtimes.base.Runtime`):
ONNX Runtime on the CPU, torch on CUDA (CUDA graphs), TensorRT; :mod:`.select` picks one."""

from eifer_models.runtimes.base import BackendUnavailableError, Runtime, TensorSpec

__all__ = ["BackendUnavailableError", "Runtime", "TensorSpec"]

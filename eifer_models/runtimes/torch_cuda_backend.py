"""torch on CUDA in half precision, with the whole graph captured as one CUDA graph.

At batch 1 the encoders are launch-bound (hundreds of small kernels; research note
inference_and_peers.md section 3.1), so the forward pass is captured once with static input and
output tensors (``torch.cuda.graph``, on a side stream after warm-up, as the PyTorch docs
prescribe) and each frame is one pinned host-to-device copy, one ``replay()``, one asynchronous
copy into pinned host buffers and one stream synchronisation. Inputs whose shape differs from the
captured one run eagerly.

``device="cpu"`` runs the same code eagerly without streams or graphs: the peer in the latency
benchmark, and how this module's data handling is tested on machines without CUDA. The CUDA
paths (streams, pinned memory, capture) are tested where CUDA exists (tests marked ``gpu``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from eifer_models.runtimes.base import BackendUnavailableError, Runtime, TensorSpec, check_inputs

__all__ = ["TORCH_DTYPES", "TorchCudaBackend", "torch_cuda_unavailable"]

TORCH_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def torch_cuda_unavailable() -> str | None:
    """None when torch sees a CUDA device, else why not."""
    if not torch.cuda.is_available():
        return f"torch.cuda.is_available() is False (torch {torch.__version__})"
    return None


class TorchCudaBackend(Runtime):
    """``module`` (tensor or tuple output, in ``outputs`` order) on ``device`` in ``dtype``.

    Parameters
    ----------
    module : nn.Module
        The graph's module; moved to ``device`` and ``dtype`` here.
    inputs, outputs : sequence of TensorSpec
        The graph's declared inputs and outputs (None dimensions run at size 1).
    graph : str
        Graph name, for messages.
    dtype : str
        Compute precision, a key of ``TORCH_DTYPES`` (inputs and outputs stay float32).
    cuda_graph : bool
        Capture the whole forward pass as one CUDA graph (needs a CUDA device).
    device : str
        torch device (``"cuda"``: the current CUDA device; ``"cpu"`` with ``cuda_graph=False``
        for tests).

    Raises
    ------
    BackendUnavailableError
        No usable CUDA device.
    """

    def __init__(
        self,
        module: nn.Module,
        inputs: Sequence[TensorSpec],
        outputs: Sequence[TensorSpec],
        *,
        graph: str = "",
        dtype: str = "float16",
        cuda_graph: bool = True,
        device: str = "cuda",
    ) -> None:
        if dtype not in TORCH_DTYPES:
            raise ValueError(f"dtype {dtype!r} not one of {sorted(TORCH_DTYPES)}")
        self._device = torch.device(device)
        self._cuda = self._device.type == "cuda"
        if self._cuda:
            reason = torch_cuda_unavailable()
            if reason:
                raise BackendUnavailableError(reason)
            index = self._device.index
            index = torch.cuda.current_device() if index is None else index
            self._device = torch.device("cuda", index)
            self.device = f"cuda:{index} ({torch.cuda.get_device_name(index)})"
            self.name = "torch-cuda"
        elif cuda_graph:
            raise ValueError("CUDA graphs need a CUDA device; pass cuda_graph=False for the CPU")
        else:
            self.device = str(self._device)
            self.name = f"torch-{self._device.type}"
        self.graph = graph
        self.inputs, self.outputs = tuple(inputs), tuple(outputs)
        self.dtype = dtype
        self.use_cuda_graph = cuda_graph
        self._torch_dtype = TORCH_DTYPES[dtype]
        self._module = module.eval().to(self._device, self._torch_dtype)
        shapes = {s.name: tuple(1 if d is None else d for d in s.shape) for s in self.inputs}
        self._static = {n: torch.zeros(shape, device=self._device) for n, shape in shapes.items()}
        self._host = (
            {n: torch.zeros(shape).pin_memory() for n, shape in shapes.items()}
            if self._cuda
            else self._static
        )
        self._stream = torch.cuda.Stream(self._device) if self._cuda else None
        if self._stream is not None:
            # the static buffers and weights were written on the current stream: the side stream
            # that captures and replays must not run ahead of those writes
            self._stream.wait_stream(torch.cuda.current_stream(self._device))
        self._cuda_graph: torch.cuda.CUDAGraph | None = None
        self._static_out: tuple[Tensor, ...] = ()
        self._host_out: tuple[Tensor, ...] = ()  # pinned, allocated at the first fixed-shape run

    @property
    def captured(self) -> bool:
        return self._cuda_graph is not None

    def _on_stream(self) -> contextlib.AbstractContextManager[object]:
        return (
            torch.cuda.stream(self._stream)
            if self._stream is not None
            else contextlib.nullcontext()
        )

    def _forward(self, tensors: Sequence[Tensor]) -> tuple[Tensor, ...]:
        out = self._module(*(t.to(self._torch_dtype) for t in tensors))
        out = out if isinstance(out, tuple) else (out,)
        return tuple(o.float() for o in out)

    def _capture(self) -> None:
        assert self._stream is not None
        static = [self._static[s.name] for s in self.inputs]
        with torch.no_grad(), torch.cuda.stream(self._stream):
            for _ in range(3):  # warm-up on the side stream before capture (PyTorch docs)
                self._forward(static)
        self._stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(graph, stream=self._stream):
            self._static_out = self._forward(static)
        self._cuda_graph = graph

    def _to_host(self, out: tuple[Tensor, ...], fixed: bool) -> list[Tensor]:
        """Device outputs -> host tensors: asynchronous copies into pinned buffers for the
        fixed shape (synchronised once by the caller), plain copies otherwise."""
        if not self._cuda:
            return list(out)
        if not fixed:
            return [o.to("cpu", non_blocking=False) for o in out]
        if len(self._host_out) != len(out):
            self._host_out = tuple(torch.empty(o.shape).pin_memory() for o in out)
        for host, device in zip(self._host_out, out, strict=True):
            host.copy_(device, non_blocking=True)
        return list(self._host_out)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = check_inputs(self.inputs, inputs, self.graph)
        fixed = all(feed[s.name].shape == tuple(self._static[s.name].shape) for s in self.inputs)
        with torch.no_grad(), self._on_stream():
            if fixed:
                for name, array in feed.items():
                    self._host[name].copy_(torch.from_numpy(array.astype(np.float32, copy=False)))
                    if self._cuda:
                        self._static[name].copy_(self._host[name], non_blocking=True)
                if self.use_cuda_graph and self._cuda_graph is None:
                    self._capture()
                if self._cuda_graph is not None:
                    self._cuda_graph.replay()
                    out = self._static_out
                else:
                    out = self._forward([self._static[s.name] for s in self.inputs])
            else:  # other batch size: eager, no graph
                tensors = [torch.from_numpy(feed[s.name]).to(self._device) for s in self.inputs]
                out = self._forward(tensors)
            host = self._to_host(out, fixed)
        if self._stream is not None:
            self._stream.synchronize()  # the one synchronisation per frame
        return {s.name: h.numpy().copy() for s, h in zip(self.outputs, host, strict=True)}

    def close(self) -> None:
        self._cuda_graph = None
        self._static_out = ()

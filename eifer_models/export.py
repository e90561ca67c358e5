"""ONNX export of the live graphs: the three encoders as one graph, and each MLP.

Graphs (names are the contract with the runtimes and the bundle manifest):

- ``encoders``: ``image`` (N, 3, S, S) float32 RGB [0, 1] (S: the encoder's ``input_size``,
  224 for SMIRK's) -> ``pose`` (N, 6),
  ``shape`` (N, n_shape), ``expression`` (N, n_exp + 5);
- ``emg2exp``: ``emg`` (N, 22) -> ``expression`` (N, 55);
- ``exp2emg``: ``expression`` (N, 55) -> ``emg`` (N, 22).

Exported with the TorchScript-based exporter (``dynamo=False``: the dynamo exporter needs
onnxscript, not installed here), opset 17, checked with ``onnx.checker``. The FP16 variant for
TensorRT 11 (strongly typed: precision must be in the graph; research note
inference_and_peers.md section 1.3) is exported from a half-precision copy of the model wrapped
in casts, so inputs and outputs stay float32 (AutoCast's ``keep_io_types=True`` convention) and
every weight and conv runs in float16.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import onnx
import torch
from torch import Tensor, nn

from eifer_models.encoders import FaceEncoder
from eifer_models.mlp import MLP

__all__ = [
    "DEFAULT_OPSET",
    "EncoderGraph",
    "HalfPrecision",
    "encoder_io",
    "export_encoders",
    "export_mlp",
    "export_onnx",
    "mlp_io",
    "onnx_io",
]

DEFAULT_OPSET = 17


class EncoderGraph(nn.Module):
    """Tuple-output view of a :class:`FaceEncoder` for export: (pose, shape, expression)."""

    def __init__(self, encoder: FaceEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.encoder.forward_tensors(image)


class HalfPrecision(nn.Module):
    """float32 in -> float16 compute -> float32 out (for the strongly typed FP16 graph)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = copy.deepcopy(module).half()

    def forward(self, *inputs: Tensor) -> Tensor | tuple[Tensor, ...]:
        out = self.module(*(x.half() for x in inputs))
        if isinstance(out, tuple):
            return tuple(o.float() for o in out)
        return out.float()


def encoder_io(
    encoder: FaceEncoder,
) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """Input and output names -> shapes (batch 1) of the ``encoders`` graph."""
    size = encoder.input_size
    return (
        {"image": (1, 3, size, size)},
        {"pose": (1, 6), "shape": (1, encoder.n_shape), "expression": (1, encoder.expression_dim)},
    )


def mlp_io(
    mlp: MLP, input_name: str, output_name: str
) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """The MLP graph's (inputs, outputs) as ``{name: shape}``, batch 1."""
    return {input_name: (1, mlp.n_in)}, {output_name: (1, mlp.n_out)}


def export_onnx(
    model: nn.Module,
    example: Sequence[Tensor],
    path: str | Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
    *,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = False,
    half: bool = False,
) -> Path:
    """Export ``model`` (eval mode, CPU) to ``path`` and check the file with onnx.checker.

    Parameters
    ----------
    model : nn.Module
        The module to trace (TorchScript exporter, ``dynamo=False``).
    example : sequence of Tensor
        Example inputs, one per graph input; their shapes become the graph's shapes.
    path : str | Path
        The ``.onnx`` file to write (parent folders are created).
    input_names, output_names : sequence of str
        Names of the graph's inputs and outputs, in the module's order.
    opset : int
        ONNX opset version (default 17).
    dynamic_batch : bool
        Leave the first axis of every input and output symbolic (``batch``); otherwise every
        output shape is stated from a run of ``example``.
    half : bool
        Compute in float16 inside the graph, float32 at its inputs and outputs
        (:class:`HalfPrecision`).

    Returns
    -------
    Path
        ``path``, after :func:`onnx.checker.check_model` (full check) passed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    if half:
        model = HalfPrecision(model).eval()
    dynamic_axes = (
        {name: {0: "batch"} for name in [*input_names, *output_names]} if dynamic_batch else None
    )
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent padding
        torch.onnx.export(
            model,
            tuple(example),
            buffer,  # type: ignore[arg-type]  # stub says path; the TorchScript exporter writes file-likes
            input_names=list(input_names),
            output_names=list(output_names),
            opset_version=opset,
            dynamic_axes=dynamic_axes,
            dynamo=False,
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    if not dynamic_batch:  # the tracer leaves sliced outputs' dims symbolic: state them
        with torch.no_grad():
            outs = model(*example)
        outs = outs if isinstance(outs, tuple) else (outs,)
        for value, tensor in zip(proto.graph.output, outs, strict=True):
            shape = value.type.tensor_type.shape
            del shape.dim[:]
            for size in tensor.shape:
                shape.dim.add().dim_value = int(size)
    onnx.checker.check_model(proto, full_check=True)
    path.write_bytes(proto.SerializeToString())
    return path


def export_encoders(
    encoder: FaceEncoder,
    path: str | Path,
    *,
    dynamic_batch: bool = False,
    half: bool = False,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """The ``encoders`` graph: ``image`` -> ``pose``, ``shape``, ``expression``."""
    inputs, outputs = encoder_io(encoder)
    example = torch.rand(inputs["image"])
    return export_onnx(
        EncoderGraph(encoder), [example], path, list(inputs), list(outputs),
        opset=opset, dynamic_batch=dynamic_batch, half=half,
    )  # fmt: skip


def export_mlp(
    mlp: MLP,
    path: str | Path,
    input_name: str,
    output_name: str,
    *,
    dynamic_batch: bool = False,
    half: bool = False,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """An MLP graph with one input and one output."""
    return export_onnx(
        mlp, [torch.rand(1, mlp.n_in)], path, [input_name], [output_name],
        opset=opset, dynamic_batch=dynamic_batch, half=half,
    )  # fmt: skip


_ONNX_DTYPES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.BFLOAT16: "bfloat16",
    onnx.TensorProto.INT64: "int64",
}


def onnx_io(path: str | Path) -> dict[str, dict[str, dict[str, object]]]:
    """``{"inputs": {name: {"shape": [...], "dtype": str}}, "outputs": {...}}`` of an ONNX file;
    a dynamic dimension is ``None``."""
    graph = onnx.load(str(path), load_external_data=False).graph

    def describe(values: Sequence[onnx.ValueInfoProto]) -> dict[str, dict[str, object]]:
        result: dict[str, dict[str, object]] = {}
        for v in values:
            t = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
            result[v.name] = {
                "shape": dims,
                "dtype": _ONNX_DTYPES.get(t.elem_type, str(t.elem_type)),
            }
        return result

    return {"inputs": describe(graph.input), "outputs": describe(graph.output)}

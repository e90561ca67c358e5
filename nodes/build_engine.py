"""``eifer build-engine``: build (or check) the TensorRT engines of a model bundle.

Engines are built from the bundle's ONNX graphs into ``<bundle>/engines/<gpu>-trt<version>/``
with a timing cache and a sidecar per plan (see :mod:`eifer_models.runtimes.tensorrt_backend`);
up-to-date engines are kept unless ``--force``. Without TensorRT and CUDA the command says so and
which backend the pipeline would use instead. ``--create-demo`` first writes an untrained demo
bundle (random weights) to the folder.
"""

from __future__ import annotations

import argparse
import logging

from pydantic import Field

from nodes.common import add_config_arguments, load_node_config, non_negative_int
from streaming.config import Config

log = logging.getLogger("eifer.build_engine")

__all__ = ["BuildEngineConfig", "add_arguments", "run"]


class BuildEngineConfig(Config):
    graphs: list[str] = Field(default_factory=lambda: ["encoders", "exp2emg", "emg2exp"])
    fp16: bool = True  # BuilderFlag.FP16 on TensorRT 10; the FP16 ONNX on TensorRT 11
    workspace_mb: int = Field(default=1024, gt=0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, example="fp16=false")
    parser.add_argument("bundle", help="model bundle folder")
    parser.add_argument("--force", action="store_true", help="rebuild even if engines match")
    parser.add_argument(
        "--create-demo", action="store_true", help="first write an UNTRAINED demo bundle there"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the demo bundle")


def run(args: argparse.Namespace) -> int:
    from eifer_models.bundle import create_demo_bundle, load_bundle
    from eifer_models.runtimes.select import backend_status

    config = load_node_config(BuildEngineConfig, args)
    if args.create_demo:
        bundle = create_demo_bundle(args.bundle, seed=args.seed)
        print(f"wrote {bundle.summary()}")
    else:
        bundle = load_bundle(args.bundle)
    status = backend_status(bundle)
    if status["tensorrt"] is not None:
        usable = [b for b, why in status.items() if why is None]
        print(f"TensorRT engines not built: {status['tensorrt']}.")
        print(f"The pipeline would use: {usable[0] if usable else 'no backend'}.")
        return 0 if args.create_demo else 2
    from eifer_models.runtimes.tensorrt_backend import load_or_build

    for graph in config.graphs:
        onnx = bundle.onnx_path(graph)
        if onnx is None:
            print(f"{graph}: bundle has no ONNX graph, skipped")
            continue
        runtime, note = load_or_build(
            onnx, bundle.engines_root, graph,
            fp16_onnx_path=bundle.onnx_path(graph, fp16=True), fp16=config.fp16, force=args.force,
            workspace_bytes=config.workspace_mb << 20,
        )  # fmt: skip
        runtime.close()
        print(f"{graph}: {note}")
    return 0

"""Per-frame inference latency (p50/p99, batch 1) of EIFER's graphs on every backend that runs.

Graphs of an untrained demo bundle (same architecture and sizes as the real models, so timing is
representative; :func:`eifer_models.bundle.create_demo_bundle`):

- ``encoders``: the three SMIRK encoders as one graph, image 1x3x224x224 -> pose, shape, phi;
- ``exp2emg`` (55 -> 22) and ``emg2exp`` (22 -> 55) MLPs;
- ``frame``: :class:`eifer_models.inference.FrameInference.process` (all three + conversion).

Backends, side by side in one run, each with its reference peer so figures are ratios:

- CPU: ONNX Runtime (the CPU backend) vs torch eager on the same CPU (the peer);
- GPU (when CUDA is present): torch eager fp16 vs torch fp16 replayed as one CUDA graph, and
  TensorRT (FP16) where ``tensorrt`` imports.

Unavailable backends are listed as skipped with the reason. Prints a table and writes
``benchmarks/results/inference_latency.json``.
Run: ``.venv/bin/python -m benchmarks.inference_latency [--iterations 100] [--threads N]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eifer_models.bundle import Bundle, create_demo_bundle
from eifer_models.runtimes.onnxruntime_backend import OnnxRuntimeBackend
from eifer_models.runtimes.select import backend_status
from eifer_models.runtimes.torch_cuda_backend import TorchCudaBackend

RESULTS = Path(__file__).resolve().parent / "results" / "inference_latency.json"
GRAPHS = ("encoders", "exp2emg", "emg2exp")


def _inputs(bundle: Bundle, graph: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    inputs, _ = bundle.io(graph)
    return {s.name: rng.random([d or 1 for d in s.shape], dtype=np.float32) for s in inputs}


def _time(fn: Callable[[], Any], iterations: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = np.empty(iterations)
    for i in range(iterations):
        t0 = time.perf_counter()
        fn()
        samples[i] = 1e3 * (time.perf_counter() - t0)
    return {
        "p50_ms": float(np.percentile(samples, 50)),
        "p99_ms": float(np.percentile(samples, 99)),
        "mean_ms": float(samples.mean()),
        "n": iterations,
    }


def _runtimes(bundle: Bundle, graph: str, threads: int | None, status: dict[str, str | None]):
    """(label, peer label or None, factory) per backend configuration."""
    yield (
        "onnxruntime-cpu",
        None,
        lambda: OnnxRuntimeBackend(bundle.onnx_path(graph), graph, threads),
    )
    inputs, outputs = bundle.io(graph)
    yield "torch-cpu-eager", None, lambda: TorchCudaBackend(
        bundle.build_module(graph), inputs, outputs, graph=graph, dtype="float32",
        cuda_graph=False, device="cpu",
    )  # fmt: skip
    if status["torch-cuda"] is None:
        yield (
            "torch-cuda-fp16-eager",
            None,
            lambda: TorchCudaBackend(
                bundle.build_module(graph), inputs, outputs, graph=graph, cuda_graph=False
            ),
        )
        yield (
            "torch-cuda-fp16-graph",
            None,
            lambda: TorchCudaBackend(
                bundle.build_module(graph), inputs, outputs, graph=graph, cuda_graph=True
            ),
        )
    if status["tensorrt"] is None:
        from eifer_models.runtimes.tensorrt_backend import load_or_build

        yield "tensorrt-fp16", None, lambda: load_or_build(
            bundle.onnx_path(graph), bundle.engines_root, graph,
            fp16_onnx_path=bundle.onnx_path(graph, fp16=True),
        )[0]  # fmt: skip


# ratio rows: (numerator, denominator): "how many times faster the first is"
RATIOS = (
    ("onnxruntime-cpu", "torch-cpu-eager"),
    ("torch-cuda-fp16-graph", "torch-cuda-fp16-eager"),
    ("tensorrt-fp16", "torch-cuda-fp16-eager"),
    ("tensorrt-fp16", "torch-cuda-fp16-graph"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    status = backend_status()
    skipped = {b: why for b, why in status.items() if why is not None}
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        bundle = create_demo_bundle(Path(tmp) / "bundle", fp16_onnx=status["tensorrt"] is None)
        for graph in GRAPHS:
            feed = _inputs(bundle, graph, rng)
            for label, _, factory in _runtimes(bundle, graph, args.threads, status):
                try:
                    runtime = factory()
                except Exception as exc:  # report, keep measuring the others
                    skipped[f"{label}/{graph}"] = f"{type(exc).__name__}: {exc}"
                    continue
                try:
                    stats = _time(lambda r=runtime, f=feed: r.run(f), args.iterations, args.warmup)
                except Exception as exc:
                    skipped[f"{label}/{graph}"] = f"run failed: {type(exc).__name__}: {exc}"
                    continue
                finally:
                    runtime.close()
                rows.append({"graph": graph, "backend": label, "device": runtime.device, **stats})
                print(
                    f"  {graph:9s} {label:24s} p50 {stats['p50_ms']:8.3f} ms  p99 {stats['p99_ms']:8.3f} ms",
                    flush=True,
                )
        from eifer_models.inference import FrameInference

        crop = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
        env = rng.random(22, dtype=np.float32)
        for backend in ("onnxruntime", "torch-cuda", "tensorrt"):
            if status[backend] is not None:
                continue
            try:
                stage = FrameInference(bundle, backend, threads=args.threads)
                stats = _time(lambda s=stage: s.process(crop, env), args.iterations, args.warmup)
            except Exception as exc:
                skipped[f"{backend}/frame"] = f"{type(exc).__name__}: {exc}"
                continue
            label = {
                "onnxruntime": "onnxruntime-cpu",
                "torch-cuda": "torch-cuda-fp16-graph",
                "tensorrt": "tensorrt-fp16",
            }[backend]
            rows.append(
                {
                    "graph": "frame",
                    "backend": label,
                    "device": stage.runtimes["encoders"].device,
                    **stats,
                }
            )
            stage.close()

    ratios = []
    for graph in (*GRAPHS, "frame"):
        by = {r["backend"]: r for r in rows if r["graph"] == graph}
        for fast, slow in RATIOS:
            if fast in by and slow in by:
                ratios.append({
                    "graph": graph, "backend": fast, "vs": slow,
                    "speedup_p50": by[slow]["p50_ms"] / by[fast]["p50_ms"],
                    "speedup_p99": by[slow]["p99_ms"] / by[fast]["p99_ms"],
                })  # fmt: skip

    print(
        f"\nPer-frame latency, batch 1 ({args.iterations} iterations after {args.warmup} warm-up)"
    )
    print(f"{'graph':9s} {'backend':24s} {'p50 ms':>9s} {'p99 ms':>9s}  device")
    for r in rows:
        print(
            f"{r['graph']:9s} {r['backend']:24s} {r['p50_ms']:9.3f} {r['p99_ms']:9.3f}  {r['device']}"
        )
    print("\nRatios (speed-up of the first backend over the second)")
    for r in ratios:
        print(
            f"{r['graph']:9s} {r['backend']:24s} vs {r['vs']:24s} p50 x{r['speedup_p50']:.2f}  p99 x{r['speedup_p99']:.2f}"
        )
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    result = {
        "benchmark": "inference_latency",
        "note": "untrained demo bundle (architecture timing only), batch 1",
        "machine": {
            "platform": platform.platform(),
            "cpu_count": __import__("os").cpu_count(),
            "torch": torch.__version__,
            "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "onnxruntime": __import__("onnxruntime").__version__,
        },
        "iterations": args.iterations,
        "threads": args.threads,
        "rows": rows,
        "ratios": ratios,
        "skipped": skipped,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Per-frame inference latency (p50/p99, batch 1) of EIFER's graphs on every backend that runs.

Graphs of untrained demo bundles (same architectures and sizes as the real models, so timing is
representative; :func:`eifer_models.bundle.create_demo_bundle`):

- ``encoders``: the three SMIRK encoders as one graph, image 1x3x224x224 -> pose, shape, phi
  (``smirk-224``), and the compact encoder of the CPU recipe, 1x3x64x64 (``compact-64``, the
  demo's; :mod:`eifer_models.compact_encoder`), with their ratio;
- ``exp2emg`` (55 -> 22) and ``emg2exp`` (22 -> 55) MLPs;
- ``frame``: :meth:`eifer_models.inference.GraphInference.process` (all three + conversion).

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


def _measured(
    call: Callable[[Any], Any], factory: Callable[[], Any], args: argparse.Namespace,
    skipped: dict[str, str], name: str,
) -> dict[str, Any] | None:  # fmt: skip
    """Timing of ``call(runtime)`` on a runtime from ``factory`` (None: skipped, reason kept)."""
    try:
        runtime = factory()
    except Exception as exc:  # report, keep measuring the others
        skipped[name] = f"{type(exc).__name__}: {exc}"
        return None
    try:
        stats = _time(lambda: call(runtime), args.iterations, args.warmup)
    except Exception as exc:
        skipped[name] = f"run failed: {type(exc).__name__}: {exc}"
        return None
    finally:
        runtime.close()
    device = runtime.runtimes["encoders"].device if hasattr(runtime, "runtimes") else runtime.device
    print(f"  {name:44s} p50 {stats['p50_ms']:8.3f} ms  p99 {stats['p99_ms']:8.3f} ms", flush=True)
    return {"device": device, **stats}


def _frame_rows(
    bundle: Bundle, encoders: str, rng: np.random.Generator, args: argparse.Namespace,
    status: dict[str, str | None], skipped: dict[str, str],
) -> list[dict[str, Any]]:  # fmt: skip
    """:meth:`GraphInference.process` (crop in, every graph, conversion) on each backend."""
    from eifer_models.inference import GraphInference

    size = bundle.manifest.crop.size
    crop = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    env = rng.random(22, dtype=np.float32)
    labels = {"onnxruntime": "onnxruntime-cpu", "torch-cuda": "torch-cuda-fp16-graph",
              "tensorrt": "tensorrt-fp16"}  # fmt: skip
    rows = []
    for backend, label in labels.items():
        if status[backend] is not None:
            continue
        stats = _measured(
            lambda s: s.process(crop, env),
            lambda b=backend: GraphInference(bundle, b, threads=args.threads),
            args, skipped, f"{label}/frame/{encoders}",
        )  # fmt: skip
        if stats is not None:
            rows.append({"graph": "frame", "encoders": encoders, "backend": label, **stats})
    return rows


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
        fp16 = status["tensorrt"] is None
        bundles = {
            "smirk-224": create_demo_bundle(Path(tmp) / "smirk", fp16_onnx=fp16),
            "compact-64": create_demo_bundle(
                Path(tmp) / "compact", fp16_onnx=fp16, architecture="compact"
            ),
        }
        for encoders, bundle in bundles.items():
            for graph in GRAPHS if encoders == "smirk-224" else ("encoders",):
                feed = _inputs(bundle, graph, rng)
                for label, _, factory in _runtimes(bundle, graph, args.threads, status):
                    name = f"{label}/{graph}/{encoders}"
                    stats = _measured(lambda r, f=feed: r.run(f), factory, args, skipped, name)
                    if stats is not None:
                        rows.append(
                            {"graph": graph, "encoders": encoders, "backend": label, **stats}
                        )
            rows += _frame_rows(bundle, encoders, rng, args, status, skipped)

    ratios = []
    for graph in (*GRAPHS, "frame"):
        for encoders in bundles:
            by = {r["backend"]: r for r in rows if (r["graph"], r["encoders"]) == (graph, encoders)}
            for fast, slow in RATIOS:
                if fast in by and slow in by:
                    ratios.append({
                        "graph": graph, "encoders": encoders, "backend": fast, "vs": slow,
                        "speedup_p50": by[slow]["p50_ms"] / by[fast]["p50_ms"],
                        "speedup_p99": by[slow]["p99_ms"] / by[fast]["p99_ms"],
                    })  # fmt: skip
    for graph in ("encoders", "frame"):  # the compact 64 px encoders vs SMIRK's at 224 px
        for backend in ("onnxruntime-cpu", "torch-cuda-fp16-graph", "tensorrt-fp16"):
            pair = {
                r["encoders"]: r for r in rows if (r["graph"], r["backend"]) == (graph, backend)
            }
            if len(pair) == 2:
                ratios.append({
                    "graph": graph, "encoders": "compact-64", "backend": backend,
                    "vs": f"smirk-224 {backend}",
                    "speedup_p50": pair["smirk-224"]["p50_ms"] / pair["compact-64"]["p50_ms"],
                    "speedup_p99": pair["smirk-224"]["p99_ms"] / pair["compact-64"]["p99_ms"],
                })  # fmt: skip

    print(
        f"\nPer-frame latency, batch 1 ({args.iterations} iterations after {args.warmup} warm-up)"
    )
    print(f"{'graph':9s} {'encoders':11s} {'backend':24s} {'p50 ms':>9s} {'p99 ms':>9s}  device")
    for r in rows:
        print(
            f"{r['graph']:9s} {r['encoders']:11s} {r['backend']:24s} {r['p50_ms']:9.3f} "
            f"{r['p99_ms']:9.3f}  {r['device']}"
        )
    print("\nRatios (speed-up of the first backend over the second)")
    for r in ratios:
        print(
            f"{r['graph']:9s} {r['encoders']:11s} {r['backend']:24s} vs {r['vs']:30s} "
            f"p50 x{r['speedup_p50']:.2f}  p99 x{r['speedup_p99']:.2f}"
        )
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    result = {
        "benchmark": "inference_latency",
        "note": "untrained demo bundles (architecture timing only), batch 1: SMIRK's encoders "
        "at 224 px and the compact encoders at 64 px (the CPU recipe's)",
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

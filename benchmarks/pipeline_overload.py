"""Pipeline under overload: capture->publish latency and frames skipped with a CPU hog beside it.

The real EMG node (simulator, 22 channels at 4096 Hz) and camera node (synthetic face) run as
separate processes, the pipeline with the demo model bundle (face crop + encoders + MLPs on ONNX
Runtime) in this one. Case ``alone``: nothing else of ours runs. Case ``hog``: one busy process
per core beside it, so the pipeline gets about half the CPU it had (the ~2x overload of the
issue: the demo on a loaded two-core machine). Case ``hog, no skipping``: the same with stale
frames kept (``video.max_queue_ms`` = inf, a 30-frame queue: the behaviour before). A pipeline that builds a backlog shows a latency that grows
with the run (up to its queue, 1 s and more); one that stays current skips stale frames (counted)
and keeps its latency bounded (DESIGN.md: "Under overload the pipeline stays current").

    python -m benchmarks.pipeline_overload [--seconds 20] [--size 1280x720] [--hogs N]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.pipeline_nodes import machine, source_nodes, use_loopback_lsl, write_results


def _burn(stop: Any) -> None:
    """A CPU hog: pure Python arithmetic until told to stop."""
    x = 0
    while not stop.is_set():
        for i in range(100_000):
            x = (x + i * i) % 1_000_003


def run_case(
    seconds: float,
    size: str,
    bundle: Path,
    hogs: int,
    name: str,
    tag: str,
    max_queue_ms: float = 50.0,
) -> dict:
    from eifer_models.live import FramePredictor
    from streaming.bus.pubsub import Publisher
    from streaming.config import validate
    from streaming.pipeline.pipeline import Pipeline, PipelineConfig

    ctx = mp.get_context("spawn")
    stop_hogs = ctx.Event()
    workers = [ctx.Process(target=_burn, args=(stop_hogs,), daemon=True) for _ in range(hogs)]
    with source_nodes(f"overload-{tag}", size) as (emg, cam):
        try:
            config = validate(
                PipelineConfig,
                {
                    "emg": {"name": emg},
                    "video": {"name": cam, "max_queue_ms": max_queue_ms},
                    "output": {"lsl_name": f"EIFER-overload-{tag}"},
                    "models": {"bundle": str(bundle), "backend": "onnxruntime"},
                },
            )
            models = FramePredictor.from_config(config.models)
            pipeline = Pipeline(config, models=models, publisher=Publisher("tcp://127.0.0.1:*"))
            for worker in workers:
                worker.start()
            thread = threading.Thread(target=pipeline.run, daemon=True)
            thread.start()
            # measure once both streams flow and the models are warm (a loaded machine starts the
            # nodes slowly): statistics and counts from then on
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not (
                pipeline.emg.health.connected and pipeline.frames.health.connected
            ):
                time.sleep(0.5)
            time.sleep(3.0)
            pipeline.latency.reset()
            counts = dict(pipeline.status()["frames"])
            time.sleep(seconds)
            pipeline.stop()
            thread.join(30)
            status = pipeline.status()
        finally:
            stop_hogs.set()
            for worker in workers:
                worker.join(5)
                if worker.is_alive():
                    worker.kill()
    frames = {k: v - counts.get(k, 0) for k, v in status["frames"].items()}
    return {
        "case": name,
        "cpu_hogs": hogs,
        "max_queue_ms": max_queue_ms,
        "backend": status["backend"],
        "frames": frames,
        "capture_to_publish_ms": status["latency_ms"].get("capture_to_publish"),
        "arrival_to_publish_ms": status["latency_ms"].get("arrival_to_publish"),
        "emg_connected": status["streams"]["emg"]["connected"],
        "latency_ms": status["latency_ms"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--size", default="1280x720", help="camera frame size")
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 2, help="busy processes")
    args = parser.parse_args(argv)
    use_loopback_lsl()
    from eifer_models.bundle import create_demo_bundle

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as work:
        bundle = create_demo_bundle(Path(work) / "bundle").path
        pid = os.getpid()
        cases = [
            run_case(args.seconds, args.size, bundle, 0, "alone", f"alone{pid}"),
            run_case(args.seconds, args.size, bundle, args.hogs, "hog", f"hog{pid}"),
            # the same overload without skipping (a 30-frame queue, as before): the backlog
            run_case(
                args.seconds, args.size, bundle, args.hogs, "hog, no skipping", f"backlog{pid}",
                max_queue_ms=1e9,
            ),
        ]  # fmt: skip
    print(f"pipeline under overload, {args.size} frames at 30 fps, {args.seconds:g} s per case")
    print("capture->publish (camera + transport + pipeline), arrival->publish (this pipeline)")
    print(
        f"{'case':<18} {'c2p p50':>8} {'c2p p99':>8} {'a2p p50':>8} {'a2p p99':>8} "
        f"{'published':>10} {'skipped':>8} {'dropped':>8} {'emg_missing':>12}"
    )
    nan = float("nan")
    for case in cases:
        c2p, a2p = case["capture_to_publish_ms"] or {}, case["arrival_to_publish_ms"] or {}
        fr = case["frames"]
        print(
            f"{case['case']:<18} {c2p.get('p50', nan):>8.1f} {c2p.get('p99', nan):>8.1f} "
            f"{a2p.get('p50', nan):>8.1f} {a2p.get('p99', nan):>8.1f} {fr['published']:>10} "
            f"{fr['skipped']:>8} {fr['dropped']:>8} {fr['emg_missing']:>12}"
        )
    write_results(
        "pipeline_overload",
        {
            "seconds_per_case": args.seconds,
            "frame_size": args.size,
            "machine": {**machine(), "load_average_before": [round(x, 2) for x in load_before]},
            "cases": cases,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

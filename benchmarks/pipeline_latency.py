"""Pipeline latency per frame, capture to publish (p50/p99), on this CPU.

Runs the real EMG node (simulator, 22 channels at 4096 Hz) and camera node (synthetic face) as
separate processes and the pipeline in this one, EMG only and with the demo model bundle (face
crop + encoders + MLPs on the selected backend). "capture_to_publish" is LSL time at publish minus
the frame's capture stamp; it includes the bounded wait for EMG up to the frame's time (the EMG
arrives in 7.8 ms chunks), which is the floor of any frame-synchronised EMG pipeline.

    python -m benchmarks.pipeline_latency [--seconds 20] [--size 1280x720]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _node(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "nodes.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run_case(seconds: float, size: str, bundle: Path | None, tag: str) -> dict:
    from streaming.bus import Publisher
    from streaming.config import validate
    from streaming.pipeline import Pipeline, PipelineConfig

    emg, cam = f"EMG-bench-{tag}", f"Camera-bench-{tag}"
    nodes = [
        _node(["node", "emg", "--name", emg]),
        _node(["node", "camera", "--source", "synthetic", "--name", cam, "--size", size]),
    ]
    try:
        config = validate(
            PipelineConfig,
            {
                "emg": {"name": emg},
                "video": {"name": cam},
                "output": {"lsl_name": f"EIFER-bench-{tag}"},
                "models": {"bundle": str(bundle) if bundle else ""},
            },
        )
        models = None
        if bundle is not None:
            from eifer_models.live import LiveModels

            models = LiveModels.from_config(config.models)
        pipeline = Pipeline(config, models=models, publisher=Publisher("tcp://127.0.0.1:*"))
        # measure after everything connected and warmed up: reset the stats at 5 s
        warm = threading.Timer(5.0, lambda: pipeline.latency.__init__())
        stop = threading.Timer(5.0 + seconds, pipeline.stop)
        warm.start()
        stop.start()
        pipeline.run()
        summary = pipeline.latency.summary()
        status = pipeline.status()
    finally:
        for node in nodes:
            node.terminate()
            node.wait(10)
    return {
        "models": bundle is not None,
        "backend": status["backend"],
        "frames": status["frames"],
        "latency_ms": summary,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--size", default="1280x720", help="camera frame size")
    args = parser.parse_args(argv)
    os.environ.setdefault(
        "LSLAPICFG", str(Path(__file__).resolve().parents[1] / "tests" / "lsl_api.cfg")
    )
    from eifer_models.bundle import create_demo_bundle

    with tempfile.TemporaryDirectory() as work:
        bundle = create_demo_bundle(Path(work) / "bundle").path
        cases = [
            run_case(args.seconds, args.size, None, f"emg{os.getpid()}"),
            run_case(args.seconds, args.size, bundle, f"models{os.getpid()}"),
        ]
    print(f"pipeline latency, {args.size} frames at 30 fps, {args.seconds:g} s per case")
    print(f"{'case':<22} {'stage':<20} {'p50 ms':>8} {'p99 ms':>8} {'n':>6}")
    for case in cases:
        name = f"models ({case['backend']})" if case["models"] else "EMG only"
        for stage, row in sorted(case["latency_ms"].items()):
            print(f"{name:<22} {stage:<20} {row['p50']:>8.2f} {row['p99']:>8.2f} {row['n']:>6}")
        print(f"{name:<22} frames {case['frames']}")
    RESULTS.mkdir(exist_ok=True)
    out = {
        "benchmark": "pipeline_latency",
        "seconds_per_case": args.seconds,
        "frame_size": args.size,
        "machine": {
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "cases": cases,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    (RESULTS / "pipeline_latency.json").write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m benchmarks`` (``make bench``): every benchmark in turn, each in its own process so
one failing does not hide the others; results land in ``benchmarks/results/``."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = [
    "dsp_throughput",
    "dsp_online_vs_offline",
    "emg_simulator",
    "pipeline_latency",
    "pipeline_overload",
    "camera_node",
    "inference_latency",
    "renderer_speed",
    "recording_throughput",
    "display_latency",
    "face_detection",
    "participant_render",
    "synth_speed",
    "trainer_toy",
    "demo_stop",
]


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        print(f"\n=== benchmarks.{name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"benchmarks.{name}"]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m benchmarks`` (``make bench``): every benchmark in turn, each in its own process so
one failing does not hide the others; results land in ``benchmarks/results/``."""

from __future__ import annotations

import argparse
import subprocess
import sys

BENCHMARKS = [
    "dsp_throughput",
    "dsp_online_vs_offline",
    "quality_detection",
    "envelope_frontier",
    "emg_simulator",
    "pipeline_latency",
    "pipeline_overload",
    "camera_node",
    "inference_latency",
    "renderer_speed",
    "recording_throughput",
    "display_latency",
    "face_detection",
    "face_framing",
    "demo_stop",
    "lab_session",
    "participant_render",
    "synth_speed",
    "trainer_toy",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run the benchmarks (all by default), each in its own process; "
        "python -m benchmarks.NAME --help shows one benchmark's options.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and stop")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; use --list")
    if args.list:
        print("\n".join(BENCHMARKS))
        return 0
    failed = []
    for name in args.names or BENCHMARKS:
        print(f"\n=== benchmarks.{name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"benchmarks.{name}"]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

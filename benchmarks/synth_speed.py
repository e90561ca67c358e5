"""``eifer synth`` speed as a multiple of real time, and what it writes per minute.

One participant, ``--minutes`` of the protocol per session, an occluded and an occlusion-free
session (the default plan), at the default 640x360 and at 1280x720, one core (pinned, torch one
thread). Reported per size: simulated seconds / wall seconds and / CPU seconds (the CPU figure
is the one to trust when other jobs share the machine), and megabytes written per simulated
minute.

Writes ``benchmarks/results/synth_speed.json``.
Run: ``.venv/bin/python -m benchmarks.synth_speed [--minutes 0.5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from simulation.synth import SynthConfig, session_plan, synthesise

RESULTS = Path(__file__).resolve().parent / "results" / "synth_speed.json"


def measure(config: SynthConfig) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        w0, c0 = time.perf_counter(), time.process_time()
        folders = synthesise(config, Path(tmp) / "out")
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        size = sum(p.stat().st_size for f in folders for p in f.iterdir())
    simulated = 60.0 * config.minutes * len(session_plan(config))
    return {
        "simulated_s": simulated,
        "wall_s": wall,
        "cpu_s": cpu,
        "x_real_time_wall": simulated / wall,
        "x_real_time_cpu": simulated / cpu,
        "mb_per_simulated_minute": size / 1e6 / (simulated / 60.0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=0.5)
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    torch.set_num_threads(1)
    rows = {}
    for width, height, face_px in ((640, 360, 160), (1280, 720, 224)):
        config = SynthConfig(minutes=args.minutes, width=width, height=height, face_px=face_px)
        row = measure(config)
        rows[f"{width}x{height}"] = row
        print(
            f"synth {width}x{height}: {row['x_real_time_wall']:.1f}x real time (wall), "
            f"{row['x_real_time_cpu']:.1f}x (CPU), {row['mb_per_simulated_minute']:.0f} MB per "
            "simulated minute"
        )
    result = {
        "benchmark": "synth_speed",
        "minutes_per_session": args.minutes,
        "sessions": "1 occluded + 1 occlusion-free",
        "load_avg_1min": os.getloadavg()[0],
        "results": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Camera node figures: capture -> push latency of the real node, and the face crop time.

- capture -> push: ``eifer node camera --source synthetic`` runs as its own process (1280x720 at
  30 fps by default) with ``status_interval_s=1``; each status line it logs gives the p50/p99 of
  LSL time at push minus the frame's capture stamp over that second, and the frames the source
  dropped. The first ``--warmup`` seconds are left out. Reported: the median of the per-second
  p50s and the largest per-second p99 (an upper bound of the run's p99).
- face crop: ``eifer_models.face_crop.FaceCropper`` (Haar detection every third frame on a
  320-pixel-wide grey copy, smoothed box, 224x224 affine crop), timed per frame on the synthetic
  face source's frames, split into detection frames and the others.

    python -m benchmarks.camera_node [--seconds 20] [--size 1280x720]

Writes ``benchmarks/results/camera_node.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "camera_node.json"
STATUS = re.compile(
    r"camera: (\d+) frames, (\d+) dropped by the camera, "
    r"capture->push p50 ([\d.]+|nan) ms p99 ([\d.]+|nan) ms"
)


def capture_to_push(seconds: float, warmup_s: float, size: str) -> dict:
    """Run the camera node for ``warmup_s + seconds`` and parse its per-second status lines."""
    name = f"Camera-bench-{os.getpid()}"
    cmd = [
        sys.executable, "-m", "nodes.cli", "node", "camera", "--source", "synthetic",
        "--name", name, "--size", size, "--set", "status_interval_s=1.0",
        "--duration", str(warmup_s + seconds),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=warmup_s + seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(f"camera node failed ({done.returncode}): {done.stderr[-2000:]}")
    lines = [m.groups() for m in STATUS.finditer(done.stderr)]
    if len(lines) < 3:
        raise RuntimeError(f"camera node logged {len(lines)} status lines:\n{done.stderr[-2000:]}")
    skip = int(warmup_s)  # one status line per second
    kept = lines[skip:] if len(lines) > skip + 2 else lines
    p50 = np.array([float(g[2]) for g in kept])
    p99 = np.array([float(g[3]) for g in kept])
    first_frames, first_dropped = (int(v) for v in lines[skip - 1][:2]) if skip else (0, 0)
    last_frames, last_dropped = int(kept[-1][0]), int(kept[-1][1])
    return {
        "intervals": len(kept),
        "frames": last_frames - first_frames,
        "dropped_by_source": last_dropped - first_dropped,
        "p50_ms_median": float(np.nanmedian(p50)),
        "p99_ms_max": float(np.nanmax(p99)),
        "p99_ms_median": float(np.nanmedian(p99)),
    }


def face_crop(seconds: float, size: str) -> dict:
    """Time FaceCropper.process on the synthetic source's frames (paced at 30 fps)."""
    from eifer_models.face_crop import FaceCropper
    from streaming.acquisition.camera import SyntheticFaceSource

    width, height = (int(v) for v in size.split("x"))
    source = SyntheticFaceSource(width, height, 30.0)
    source.open()
    cropper = FaceCropper()
    detect_ms, track_ms, found = [], [], 0
    try:
        t_end = time.monotonic() + seconds
        k = 0
        while time.monotonic() < t_end:
            frame = source.read()
            if frame is None:
                continue
            result = cropper.process(frame.rgb)
            (detect_ms if k % cropper.detect_every == 0 else track_ms).append(result.latency_ms)
            found += int(result.detected)
            k += 1
    finally:
        source.close()
    detect, track = np.array(detect_ms), np.array(track_ms)
    return {
        "frames": k,
        "detect_every": cropper.detect_every,
        "detection_frames": len(detect),
        "faces_found": found,
        "detection_frame_ms": {
            "p50": float(np.median(detect)),
            "p99": float(np.percentile(detect, 99)),
        },
        "other_frame_ms": {"p50": float(np.median(track)), "p99": float(np.percentile(track, 99))},
        "all_frames_ms": {
            "p50": float(np.median(np.concatenate([detect, track]))),
            "p99": float(np.percentile(np.concatenate([detect, track]), 99)),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    push = capture_to_push(args.seconds, args.warmup, args.size)
    print(
        f"camera node {args.size} at 30 fps, {push['intervals']} s: capture->push "
        f"p50 {push['p50_ms_median']:.1f} ms, p99 <= {push['p99_ms_max']:.1f} ms "
        f"(median of the per-second p99s {push['p99_ms_median']:.1f} ms), "
        f"{push['frames']} frames, {push['dropped_by_source']} dropped by the source",
        flush=True,
    )
    crop = face_crop(min(args.seconds, 10.0), args.size)
    print(
        f"face crop {args.size}, {crop['frames']} frames ({crop['faces_found']} detections "
        f"found a face): detection frames p50 {crop['detection_frame_ms']['p50']:.1f} / "
        f"p99 {crop['detection_frame_ms']['p99']:.1f} ms, other frames p50 "
        f"{crop['other_frame_ms']['p50']:.2f} / p99 {crop['other_frame_ms']['p99']:.2f} ms"
    )
    result = {
        "benchmark": "camera_node",
        "size": args.size,
        "rate_hz": 30.0,
        "seconds": args.seconds,
        "load_average_1min": {"before": load_before[0], "after": os.getloadavg()[0]},
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
        "capture_to_push": push,
        "face_crop": crop,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

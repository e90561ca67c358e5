"""Cost of the ``face`` bus topic (streaming/pipeline/face_preview.py): encoding per published
message and its size, and the pipeline's frame-loop latency with the preview on (5 Hz) and off, in
one run.

1. Encoding: a 1280x720 frame of a real face photograph (``skimage.data.astronaut``) and the
   encoders' 224 px crop, through :func:`~streaming.pipeline.face_preview.encode_face_fields`
   (resize to 320 px, JPEG at quality 80, crop to 112 px) on one thread: CPU ms
   (``time.thread_time``) and bytes of the msgpack payload, over ``--repeats`` messages.
2. The pipeline (real EMG and camera nodes, 1280x720, the demo bundle; see
   ``benchmarks/pipeline_latency.py``) with ``output.face_preview_hz`` 0 and 5, alternating
   ``--rounds`` times: per-frame ``pipeline`` and ``arrival_to_publish`` latency p50/p99, and the
   ratio on / off of their medians over the rounds.

    python -m benchmarks.face_preview [--seconds 20] [--rounds 2] [--repeats 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def encode_cost(repeats: int) -> dict:
    import cv2
    from skimage.data import astronaut

    from streaming.bus.pubsub import encode
    from streaming.pipeline.face_preview import PreviewJob, encode_face_fields

    frame = cv2.resize(astronaut(), (1280, 720), interpolation=cv2.INTER_AREA)
    crop = cv2.resize(astronaut()[0:260, 120:380], (224, 224))
    box = np.array([560.0, 60.0, 220.0, 260.0], np.float32)
    landmarks = np.random.default_rng(0).random((478, 3)).astype(np.float32) * 200 + 500
    cv2.setNumThreads(1)
    cpu_ms, payload_bytes, image_bytes, crop_bytes = [], [], [], []
    for k in range(repeats + 5):
        job = PreviewJob(k / 5, k, frame, True, box, landmarks, crop)
        t0 = time.thread_time()
        fields = encode_face_fields(job)
        parts = encode("face", fields, t=job.t, frame=k)
        if k >= 5:  # warm-up
            cpu_ms.append(1e3 * (time.thread_time() - t0))
            payload_bytes.append(len(parts[1]))
            image_bytes.append(len(fields["image"]))
            crop_bytes.append(len(fields["crop"]))
    return {
        "source": "skimage astronaut, 1280x720; crop 224 px",
        "preview": "320x180 JPEG q80 + 112 px crop JPEG + 478 landmarks",
        "cpu_ms_p50": float(np.median(cpu_ms)),
        "cpu_ms_p99": float(np.percentile(cpu_ms, 99)),
        "payload_bytes_p50": int(np.median(payload_bytes)),
        "image_bytes_p50": int(np.median(image_bytes)),
        "crop_bytes_p50": int(np.median(crop_bytes)),
        "messages": repeats,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--size", default="1280x720")
    args = parser.parse_args(argv)
    os.environ.setdefault(
        "LSLAPICFG", str(Path(__file__).resolve().parents[1] / "tests" / "lsl_api.cfg")
    )
    from benchmarks.pipeline_latency import make_profile, run_case
    from eifer_models.bundle import create_demo_bundle

    load_before = os.getloadavg()[0]
    encoding = encode_cost(args.repeats)
    print(
        f"face message: {encoding['cpu_ms_p50']:.2f} ms CPU (p99 {encoding['cpu_ms_p99']:.2f}), "
        f"{encoding['payload_bytes_p50']} bytes (image {encoding['image_bytes_p50']}, crop "
        f"{encoding['crop_bytes_p50']})"
    )
    cases = []
    with tempfile.TemporaryDirectory() as work:
        bundle = create_demo_bundle(Path(work) / "bundle").path
        profile = make_profile(Path(work))
        for r in range(args.rounds):
            for hz in (0.0, 5.0):
                tag = f"face{int(hz)}r{r}p{os.getpid()}"
                case = run_case(args.seconds, args.size, bundle, profile, tag, face_preview_hz=hz)
                case["face_preview_hz"] = hz
                cases.append(case)
                row = case["latency_ms"]
                print(
                    f"round {r} preview {hz:g} Hz: pipeline p50 {row['pipeline']['p50']:.2f} "
                    f"p99 {row['pipeline']['p99']:.2f} ms; arrival_to_publish p50 "
                    f"{row['arrival_to_publish']['p50']:.2f} p99 "
                    f"{row['arrival_to_publish']['p99']:.2f} ms; frames {case['frames_measured']}"
                )

    def median_of(hz: float, stage: str, q: str) -> float:
        return float(
            np.median([c["latency_ms"][stage][q] for c in cases if c["face_preview_hz"] == hz])
        )

    ratios = {
        f"{stage}_{q}": median_of(5.0, stage, q) / median_of(0.0, stage, q)
        for stage in ("pipeline", "arrival_to_publish")
        for q in ("p50", "p99")
    }
    print("ratio preview on / off:", {k: round(v, 3) for k, v in ratios.items()})
    RESULTS.mkdir(exist_ok=True)
    out = {
        "benchmark": "face_preview",
        "encoding": encoding,
        "pipeline": {
            "seconds_per_case": args.seconds,
            "frame_size": args.size,
            "rounds": args.rounds,
            "ratio_on_over_off": ratios,
            "cases": [
                {
                    "face_preview_hz": c["face_preview_hz"],
                    "backend": c["backend"],
                    "frames_measured": c["frames_measured"],
                    "latency_ms": c["latency_ms"],
                }
                for c in cases
            ],
        },
        "machine": {
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    (RESULTS / "face_preview.json").write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

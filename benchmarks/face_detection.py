"""Face detection for the encoder crop: Haar vs BlazeFace vs MediaPipe's 478 landmarks.

Sources (frames made up front, then every method runs on the same frames):

- ``photo``: the real face photograph ``skimage.data.astronaut()`` (512x512), with fresh sensor
  noise per frame (Gaussian, sigma 2 grey levels), head still;
- ``moving``: the synthetic camera source (the same photograph framed 1280x720 as the camera
  node sends it, head motion: translation, roll, zoom, brightness drift), 10 s at 30 fps;
- further sources (the synthetic participant, with and without electrodes) plug in through
  ``SOURCES``: a function ``(n_frames) -> (description, frames)`` or ``(description, frames,
  truth)``, ``truth`` a dict of per-frame series (e.g. true activation per muscle and side). With
  a truth, the benchmark also reports the outside check of issue 14: the correlation of each
  landmark measure (:mod:`eifer_models.face_detection.measures`) with each truth series.

Methods: ``haar`` (OpenCV cascade at 320 px width, every frame), ``blazeface`` (short range,
every frame), ``blazeface_full`` (the full-range model), ``landmarks`` (Face Mesh + Iris, tracked; the box is the landmarks' extent, SMIRK's
crop box), ``eifer_crop`` (the crop stage in eifer mode: BlazeFace, box smoothed). Per method and
source: detection rate, box jitter and time per frame (p50/p99). Jitter: the frame-to-frame
noise of the box centre and width, estimated from second differences (``std(d2 x) / sqrt(6)`` is
the noise standard deviation for white noise; the sources' motion is slow enough to add < 0.05
px), in pixels and in % of the box width.

``--mediapipe-python PATH`` (a Python with ``mediapipe==0.10.14`` installed elsewhere, e.g. a
throwaway venv) adds the runtime comparison: MediaPipe's own BlazeFace and Face Mesh (with
attention, 478 points) on the same frames: their time per frame and how far ours are from theirs.

Prints a table and writes ``benchmarks/results/face_detection.json``.
Run: ``.venv/bin/python -m benchmarks.face_detection [--frames 300] [--mediapipe-python PY]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "face_detection.json"


def photo_source(n_frames: int) -> tuple[str, np.ndarray]:
    from skimage import data

    rng = np.random.default_rng(0)
    photo = data.astronaut().astype(np.float32)
    frames = [
        np.clip(photo + rng.normal(0, 2.0, photo.shape), 0, 255).astype(np.uint8)
        for _ in range(n_frames)
    ]
    return "photo (astronaut, still, sensor noise)", np.stack(frames)


def moving_source(n_frames: int) -> tuple[str, np.ndarray]:
    from streaming.camera.sources import SyntheticFaceSource

    source = SyntheticFaceSource(1280, 720, 30.0)
    source.open()
    frames = np.stack([source._frame(k) for k in range(n_frames)])  # unpaced, deterministic
    source.close()
    return "moving (synthetic camera 1280x720, head motion)", frames


SOURCES: dict[str, Callable[[int], tuple]] = {
    "photo": photo_source,
    "moving": moving_source,
    # "participant": the synthetic participant camera (with/without electrodes) goes here
}


def make_methods() -> dict[str, Callable[[np.ndarray], np.ndarray | None]]:
    """Each method: frame -> box (x, y, w, h) or None; stateful ones keep their state."""
    from eifer_models.face_crop import FaceCropper
    from eifer_models.face_detection.blazeface import BlazeFace
    from eifer_models.face_detection.crop import landmark_box
    from eifer_models.face_detection.haar import HaarDetector
    from eifer_models.face_detection.landmarks import FaceLandmarker

    haar, blazeface, full_range = HaarDetector(), BlazeFace(), BlazeFace(model="full_range")
    landmarker = FaceLandmarker(BlazeFace())
    cropper = FaceCropper(mode="eifer", detector="blazeface", landmarks=False)

    def blazeface_box(rgb: np.ndarray) -> np.ndarray | None:
        faces = blazeface.detect(rgb)
        return faces[0].box if faces else None

    def full_range_box(rgb: np.ndarray) -> np.ndarray | None:
        faces = full_range.detect(rgb)
        return faces[0].box if faces else None

    def landmark_extent(rgb: np.ndarray) -> np.ndarray | None:
        result = landmarker.process(rgb)
        if result is None:
            return None
        left, top, right, bottom = landmark_box(result.landmarks)
        return np.array([left, top, right - left, bottom - top])

    def eifer_crop(rgb: np.ndarray) -> np.ndarray | None:
        result = cropper.process(rgb)
        return np.asarray(result.box) if result.detected else None

    return {
        "haar": haar.detect_box,
        "blazeface": blazeface_box,
        "blazeface_full": full_range_box,
        "landmarks": landmark_extent,
        "eifer_crop": eifer_crop,
    }


def noise_std(series: np.ndarray) -> float:
    """White-noise standard deviation of a slowly varying series, from its second differences."""
    if len(series) < 4:
        return float("nan")
    return float(np.std(np.diff(series, n=2)) / np.sqrt(6.0))


def measure(method: Callable[[np.ndarray], np.ndarray | None], frames: np.ndarray) -> dict:
    method(frames[0])  # warm-up (allocations, first detection of a tracker)
    times, boxes = [], []
    for frame in frames:
        t0 = time.perf_counter()
        box = method(frame)
        times.append(1e3 * (time.perf_counter() - t0))
        boxes.append(box)
    found = np.array([b for b in boxes if b is not None])
    row: dict[str, Any] = {
        "frames": len(frames),
        "detection_rate": len(found) / len(frames),
        "p50_ms": float(np.percentile(times, 50)),
        "p99_ms": float(np.percentile(times, 99)),
        "min_ms": float(np.min(times)),
    }
    if len(found) == len(frames):  # jitter only over an unbroken run
        centre = found[:, :2] + found[:, 2:] / 2
        jitter = float(np.hypot(noise_std(centre[:, 0]), noise_std(centre[:, 1])))
        width = float(np.mean(found[:, 2]))
        row.update(
            {
                "box_width_px": width,
                "centre_jitter_px": jitter,
                "width_jitter_px": noise_std(found[:, 2]),
                "centre_jitter_pct_of_width": 100 * jitter / width,
            }
        )
    return row


def expression_check(frames: np.ndarray, truth: dict[str, np.ndarray]) -> dict:
    """Pearson r of each landmark measure with each truth series, over the frames where the
    landmarks were found."""
    from eifer_models.face_detection.landmarks import FaceLandmarker
    from eifer_models.face_detection.measures import correlations, expression_measures

    landmarker = FaceLandmarker()
    found, marks = [], []
    for k, frame in enumerate(frames):
        result = landmarker.process(frame)
        if result is not None:
            found.append(k)
            marks.append(result.landmarks)
    if len(found) < 3:
        return {"error": f"landmarks found in {len(found)} of {len(frames)} frames"}
    measures = expression_measures(np.stack(marks))
    kept = {name: np.asarray(series)[found] for name, series in truth.items()}
    return correlations(measures, kept)


MEDIAPIPE_SCRIPT = r"""
import json, sys, time
import numpy as np
import mediapipe as mp
frames = np.load(sys.argv[1])
out = {"version": mp.__version__}
def timed(fn):
    fn(frames[0]); times, res = [], []
    for f in frames:
        t0 = time.perf_counter(); res.append(fn(f)); times.append(1e3 * (time.perf_counter() - t0))
    return res, [float(np.percentile(times, 50)), float(np.percentile(times, 99))]
for selection, key in ((0, "blazeface"), (1, "blazeface_full")):
    with mp.solutions.face_detection.FaceDetection(model_selection=selection) as fd:
        def det(f):
            r = fd.process(f)
            if not r.detections:
                return None
            b = r.detections[0].location_data.relative_bounding_box
            h, w = f.shape[:2]
            return [b.xmin * w, b.ymin * h, b.width * w, b.height * h]
        out[key], out[key + "_ms"] = timed(det)
with mp.solutions.face_mesh.FaceMesh(refine_landmarks=True, max_num_faces=1) as fm:
    def mesh(f):
        r = fm.process(f)
        if not r.multi_face_landmarks:
            return None
        h, w = f.shape[:2]
        return [[p.x * w, p.y * h] for p in r.multi_face_landmarks[0].landmark]
    out["landmarks"], out["landmarks_ms"] = timed(mesh)
print(json.dumps(out))
"""


def compare_with_mediapipe(python: str, frames: np.ndarray) -> dict:
    """MediaPipe's own graphs on the same frames (in another interpreter): time and agreement."""
    from eifer_models.face_detection.blazeface import BlazeFace
    from eifer_models.face_detection.landmarks import FaceLandmarker

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.npy"
        np.save(path, frames)
        done = subprocess.run(
            [python, "-c", MEDIAPIPE_SCRIPT, str(path)], capture_output=True, text=True
        )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    blazeface, landmarker = BlazeFace(), FaceLandmarker(BlazeFace())
    full_range = BlazeFace(model="full_range")
    box_err, full_err, lm_err = [], [], []
    for frame, box, full, marks in zip(
        frames, theirs["blazeface"], theirs["blazeface_full"], theirs["landmarks"], strict=True
    ):
        for detector, reference, errors in (
            (blazeface, box, box_err),
            (full_range, full, full_err),
        ):
            faces = detector.detect(frame)
            if reference is not None and faces:
                errors.append(np.abs(faces[0].box - np.asarray(reference)).max())
        ours = landmarker.process(frame)
        if marks is not None and ours is not None:
            lm_err.append(np.linalg.norm(ours.landmarks[:, :2] - np.asarray(marks), axis=1).mean())
    return {
        "mediapipe": theirs["version"],
        "mediapipe_blazeface_p50_p99_ms": theirs["blazeface_ms"],
        "mediapipe_blazeface_full_p50_p99_ms": theirs["blazeface_full_ms"],
        "mediapipe_face_mesh_478_p50_p99_ms": theirs["landmarks_ms"],
        "blazeface_box_max_abs_diff_px_median": float(np.median(box_err)) if box_err else None,
        "full_range_box_max_abs_diff_px_median": float(np.median(full_err)) if full_err else None,
        "landmarks_mean_dist_px_median": float(np.median(lm_err)) if lm_err else None,
        "frames_compared": len(lm_err),
    }


def _package_mb(module: str) -> float | None:
    try:
        spec = __import__(module)
    except ImportError:
        return None
    root = Path(spec.__file__).parent
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=300, help="frames per source")
    parser.add_argument("--sources", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--mediapipe-python", help="a Python with mediapipe 0.10.14 (optional)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    from eifer_models.face_detection.models import fetch_models

    fetch_models()
    rows, comparisons, checks = [], {}, {}
    for key in args.sources:
        description, frames, *truth = SOURCES[key](args.frames)
        if truth:
            checks[key] = expression_check(frames, truth[0])
        for name, method in make_methods().items():
            rows.append({"source": key, "method": name, **measure(method, frames)})
        if args.mediapipe_python:
            comparisons[key] = compare_with_mediapipe(args.mediapipe_python, frames[:100])
        print(f"source {key}: {description}, {frames.shape[2]}x{frames.shape[1]}")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, 1 thread each")
    header = f"{'source':<8}{'method':<15}{'rate':>6}{'p50 ms':>8}{'p99 ms':>8}{'width':>7}{'jit px':>8}{'jit %':>7}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['source']:<8}{r['method']:<15}{r['detection_rate']:>6.2f}{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}"
              f"{r.get('box_width_px', float('nan')):>7.0f}{r.get('centre_jitter_px', float('nan')):>8.2f}"
              f"{r.get('centre_jitter_pct_of_width', float('nan')):>7.2f}")  # fmt: skip
    for key, check in checks.items():
        print(f"landmark measures vs truth on {key}:")
        for measure_name, row in check.items():
            print(f"  {measure_name:<26}" + " ".join(f"{t}={r:+.2f}" for t, r in row.items()))
    for key, comparison in comparisons.items():
        print(f"mediapipe on {key}: {comparison}")
    result = {
        "benchmark": "face_detection",
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "runtime": "ai-edge-litert",
        "runtime_package_mb": _package_mb("ai_edge_litert"),
        "rows": rows,
        "mediapipe_comparison": comparisons,
        "landmark_measures_vs_truth": checks,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

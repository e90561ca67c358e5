"""Face detection for the encoder crop: Haar vs BlazeFace vs MediaPipe's 478 landmarks.

Sources (frames made up front, then every method runs on the same frames):

- ``photo``: the real face photograph ``skimage.data.astronaut()`` (512x512), with fresh sensor
  noise per frame (Gaussian, sigma 2 grey levels), head still;
- ``moving``: the synthetic camera source (the same photograph framed 1280x720 as the camera
  node sends it, head motion: translation, roll, zoom, brightness drift), 10 s at 30 fps;
- ``participant`` / ``participant_electrodes``: the synthetic participant (1280x720, without and
  with the Fridlund electrodes), clips of consecutive frames of several seeds; a detection counts
  when its box has IoU > 0.3 with the true face box. Sources plug in through ``SOURCES``: a
  function ``(n_frames) -> (description, frames)`` or ``(description, frames, truth)``, truth
  ``{"face_box": (n, 4), "clip": (n,)}``.

The outside check of issue 14 (:mod:`benchmarks.participant_outside_check`; ``--sources`` with no
name runs only it): MediaPipe's landmark measures against the participant's true activations.

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

from eifer_models.face_detection.crop import box_iou

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
    from streaming.acquisition.camera import SyntheticFaceSource

    source = SyntheticFaceSource(1280, 720, 30.0)
    source.open()
    frames = np.stack([source._frame(k) for k in range(n_frames)])  # unpaced, deterministic
    source.close()
    return "moving (synthetic camera 1280x720, head motion)", frames


PARTICIPANT_SEEDS = (0, 1, 2, 3)


def participant_source(n_frames: int, occlusion: str | None) -> tuple[str, np.ndarray, dict]:
    """The synthetic participant (1280x720): ``len(PARTICIPANT_SEEDS)`` clips of consecutive
    30 fps frames, each from 1 s before a different functional movement's onset (head motion,
    expression onset); truth: the face box of every frame and the clip it belongs to."""
    from benchmarks.participant_outside_check import participant
    from simulation import FUNCTIONAL_MOVEMENTS
    from simulation.participant.render import ParticipantRenderer

    per_clip = max(n_frames // len(PARTICIPANT_SEEDS), 4)
    frames, boxes, clips = [], [], []
    for k, seed in enumerate(PARTICIPANT_SEEDS):
        person = participant(seed)
        renderer = ParticipantRenderer(person.traits, occlusion=occlusion)
        movement = FUNCTIONAL_MOVEMENTS[1 + (3 * k) % (len(FUNCTIONAL_MOVEMENTS) - 1)]
        event = next(e for e in person.simulator.script.events if e.movement == movement)
        state = person.state(event.start_s - 1.0 + np.arange(per_clip) / 30.0)
        for i in range(per_clip):
            frame = renderer.render(state, i)
            frames.append(frame.rgb)
            boxes.append(frame.face_box)
            clips.append(k)
    name = f"with {occlusion} electrodes" if occlusion else "occlusion-free"
    description = f"synthetic participant 1280x720, {name}, seeds {list(PARTICIPANT_SEEDS)}"
    return description, np.stack(frames), {"face_box": np.array(boxes), "clip": np.array(clips)}


SOURCES: dict[str, Callable[[int], tuple]] = {
    "photo": photo_source,
    "moving": moving_source,
    "participant": lambda n: participant_source(n, None),
    "participant_electrodes": lambda n: participant_source(n, "fridlund"),
}


def make_methods() -> dict[str, Callable[[np.ndarray], np.ndarray | None]]:
    """Each method: frame -> box (x, y, w, h) or None; stateful ones keep their state (a fresh
    set of methods has none)."""
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


def _run(method: Callable[[np.ndarray], np.ndarray | None], frames: np.ndarray) -> tuple:
    method(frames[0])  # warm-up (allocations, first detection of a tracker)
    times, boxes = [], []
    for frame in frames:
        t0 = time.perf_counter()
        box = method(frame)
        times.append(1e3 * (time.perf_counter() - t0))
        boxes.append(box)
    return times, boxes


def _jitter(found: np.ndarray) -> tuple[float, float]:
    centre = found[:, :2] + found[:, 2:] / 2
    return float(np.hypot(noise_std(centre[:, 0]), noise_std(centre[:, 1]))), noise_std(found[:, 2])


def measure(
    make_method: Callable[[], Callable[[np.ndarray], np.ndarray | None]],
    frames: np.ndarray,
    truth: dict[str, np.ndarray] | None = None,
) -> dict:
    """Detection rate, time per frame and box jitter of one method. With a truth (``face_box``
    per frame, ``clip`` ids), a detection counts only when its box overlaps the true face box
    with IoU > 0.3, each clip runs on a fresh method, and the jitter is averaged over the clips
    the method followed unbroken."""
    clip_ids = truth["clip"] if truth is not None else np.zeros(len(frames), int)
    times, boxes, jitters = [], [], []
    for clip in np.unique(clip_ids):
        index = np.flatnonzero(clip_ids == clip)
        clip_times, clip_boxes = _run(make_method(), frames[index])
        times += clip_times
        boxes += clip_boxes
        found = [b for b in clip_boxes if b is not None]
        if len(found) == len(index):  # jitter only over an unbroken run
            jitters.append((*_jitter(np.array(found)), float(np.mean(np.array(found)[:, 2]))))
    if truth is not None:
        hits = [b is not None and box_iou(b, t) > 0.3 for b, t in zip(boxes, truth["face_box"], strict=True)]  # fmt: skip
        ious = [
            box_iou(b, t) for b, t in zip(boxes, truth["face_box"], strict=True) if b is not None
        ]
    else:
        hits = [b is not None for b in boxes]
        ious = []
    row: dict[str, Any] = {
        "frames": len(frames),
        "detection_rate": float(np.mean(hits)),
        "p50_ms": float(np.percentile(times, 50)),
        "p99_ms": float(np.percentile(times, 99)),
        "min_ms": float(np.min(times)),
    }
    if truth is not None:
        row["found_rate"] = float(np.mean([b is not None for b in boxes]))
        row["iou_median"] = float(np.median(ious)) if ious else None
        row["clips_followed_unbroken"] = f"{len(jitters)} of {len(np.unique(clip_ids))}"
    if jitters:
        centre, width_jitter, width = np.mean(jitters, axis=0)
        row.update(
            {
                "box_width_px": width,
                "centre_jitter_px": centre,
                "width_jitter_px": width_jitter,
                "centre_jitter_pct_of_width": 100 * centre / width,
            }
        )
    return row


def outside_check(seeds: tuple[int, ...], rate_hz: float) -> dict:
    """Issue 14, item 4 (:mod:`benchmarks.participant_outside_check`): per functional movement,
    seed and occlusion, Pearson r of MediaPipe's landmark measure with its muscle's truth; and a
    one-sided activation per side (the other side's gain 0): how much each side's measure moves."""
    import torch

    from benchmarks.participant_outside_check import (
        movement_clip,
        one_sided_change,
        pair_correlations,
        participant,
    )
    from simulation import FUNCTIONAL_MOVEMENTS
    from simulation.participant.render import ParticipantRenderer

    torch.set_num_threads(1)  # the renderer: one thread, as the models (a loaded 2-core machine)
    rows = []
    for occlusion in (None, "fridlund"):
        for seed in seeds:
            person = participant(seed)
            renderer = ParticipantRenderer(person.traits, occlusion=occlusion)
            for movement in FUNCTIONAL_MOVEMENTS:
                for forced in (True,) if occlusion else (False,):  # the mesh rejects it
                    clip = movement_clip(person, renderer, movement, rate_hz=rate_hz,
                                         forced=forced)  # fmt: skip
                    base = {
                        "occlusion": occlusion or "none",
                        "landmarks": "forced" if forced else "pipeline",
                        "seed": seed,
                        "movement": movement,
                        "frames": len(clip.t_s),
                        "found": clip.found,
                        "presence_ge_0.5": int(np.sum(clip.presence >= 0.5)),
                    }
                    if movement == "Face-At-Rest":  # nothing moves: the measures' noise
                        noise = {
                            k: float(np.nanstd(v)) if np.isfinite(v).sum() > 1 else None
                            for k, v in clip.measures.items()
                        }
                        rows.append({**base, "measure_std_at_rest": noise})
                    rows.extend({**base, **pair} for pair in pair_correlations(clip))
    one_sided = []
    for movement, measure_name in (
        ("Forehead-Raise", "brow_raise"),
        ("Eye-Gentle", "eye_open"),
        ("Smile-Closed", "mouth_corner_raise"),
        ("Depress-Lip", "mouth_corner_raise"),
    ):
        for moving, gains in (("right", (0.0, 1.0)), ("left", (1.0, 0.0))):
            for seed in seeds:
                person = participant(seed, left_gain=gains[0], right_gain=gains[1])
                clip = movement_clip(person, ParticipantRenderer(person.traits), movement,
                                     rate_hz=rate_hz)  # fmt: skip
                change = one_sided_change(clip, measure_name)
                one_sided.append({"movement": movement, "measure": measure_name,
                                  "moving_side": moving, "seed": seed, "change": change})  # fmt: skip
    return {"seeds": list(seeds), "rate_hz": rate_hz, "pairs": rows, "one_sided": one_sided}


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
    parser.add_argument("--sources", nargs="*", default=list(SOURCES), choices=list(SOURCES),
                        help="none: only the outside check")  # fmt: skip
    parser.add_argument("--mediapipe-python", help="a Python with mediapipe 0.10.14 (optional)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--outside-check", action=argparse.BooleanOptionalAction, default=True,
                        help="the participant's outside check (MediaPipe vs the truth)")  # fmt: skip
    parser.add_argument("--check-seeds", type=int, default=3, help="participants in the check")
    parser.add_argument("--check-rate-hz", type=float, default=6.0)
    args = parser.parse_args(argv)
    from eifer_models.face_detection.models import fetch_models

    fetch_models()
    rows, comparisons = [], {}
    for key in args.sources:
        description, frames, *truth = SOURCES[key](args.frames)
        for name in make_methods():
            make = lambda name=name: make_methods()[name]  # noqa: E731
            row = measure(make, frames, truth[0] if truth else None)
            rows.append({"source": key, "method": name, "description": description, **row})
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
    check = (
        outside_check(tuple(range(args.check_seeds)), args.check_rate_hz)
        if args.outside_check
        else None
    )
    if check is not None:
        print("outside check: r x expected sign (MediaPipe measure vs its muscle's truth)")
        for r in check["pairs"]:
            if "r" in r:
                print(f"  {r['occlusion']:<9}{r['landmarks']:<9}{r['seed']:>3} {r['movement']:<15}"
                      f"{r['measure']:<26}{r['muscle']:<28}{r['r_signed']:+.2f} "
                      f"found {r['found']}/{r['frames']}")  # fmt: skip
        for r in check["one_sided"]:
            print(
                f"  one-sided {r['movement']:<15}{r['moving_side']:<6}seed {r['seed']} {r['change']}"
            )
    for key, comparison in comparisons.items():
        print(f"mediapipe on {key}: {comparison}")
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    kept = [r for r in previous.get("rows", []) if r["source"] not in args.sources]
    rows = kept + rows  # sources not run this time keep their rows from the last run
    if check is None:
        check = previous.get("outside_check")
    result = {
        "benchmark": "face_detection",
        "load_avg_1min": os.getloadavg()[0],
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "runtime": "ai-edge-litert",
        "runtime_package_mb": _package_mb("ai_edge_litert"),
        "rows": rows,
        "mediapipe_comparison": comparisons,
        "outside_check": check,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

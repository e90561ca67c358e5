"""The synthetic participant as a live camera: render time per 1280x720 frame on one core, the
current face detector's detection rate on it (with and without electrodes), and a contact sheet
of one participant performing the eleven functional movements, occlusion-free and occluded.

- Timing: the process is pinned to one core and torch to one thread; ``render`` (FLAME forward,
  rasterisation of the face region at ``face_px``, texture and shading, compositing into the
  1280x720 frame, electrodes) is timed per frame over ``--frames`` frames of the protocol.
  Reported: wall and CPU (thread) time p50/p99 in ms, and the share of a 30 fps period (33.3 ms).
  Wall times include waiting for the CPU when other jobs share the machine; CPU time does not.
- Detection: :class:`eifer_models.face_crop.FaceCropper` ``detect`` (the pipeline's detector) on
  frames of ``--participants`` seeds spread over the protocol; a detection counts when its box
  overlaps the true face box (IoU > 0.3).

Writes ``benchmarks/results/participant_render.json`` and
``benchmarks/results/participant_contact_sheet.png``.
Run: ``.venv/bin/python -m benchmarks.participant_render [--frames 300] [--participants 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from eifer_models.face_detection.crop import box_iou
from simulation import FUNCTIONAL_MOVEMENTS, EmgSimulator, SimulatorConfig
from simulation.participant import Participant
from simulation.participant.render import ParticipantRenderer

RESULTS = Path(__file__).resolve().parent / "results"
FRAME_MS = 1000.0 / 30.0


def _pin_one_core() -> int:
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[0]})
    torch.set_num_threads(1)
    return cores[0]


def _participant(seed: int) -> Participant:
    return Participant(seed, EmgSimulator(SimulatorConfig(seed=seed)))


def time_render(frames: int, occlusion: str | None, face_px: int) -> dict[str, float]:
    participant = _participant(0)
    renderer = ParticipantRenderer(participant.traits, 1280, 720, face_px=face_px,
                                   occlusion=occlusion)  # fmt: skip
    wall, cpu = [], []
    for k in range(frames + 5):
        state = participant.state(20.0 + k / 30.0)
        w0, c0 = time.perf_counter(), time.thread_time()
        renderer.render(state)
        if k >= 5:  # warm-up
            wall.append(1e3 * (time.perf_counter() - w0))
            cpu.append(1e3 * (time.thread_time() - c0))
    p = lambda x, q: float(np.percentile(x, q))  # noqa: E731
    return {
        "wall_p50_ms": p(wall, 50), "wall_p99_ms": p(wall, 99), "wall_min_ms": min(wall),
        "cpu_p50_ms": p(cpu, 50), "cpu_p99_ms": p(cpu, 99),
        "cpu_p50_frame_share": p(cpu, 50) / FRAME_MS,
    }  # fmt: skip


def detection_rate(participants: int, frames_each: int) -> dict[str, object]:
    from eifer_models.face_crop import FaceCropper

    cropper = FaceCropper()
    result: dict[str, object] = {"detector": "OpenCV Haar (eifer_models.face_crop.FaceCropper)"}
    for occlusion in (None, "fridlund"):
        found, total, per_seed = 0, 0, []
        for seed in range(participants):
            participant = _participant(seed)
            renderer = ParticipantRenderer(participant.traits, occlusion=occlusion)
            hits = 0
            for t in np.linspace(5.0, participant.simulator.script.duration_s - 5, frames_each):
                frame = renderer.render(participant.state(t))
                box = cropper.detect(frame.rgb)
                hits += int(box is not None and box_iou(box, frame.face_box) > 0.3)
            per_seed.append(hits / frames_each)
            found, total = found + hits, total + frames_each
        result[occlusion or "none"] = {"rate": found / total, "per_participant": per_seed,
                                       "frames": total}  # fmt: skip
    return result


def contact_sheet(path: Path, seed: int = 0) -> Path:
    """Eleven functional movements (first repetition, mid-hold), free and occluded."""
    participant = _participant(seed)
    # no sensor noise: it only grows the PNG (it averages out at tile size)
    free = ParticipantRenderer(participant.traits, sensor_noise=False)
    occluded = ParticipantRenderer(participant.traits, occlusion="fridlund", sensor_noise=False)
    events = {e.movement: e for e in reversed(participant.simulator.script.events)}
    tiles = {"free": [], "occluded": []}
    for movement in FUNCTIONAL_MOVEMENTS:
        event = events[movement]
        state = participant.state(event.start_s + 0.6 * event.duration_s)
        for name, renderer in (("free", free), ("occluded", occluded)):
            frame = renderer.render(state)
            x, y, w, h = frame.face_box
            cx, cy, side = x + w / 2, y + h / 2 + 0.05 * h, 1.35 * max(w, h)
            x0, y0 = int(cx - side / 2), int(cy - side / 2)
            tile = frame.rgb[max(y0, 0) : y0 + int(side), max(x0, 0) : x0 + int(side)]
            tile = cv2.cvtColor(cv2.resize(tile, (220, 220), interpolation=cv2.INTER_AREA),
                                cv2.COLOR_RGB2BGR)  # fmt: skip
            cv2.rectangle(tile, (0, 0), (220, 18), (0, 0, 0), -1)
            cv2.putText(tile, f"{movement} ({name})", (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
            tiles[name].append(tile)
    cols = 6
    rows = []
    blank = np.zeros_like(tiles["free"][0])
    for start in range(0, len(FUNCTIONAL_MOVEMENTS), cols):
        for name in ("free", "occluded"):
            row = tiles[name][start : start + cols]
            rows.append(np.concatenate(row + [blank] * (cols - len(row)), 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.concatenate(rows, 0), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"could not write {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--participants", type=int, default=5)
    parser.add_argument("--detect-frames", type=int, default=40, help="frames per participant")
    parser.add_argument("--face-px", type=int, default=224)
    args = parser.parse_args(argv)
    core = _pin_one_core()
    timing = {
        "free": time_render(args.frames, None, args.face_px),
        "fridlund": time_render(args.frames, "fridlund", args.face_px),
    }
    for name, row in timing.items():
        print(f"render 1280x720 ({name}): wall p50 {row['wall_p50_ms']:.1f} / p99 "
              f"{row['wall_p99_ms']:.1f} ms, CPU p50 {row['cpu_p50_ms']:.1f} / p99 "
              f"{row['cpu_p99_ms']:.1f} ms ({100 * row['cpu_p50_frame_share']:.0f} % of a frame)")  # fmt: skip
    detection = detection_rate(args.participants, args.detect_frames)
    for key in ("none", "fridlund"):
        print(f"face detection, occlusion {key}: {100 * detection[key]['rate']:.0f} %")  # type: ignore[index]
    sheet = contact_sheet(RESULTS / "participant_contact_sheet.png")
    print(f"wrote {sheet}")
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "pinned_core": core,
        "torch_threads": torch.get_num_threads(),
        "load_avg_1min": os.getloadavg()[0],
    }
    result = {
        "benchmark": "participant_render",
        "machine": machine,
        "frame": "1280x720",
        "face_px": args.face_px,
        "frames": args.frames,
        "render": timing,
        "detection": detection,
        "contact_sheet": sheet.name,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "participant_render.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {RESULTS / 'participant_render.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Speed of the pure-PyTorch differentiable renderer at 224x224 (SMIRK's image size).

Scenes, batch 1 unless stated, camera s = 7 (SMIRK's initial scale):
- ``synthetic_head``: the generated head (``eifer_models.synthetic_head``), face-mask triangles;
- ``flame_sized_face``: a FLAME-sized closed mesh (5023 vertices, 9976 triangles: an ellipsoid
  point set triangulated by its convex hull, cut to FLAME's face count) drawing its 3408
  front-most triangles, the number SMIRK draws from FLAME's face mask;
- ``flame_sized_all``: the same mesh with all 9976 triangles drawn (upper bound);
- ``synthetic_head_b4``: the head, batch 4.
Each is timed for forward only (no grad) and forward + backward (gradients w.r.t. vertices and
camera). Reported: min/p50/p90 in ms and p50 as a fraction of one 30 fps frame (33.3 ms);
the minimum is the figure to trust when other jobs share the CPU. No peer
renderer runs here (PyTorch3D is not installable), so figures are absolute for this CPU.

Prints a table and writes ``benchmarks/results/renderer_speed.json``.
Run: ``.venv/bin/python -m benchmarks.renderer_speed [--repeats 20] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import ConvexHull

from eifer_models.renderer import Renderer
from eifer_models.synthetic_head import AXES_M, synthetic_flame

RESULTS = Path(__file__).resolve().parent / "results" / "renderer_speed.json"
FRAME_MS = 1000.0 / 30.0
FLAME_VERTICES, FLAME_FACES, SMIRK_FACE_TRIANGLES = 5023, 9976, 3408


def flame_sized_mesh(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """5023 points on a head-sized ellipsoid (Fibonacci lattice, rotated by ``seed``),
    hull-triangulated, outward-wound, first 9976 triangles kept."""
    i = np.arange(FLAME_VERTICES) + 0.5 + seed
    y = 1 - 2 * i / FLAME_VERTICES
    r, phi = np.sqrt(1 - y * y), np.pi * (1 + 5**0.5) * i
    pts = np.stack([r * np.cos(phi), y, r * np.sin(phi)], 1) * np.asarray(AXES_M)
    hull = ConvexHull(pts)
    faces = hull.simplices.copy()
    normals = np.cross(pts[faces[:, 1]] - pts[faces[:, 0]], pts[faces[:, 2]] - pts[faces[:, 0]])
    flip = (normals * pts[faces].mean(1)).sum(1) < 0
    faces[flip] = faces[flip][:, [0, 2, 1]]
    return torch.as_tensor(pts, dtype=torch.float32), torch.as_tensor(faces[:FLAME_FACES])


def time_ms(
    fn: Callable[[], None], repeats: int, warmup: int = 3, sync: Callable[[], None] = lambda: None
) -> list[float]:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def _forward(renderer: Renderer, verts: torch.Tensor, cam: torch.Tensor) -> None:
    with torch.no_grad():
        renderer(verts, cam)


def _forward_backward(renderer: Renderer, verts: torch.Tensor, cam: torch.Tensor) -> None:
    v = verts.clone().requires_grad_(True)
    c = cam.clone().requires_grad_(True)
    renderer(v, c).image.sum().backward()


def scene_cases(device: torch.device) -> dict[str, tuple[Renderer, torch.Tensor]]:
    flame = synthetic_flame()
    head = flame(expression=torch.zeros(1, 50)).vertices.detach()
    verts, faces = flame_sized_mesh()
    front = torch.argsort(verts[faces].mean(1)[:, 2], descending=True)[:SMIRK_FACE_TRIANGLES]
    return {
        "synthetic_head": (Renderer(flame.faces, flame.face_triangles, 224), head),
        "flame_sized_face": (Renderer(faces, front, 224), verts[None]),
        "flame_sized_all": (Renderer(faces, None, 224), verts[None]),
        "synthetic_head_b4": (
            Renderer(flame.faces, flame.face_triangles, 224),
            head.expand(4, -1, -1).clone(),
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1: steadier on a shared machine)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    rows = []
    for name, (renderer, verts) in scene_cases(device).items():
        renderer = renderer.to(device)
        verts = verts.to(device)
        cam = torch.tensor([[7.0, 0.0, 0.0]], device=device).expand(verts.shape[0], -1).clone()
        drawn = int(renderer.faces.shape[0])

        forward = partial(_forward, renderer, verts, cam)
        forward_backward = partial(_forward_backward, renderer, verts, cam)
        coverage = int(renderer(verts, cam).coverage.sum())
        for mode, fn in (("forward", forward), ("forward+backward", forward_backward)):
            t = time_ms(fn, args.repeats, sync=sync)
            p50, p90, best = float(np.percentile(t, 50)), float(np.percentile(t, 90)), min(t)
            rows.append(
                {"scene": name, "mode": mode, "batch": int(verts.shape[0]), "vertices": int(verts.shape[1]),
                 "triangles_drawn": drawn, "covered_pixels": coverage, "min_ms": best,
                    "p50_ms": p50, "p90_ms": p90,
                 "p50_frames_at_30fps": p50 / FRAME_MS}
            )  # fmt: skip
    print(f"renderer 224x224 on {device} ({platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs)")  # fmt: skip
    header = f"{'scene':<20}{'mode':<18}{'B':>3}{'verts':>7}{'tris':>7}{'pixels':>8}{'min ms':>9}{'p50 ms':>9}{'p90 ms':>9}{'x frame':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['scene']:<20}{r['mode']:<18}{r['batch']:>3}{r['vertices']:>7}{r['triangles_drawn']:>7}"
              f"{r['covered_pixels']:>8}{r['min_ms']:>9.2f}{r['p50_ms']:>9.2f}{r['p90_ms']:>9.2f}{r['p50_frames_at_30fps']:>9.3f}")  # fmt: skip
    result = {
        "benchmark": "renderer_speed",
        "image_size": [224, 224],
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "repeats": args.repeats,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Can phase 1's generators learn to draw expression at a given scale? Measured before phase 1.

Phase 1 teaches the occluded-face encoder ``E_s`` only through faces its generators draw from a
render (``training.phase1``); on the CPU recipe they drew none (``generators`` in a phase-1
``eval.json``: r -0.003 / 0.020, issue 23). This probe gives the generators the easiest task
that still needs the render: SMIRK's self-reconstruction (Retsinas et al., CVPR 2024), with no
adversary and no cycle. ``G_n`` redraws free faces and ``G_s`` faces under electrodes, each
from the render of the frozen free-face encoder ``E_n``'s parameters (never the truth) and the
appearance pixels of the same face, L1, mini-batches (instance normalisation is per image).

Every ``--eval-every`` steps the held-out participants' *true* renders go through both
generators (:func:`training.phase1_diagnostics.generator_transfer`, the truth used for this
evaluation only) and are read back:

- ``G_n read by E_n``: electrodes removed (CSN), read by the free-face encoder;
- ``G_n from free pixels read by E_n``: ``G_n``'s own task, the ceiling of the above;
- ``G_s read by E_s``: electrodes drawn on a free face (CNS: the faces ``E_s`` is taught with),
  read by an *independent* reader, the truth-supervised encoder (d) (``--reader``), so a face
  counts only if it looks like a real face under electrodes with the right expression.

A scale whose generators stay near 0 here cannot teach ``E_s`` in phase 1. Writes
``results/phase1_generators_<tag>.json`` (curves) and a PNG of held-out faces (free, ``G_s``
on its pixels, under electrodes, ``G_n`` on its pixels).

    .venv/bin/python -m benchmarks.phase1_generators --encoders artifacts/runs/<b> \\
        --reader artifacts/runs/<d> [--steps 1500 --batch 8 --pixels 0.2 --features 16 --blocks 3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eifer_models.generator import EiferGenerator, generator_input
from eifer_models.masking import dilation_px, generator_pixels
from eifer_models.renderer import RenderOutput
from streaming.config import load_config
from training.encoder_config import Phase1Config
from training.encoder_runs import crop_images, load_encoders
from training.encoders import load_pairs
from training.face_model import FaceModel
from training.face_pairs import FacePairs
from training.phase1_diagnostics import generator_transfer, truth_params

RESULTS = Path(__file__).resolve().parent / "results"
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "training" / "phase1_cpu.toml"


def _draw(gen: EiferGenerator, render: RenderOutput, image: torch.Tensor, fraction: float,
          rng: torch.Generator) -> torch.Tensor:  # fmt: skip
    """``gen``'s face from ``render`` and ``image``'s appearance pixels (phase 1's masking)."""
    px = generator_pixels(
        image, render.coverage, fraction=fraction,
        dilation_radius_px=dilation_px(image.shape[-1]), generator=rng,
    )  # fmt: skip
    return gen(generator_input(render.image, px.appearance, px.sample_mask))


def _picture(path: Path, g_n: EiferGenerator, g_s: EiferGenerator, face: FaceModel,
             held: FacePairs, fraction: float, device: torch.device) -> None:  # fmt: skip
    import cv2

    rows = np.arange(0, len(held), max(1, len(held) // 8))[:8]
    pairs = held.select(rows)
    free, occluded = crop_images(pairs.free, device), crop_images(pairs.occluded, device)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        render = face.render(truth_params(pairs, device=device))
        drawn = [_draw(gen, render, image, fraction, g) for image, gen in ((free, g_s), (occluded, g_n))]  # fmt: skip
    grid = torch.cat([torch.cat([free, drawn[0], occluded, drawn[1]], -1)[i] for i in range(len(rows))], -2)  # fmt: skip
    pixels = (grid.permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255).astype(np.uint8)
    cv2.imwrite(str(path), pixels[:, :, ::-1])


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = load_config(Phase1Config, args.config, [f'encoders="{args.encoders}"', *args.set])
    args.features = args.features or config.generator_features
    args.blocks = args.blocks or config.generator_blocks
    train, held = load_pairs(config.data, progress=True)
    e_n, origin = load_encoders(args.encoders)
    reader, reader_origin = load_encoders(args.reader)
    for net in (e_n, reader):
        net.to(device).eval().requires_grad_(False)
    size = config.data.crop_size
    face = FaceModel(size).to(device)
    torch.manual_seed(args.seed)
    g_n, g_s = (
        EiferGenerator(features=args.features, res_blocks=args.blocks).to(device) for _ in range(2)
    )
    opt = torch.optim.AdamW([*g_n.parameters(), *g_s.parameters()], lr=args.lr, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    draw = torch.Generator().manual_seed(args.seed)

    def evaluate(step: int, loss: float, seconds: float) -> dict[str, Any]:
        both = generator_transfer(g_n, g_s, e_n, reader, face, held, args.pixels, seed=0)
        # generator_transfer's E_s is the independent reader (d) here
        scores = {k.replace("E_s", "the reader (d)"): v for k, v in both.items()}
        for gen in (g_n, g_s):
            gen.train()
        return {
            "step": step,
            "l1": round(loss, 5) if step else None,
            "wall_s": round(seconds, 1),
            **scores,
        }

    curve = [evaluate(0, float("nan"), 0.0)]
    print(json.dumps(curve[-1]), flush=True)
    t0 = time.monotonic()
    for step in range(1, args.steps + 1):
        loss = torch.zeros((), device=device)
        for crops, gen in ((train.free, g_n), (train.occluded, g_s)):
            rows = torch.randint(0, len(train), (args.batch,), generator=draw).numpy()
            x = crop_images(crops[rows], device)
            with torch.no_grad():
                params = e_n(x)
            y = _draw(gen, face.render(params), x, args.pixels, draw)
            loss = loss + (y - x).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % args.eval_every == 0 or step == args.steps:
            l1 = float(loss.detach()) / 2  # this step's, per generator
            curve.append(evaluate(step, l1, time.monotonic() - t0))
            print(json.dumps(curve[-1]), flush=True)
    args.results.mkdir(parents=True, exist_ok=True)
    _picture(
        args.results / f"phase1_generators_{args.tag}.png",
        g_n,
        g_s,
        face,
        held,
        args.pixels,
        device,
    )
    sizes = {
        "config": str(args.config), "crop_size": size, "train_frames": len(train),
        "heldout_frames": len(held), "device": str(device),
    }  # fmt: skip
    return {
        "what": "phase-1 generators trained by self-reconstruction from E_n's parameters (no "
        "truth), read back on held-out true renders (benchmarks/phase1_generators.py)",
        "encoders": origin,
        "reader": reader_origin,
        "settings": {
            **{k: v for k, v in vars(args).items() if k not in ("config", "results")},
            **sizes,
        },
        "curve": curve,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--encoders", required=True, help="run folder of the free-face encoders (b)")
    p.add_argument("--reader", required=True, help="run folder of an independent reader under "
                   "electrodes: the truth-supervised (d), evaluation only")  # fmt: skip
    p.add_argument("--config", type=Path, default=CONFIG, help="phase-1 config (its data)")
    p.add_argument("--set", nargs="*", action="extend", default=[], help="overrides KEY=VALUE")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--pixels", type=float, default=0.2, help="appearance-pixel fraction")
    p.add_argument("--features", type=int, help="generator features (default: the config's)")
    p.add_argument("--blocks", type=int, help="residual blocks (default: the config's)")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's)")
    p.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON and PNG")
    p.add_argument("--device", default="cpu")
    p.add_argument("--tag", default="cpu")
    args = p.parse_args(argv)
    out = run(args)
    path = args.results / f"phase1_generators_{args.tag}.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

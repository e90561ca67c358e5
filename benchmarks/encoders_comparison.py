"""Encoders on held-out synthetic participants' occluded faces: (a) untrained, (b) supervised on
occlusion-free crops only, (c) after phase 1 (EIFER's occlusion cycles) from (b).

Runs the three with the CPU configurations (``configs/training/encoders_small.toml``,
``phase1_small.toml``: 64 px crops, 8 training + 3 held-out participants x 100 frames) and
writes Pearson r per driven phi component, occluded and occlusion-free (held out), the fit on
the training crops, the losses and the wall times to ``results/encoders_comparison.json``
(``--results`` elsewhere: the GPU script writes the full configuration's figures there).
``--encoders-config`` / ``--phase1-config`` choose the configurations (``encoders.toml`` and
``phase1.toml``: the paper's protocol, for a GPU). ``--collect A B C`` only gathers three finished runs.

    .venv/bin/python -m benchmarks.encoders_comparison [--out artifacts/runs]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from streaming.config import load_config
from training.encoder_config import EncodersConfig, Phase1Config
from training.encoders import run_encoders
from training.phase1 import run_phase1

RESULTS = Path(__file__).resolve().parent / "results" / "encoders_comparison.json"
CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "training"


def _summary(run: Path, seconds: float | None) -> dict[str, object]:
    ev = json.loads((run / "eval.json").read_text())
    out = {
        "run": run.name,
        "wall_s": seconds,
        "occluded": ev["occluded"],
        "free": ev["free"],
        "provenance": json.loads((run / "run.json").read_text()).get("provenance", ""),
    }
    for key in ("train", "losses", "history", "finetune_frames"):
        if key in ev:
            out[key] = ev[key]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="artifacts/runs")
    parser.add_argument("--collect", nargs=3, metavar="RUN", help="runs (a) (b) (c) to gather")
    parser.add_argument("--encoders-config", default="encoders_small.toml")
    parser.add_argument("--phase1-config", default="phase1_small.toml")
    parser.add_argument("--set", nargs="*", default=[], help="overrides for both configs")
    parser.add_argument("--set-encoders", nargs="*", default=[], help="overrides for (a), (b)")
    parser.add_argument("--set-phase1", nargs="*", default=[], help="overrides for (c)")
    parser.add_argument("--bundle", type=Path, help="write (c)'s encoders into a bundle here")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    times: list[float | None] = [None, None, None]
    if args.collect:
        runs = [Path(r) for r in args.collect]
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        enc = lambda **kw: load_config(  # noqa: E731
            EncodersConfig, CONFIGS / args.encoders_config,
            [f'output="{args.out}"', *args.set, *args.set_encoders,
             *(f"{k}={v}" for k, v in kw.items())],
        )  # fmt: skip
        runs = []
        for name, kw in (("a-untrained", {"untrained": "true"}), ("b-supervised", {})):
            t0 = time.perf_counter()
            runs.append(run_encoders(enc(run_name=f'"{stamp}-{name}"', **kw)))
            times[len(runs) - 1] = round(time.perf_counter() - t0, 1)
        p1 = load_config(
            Phase1Config, CONFIGS / args.phase1_config,
            [f'output="{args.out}"', *args.set, *args.set_phase1,
             f'run_name="{stamp}-c-phase1"', f'encoders="{runs[1]}"'],
        )  # fmt: skip
        t0 = time.perf_counter()
        runs.append(run_phase1(p1))
        times[2] = round(time.perf_counter() - t0, 1)
    results = {
        "what": "Pearson r per driven phi component on held-out participants (synthetic)",
        "configs": [args.encoders_config, args.phase1_config],
        "overrides": {"both": args.set, "encoders": args.set_encoders, "phase1": args.set_phase1},
        "load_average_1min": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "a_untrained": _summary(runs[0], times[0]),
        "b_supervised_free": _summary(runs[1], times[1]),
        "c_phase1": _summary(runs[2], times[2]),
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2))
    if args.bundle:
        from training.encoder_bundle import write_encoders_bundle

        print("bundle:", write_encoders_bundle(runs[2], args.bundle).path)
    for key in ("a_untrained", "b_supervised_free", "c_phase1"):
        r = results[key]
        print(f"{key}: occluded mean r {r['occluded']['mean_r']}, free {r['free']['mean_r']}")  # type: ignore[index]


if __name__ == "__main__":
    main()

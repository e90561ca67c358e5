"""EIFER's claim on the synthetic rig: encoders on held-out identities, under electrodes and free.

Four encoders, Pearson r per driven phi component (and per protocol movement) on participants
never trained on, on their faces under the Fridlund electrodes and on the same faces free:

- (a) untrained: the seeded encoders;
- (b) free faces only: supervised with the truth on occlusion-free crops (the stand-in for
  SMIRK's pre-training on real faces, which have no electrodes);
- (c) after phase 1: EIFER's occlusion cycles from (b) (``eifer train phase1``: generators,
  discriminators, no truth on the faces under electrodes);
- (d) upper bound: supervised with the truth on the faces under electrodes (real participants
  have no such truth: this is not EIFER, it bounds what (c) could reach).

Runs the four with the CPU recipe (``configs/training/encoders_cpu.toml``,
``phase1_cpu.toml``) and writes ``results/encoders_comparison.json`` (``--results``
elsewhere), a Markdown table and a per-component plot beside it. ``--collect a=RUN b=RUN ...``
only gathers finished runs; ``--only b d`` runs a subset.

    .venv/bin/python -m benchmarks.encoders_comparison [--out artifacts/runs]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from streaming.config import load_config
from training.encoder_config import EncodersConfig, Phase1Config
from training.encoders import run_encoders
from training.phase1 import run_phase1

RESULTS = Path(__file__).resolve().parent / "results" / "encoders_comparison.json"
CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "training"
SETUPS = {
    "a": "untrained",
    "b": "free faces only (supervised, no electrodes)",
    "c": "after phase 1 (EIFER's cycles from (b), no truth under electrodes)",
    "d": "upper bound: supervised with the truth under electrodes (not EIFER)",
}


def _summary(run: Path, seconds: float | None) -> dict[str, Any]:
    ev = json.loads((run / "eval.json").read_text())
    out = {
        "run": str(run),
        "wall_s": seconds,
        "occluded": ev["occluded"],
        "free": ev["free"],
        "provenance": json.loads((run / "run.json").read_text()).get("provenance", ""),
    }
    for key in ("train", "losses", "history", "finetune_frames", "generators"):
        if key in ev:
            out[key] = ev[key]
    return out


def table(results: dict[str, Any]) -> str:
    """The four-way table (Markdown): mean r held out, under electrodes and free."""
    lines = ["| setup | held-out under electrodes | held-out free face | wall time |",
             "| --- | --- | --- | --- |"]  # fmt: skip
    for key, label in SETUPS.items():
        r = results["setups"].get(key)
        if r is None:
            continue
        wall = f"{r['wall_s'] / 60:.1f} min" if r.get("wall_s") else "–"
        lines.append(
            f"| ({key}) {label} | {r['occluded']['mean_r']:.3f} | {r['free']['mean_r']:.3f} | {wall} |"
        )
    return "\n".join(lines)


def plot(results: dict[str, Any], out: Path) -> None:
    """r per driven component under electrodes, one bar per setup."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    setups = {k: v for k, v in results["setups"].items() if v is not None}
    names = list(next(iter(setups.values()))["occluded"]["per_component"])
    fig, axes = plt.subplots(2, 1, figsize=(12, 6.5), sharex=True)
    width = 0.8 / len(setups)
    for row, view in enumerate(("occluded", "free")):
        ax = axes[row]
        for i, (key, r) in enumerate(setups.items()):
            values = [r[view]["per_component"].get(n, 0.0) for n in names]
            ax.bar(np.arange(len(names)) + i * width, values, width, label=f"({key})")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_ylim(-0.3, 1.0)
        ax.set_ylabel(f"r, held out, {'under electrodes' if view == 'occluded' else 'free face'}")
    axes[0].legend(ncol=4, fontsize=8, loc="lower left")
    axes[1].set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=60, fontsize=7)
    fig.suptitle("Encoders on held-out synthetic identities: r per driven phi component")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="artifacts/runs")
    parser.add_argument("--collect", nargs="+", metavar="KEY=RUN", help="finished runs, e.g. a=R")
    parser.add_argument("--only", nargs="+", choices=list(SETUPS), default=list(SETUPS))
    parser.add_argument("--encoders-config", default="encoders_cpu.toml")
    parser.add_argument("--phase1-config", default="phase1_cpu.toml")
    parser.add_argument("--set", nargs="*", default=[], help="overrides for every config")
    parser.add_argument("--set-encoders", nargs="*", default=[], help="overrides for a, b, d")
    parser.add_argument("--set-phase1", nargs="*", default=[], help="overrides for (c)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--bundle", type=Path, help="write --bundle-from's encoders into a bundle")
    parser.add_argument("--bundle-from", choices=["b", "c", "d"], default="c")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    runs: dict[str, Path] = {}
    times: dict[str, float | None] = {}
    if args.collect:
        for item in args.collect:
            key, _, run = item.partition("=")
            if key not in SETUPS or not run:
                parser.error(f"--collect {item!r}: give KEY=RUN with KEY in {list(SETUPS)}")
            runs[key], times[key] = Path(run), None
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        enc = lambda name, *extra: load_config(  # noqa: E731
            EncodersConfig, CONFIGS / args.encoders_config,
            [f'output="{args.out}"', f'run_name="{stamp}-{name}"', *args.set,
             *args.set_encoders, *extra],
        )  # fmt: skip

        def phase1() -> Phase1Config:
            overrides = [f'output="{args.out}"', f'run_name="{stamp}-c-phase1"', *args.set,
                         *args.set_phase1, f'encoders="{runs["b"]}"']  # fmt: skip
            return load_config(Phase1Config, CONFIGS / args.phase1_config, overrides)

        plan = {
            "a": lambda: run_encoders(enc("a-untrained", "untrained=true")),
            "b": lambda: run_encoders(enc("b-free")),
            "d": lambda: run_encoders(enc("d-occluded-truth", 'views="occluded"')),
            "c": lambda: run_phase1(phase1()),
        }
        if "c" in args.only and "b" not in args.only:
            parser.error("(c) starts from (b): --only ... b c")
        for key in ("a", "b", "d", "c"):
            if key in args.only:
                t0 = time.perf_counter()
                runs[key] = plan[key]()
                times[key] = round(time.perf_counter() - t0, 1)
    results = {
        "what": "Pearson r per driven phi component on held-out synthetic participants, mean over "
        "the driven components (a constant output counts 0)",
        "setups_meaning": SETUPS,
        "configs": [args.encoders_config, args.phase1_config],
        "overrides": {"all": args.set, "encoders": args.set_encoders, "phase1": args.set_phase1},
        "load_average_1min": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "cpu_count": os.cpu_count(),
        "setups": {k: _summary(runs[k], times.get(k)) if k in runs else None for k in SETUPS},
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2))
    markdown = table(results)
    args.results.with_suffix(".md").write_text(markdown + "\n")
    plot(results, args.results.with_suffix(".png"))
    print(markdown)
    if args.bundle and args.bundle_from in runs:
        from training.encoder_bundle import write_encoders_bundle

        print("bundle:", write_encoders_bundle(runs[args.bundle_from], args.bundle).path)


if __name__ == "__main__":
    main()

"""Encoders on held-out synthetic participants' occluded faces: (a) untrained, (b) supervised on
occlusion-free crops only, (c) after phase 1 (EIFER's occlusion cycles) from (b).

Runs the three with the CPU configurations (``configs/training/encoders_small.toml``,
``phase1_small.toml``: 64 px crops, 8 training + 3 held-out participants x 50 frames) and
writes Pearson r per driven phi component, occluded and occlusion-free, with the wall times, to
``results/encoders_comparison.json``. ``--collect A B C`` only gathers three finished runs.

    .venv/bin/python -m benchmarks.encoders_comparison [--out artifacts/runs]
"""

from __future__ import annotations

import argparse
import json
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
    return {
        "run": run.name,
        "wall_s": seconds,
        "occluded": ev["occluded"],
        "free": ev["free"],
        "provenance": json.loads((run / "run.json").read_text()).get("provenance", ""),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="artifacts/runs")
    parser.add_argument("--collect", nargs=3, metavar="RUN", help="runs (a) (b) (c) to gather")
    args = parser.parse_args()
    times: list[float | None] = [None, None, None]
    if args.collect:
        runs = [Path(r) for r in args.collect]
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        enc = lambda **kw: load_config(  # noqa: E731
            EncodersConfig, CONFIGS / "encoders_small.toml",
            [f'output="{args.out}"', *(f"{k}={v}" for k, v in kw.items())],
        )  # fmt: skip
        runs = []
        for name, kw in (("a-untrained", {"untrained": "true"}), ("b-supervised", {})):
            t0 = time.perf_counter()
            runs.append(run_encoders(enc(run_name=f'"{stamp}-{name}"', **kw)))
            times[len(runs) - 1] = round(time.perf_counter() - t0, 1)
        p1 = load_config(
            Phase1Config, CONFIGS / "phase1_small.toml",
            [f'output="{args.out}"', f'run_name="{stamp}-c-phase1"', f'encoders="{runs[1]}"'],
        )  # fmt: skip
        t0 = time.perf_counter()
        runs.append(run_phase1(p1))
        times[2] = round(time.perf_counter() - t0, 1)
    results = {
        "what": "Pearson r per driven phi component on held-out participants (synthetic)",
        "configs": ["encoders_small.toml", "phase1_small.toml"],
        "a_untrained": _summary(runs[0], times[0]),
        "b_supervised_free": _summary(runs[1], times[1]),
        "c_phase1": _summary(runs[2], times[2]),
    }
    RESULTS.write_text(json.dumps(results, indent=2))
    for key in ("a_untrained", "b_supervised_free", "c_phase1"):
        r = results[key]
        print(f"{key}: occluded mean r {r['occluded']['mean_r']}, free {r['free']['mean_r']}")  # type: ignore[index]


if __name__ == "__main__":
    main()

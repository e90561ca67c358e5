"""Phase-2 trainer on toy sessions with known truth: held-out Pearson r and wall time.

Writes ``--participants`` toy session folders (``training/toy_sessions.py``: every movement
``--repetitions`` times, known activations and phi), builds the training set with each EMG
method, runs ``eifer train mlp`` with ``configs/training/mlp_small.toml`` (five folds grouped by
participant) and records the held-out figures, per fold, and the time taken, in
``results/trainer_toy.json``. NOT the ``eifer synth`` participant (not on this branch): rerun
with its sessions through ``eifer train dataset --session ...`` when it lands.

    .venv/bin/python -m benchmarks.trainer_toy [--participants 5] [--repetitions 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from streaming.config import load_config
from training.config import DatasetConfig, MlpConfig
from training.dataset import build_dataset
from training.mlp import run_mlp
from training.toy_sessions import ToySpec, write_toy_session

RESULTS = Path(__file__).resolve().parent / "results" / "trainer_toy.json"
SMALL = Path(__file__).resolve().parents[1] / "configs" / "training" / "mlp_small.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=5)
    parser.add_argument("--repetitions", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=["online", "offline"])
    args = parser.parse_args()
    results: dict[str, object] = {
        "participants": args.participants,
        "repetitions": args.repetitions,
        "config": str(SMALL.name),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(args.participants):
            write_toy_session(
                root / "sessions" / f"s{i}", ToySpec(f"P{i}", seed=i, repetitions=args.repetitions)
            )
        for method in args.methods:
            t0 = time.perf_counter()
            dataset = build_dataset(
                DatasetConfig(
                    sessions=[str(root / "sessions")],
                    output=str(root / "sets"),
                    method=method,
                    crops=False,
                ),
                progress=False,
            )
            t1 = time.perf_counter()
            config = load_config(
                MlpConfig,
                SMALL,
                [f'dataset="{dataset}"', f'output="{root / "runs"}"', f'run_name="{method}"'],
            )
            run = run_mlp(config)
            t2 = time.perf_counter()
            metrics = json.loads((run / "metrics.json").read_text())
            results[method] = {
                "frames": json.loads((dataset / "dataset.json").read_text())["n_frames"],
                "dataset_s": round(t1 - t0, 1),
                "train_s": round(t2 - t1, 1),
                **metrics["headline"],
                "per_participant_exp2emg_r": {
                    p: m["exp2emg"]["mean_r"] for p, m in metrics["participant"].items()
                },
                "per_participant_emg2exp_r": {
                    p: m["emg2exp"]["mean_r"] for p, m in metrics["participant"].items()
                },
            }
            print(method, json.dumps(results[method], indent=1))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

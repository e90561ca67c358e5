"""``eifer train dataset|mlp|report``: the offline trainer (training/).

- ``dataset``: session folders and/or MMM-layout roots -> a cached, versioned training set.
- ``mlp``: phase 2 (EMG2Exp, Exp2EMG), participant-grouped cross-validation, report, bundle;
  ``--resume RUN`` continues a run; under ``torchrun`` it trains data-parallel.
- ``report``: (re)write a run's report from its predictions.
"""

from __future__ import annotations

import argparse
import logging

from nodes.common import add_config_arguments
from streaming.config import load_config

log = logging.getLogger("eifer.train")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", required=True)
    dataset = sub.add_parser("dataset", help="build a training set (configs/training/dataset.toml)")
    add_config_arguments(dataset)
    dataset.add_argument(
        "--session", action="append", default=[], help="session folder (repeatable)"
    )
    dataset.add_argument("--mmm", action="append", default=[], help="MMM dataset root (repeatable)")
    dataset.add_argument("--no-progress", action="store_true", help="no progress bars")
    mlp = sub.add_parser("mlp", help="train EMG2Exp + Exp2EMG (configs/training/mlp.toml)")
    add_config_arguments(mlp)
    mlp.add_argument("--dataset", help="training set folder (overrides dataset)")
    mlp.add_argument("--resume", metavar="RUN", help="continue this run folder (its own config)")
    report = sub.add_parser("report", help="write a run's report (Markdown + PNG + JSON)")
    report.add_argument("run", help="run folder")


def run(args: argparse.Namespace) -> int:
    if args.what == "dataset":
        from training.config import DatasetConfig
        from training.dataset import build_dataset

        overrides = list(args.overrides)
        config = load_config(DatasetConfig, args.config, overrides)
        if args.session or args.mmm:
            config = config.model_copy(
                update={
                    "sessions": [*config.sessions, *args.session],
                    "mmm": [*config.mmm, *args.mmm],
                }
            )
        folder = build_dataset(config, progress=not args.no_progress)
        print(folder)
        return 0
    if args.what == "mlp":
        from training.config import MlpConfig
        from training.mlp import run_mlp

        if args.resume:
            folder = run_mlp(resume=args.resume)
        else:
            overrides = list(args.overrides)
            if args.dataset:
                overrides.append(f'dataset="{args.dataset}"')
            folder = run_mlp(load_config(MlpConfig, args.config, overrides))
        print(folder)
        return 0
    from training.report import write_report

    print(write_report(args.run))
    return 0

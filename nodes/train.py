"""``eifer train dataset|mlp|report``: the offline trainer (training/).

- ``dataset``: session folders and/or MMM-layout roots -> a cached, versioned training set.
- ``mlp``: phase 2 (EMG2Exp, Exp2EMG), participant-grouped cross-validation, report, bundle;
  ``--resume RUN`` continues a run; under ``torchrun`` it trains data-parallel.
- ``report``: (re)write a run's report from its predictions.
- ``encoders``: supervised pre-training of the encoders on synthetic participants (``--supervised``;
  ``--untrained`` only evaluates the seeded encoders); ``--bundle`` writes them into a bundle.
- ``phase1``: EIFER's occlusion cycles from an encoders run; ``--resume RUN`` continues one.
"""

from __future__ import annotations

import argparse
import logging
import os

from nodes.common import add_config_arguments
from streaming.config import load_config

log = logging.getLogger("eifer.train")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", required=True)
    dataset = sub.add_parser("dataset", help="build a training set (configs/training/dataset.toml)")
    add_config_arguments(dataset)
    dataset.add_argument(
        "--session",
        action="append",
        default=[],
        help="a session folder or .xdf file, or a folder with sessions below it (repeatable)",
    )
    dataset.add_argument("--mmm", action="append", default=[], help="MMM dataset root (repeatable)")
    dataset.add_argument("--no-progress", action="store_true", help="no progress bars")
    mlp = sub.add_parser("mlp", help="train EMG2Exp + Exp2EMG (configs/training/mlp.toml)")
    add_config_arguments(mlp)
    mlp.add_argument("--dataset", help="training set folder (overrides dataset)")
    mlp.add_argument("--resume", metavar="RUN", help="continue this run folder (its own config)")
    report = sub.add_parser("report", help="write a run's report (Markdown + PNG + JSON)")
    report.add_argument("run", help="run folder")
    enc = sub.add_parser("encoders", help="pre-train the encoders (configs/training/encoders.toml)")
    add_config_arguments(enc)
    mode = enc.add_mutually_exclusive_group()
    mode.add_argument(
        "--supervised", action="store_true", help="regress the truth of synthetic participants"
    )
    mode.add_argument("--untrained", action="store_true", help="evaluate the seeded encoders only")
    enc.add_argument("--resume", metavar="RUN", help="continue this run folder")
    enc.add_argument("--no-progress", action="store_true", help="no progress bars")
    p1 = sub.add_parser("phase1", help="EIFER's occlusion cycles (configs/training/phase1.toml)")
    add_config_arguments(p1)
    p1.add_argument("--encoders", help="run folder of `eifer train encoders` (overrides encoders)")
    p1.add_argument("--resume", metavar="RUN", help="continue this run folder")
    p1.add_argument("--no-progress", action="store_true", help="no progress bars")
    for parser_ in (enc, p1):
        parser_.add_argument(
            "--bundle", metavar="DIR", help="also write the trained encoders into a bundle here"
        )
        parser_.add_argument(
            "--demo-encoders", metavar="DIR",
            help="also write them as the demo's encoder folder (models/demo-encoders), with "
            "provenance; replaces the folder",
        )  # fmt: skip
        parser_.add_argument(
            "--recipe", default="", help="with --demo-encoders: how the run was made (provenance)"
        )


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
    if args.what in ("encoders", "phase1"):
        return _run_encoders(args)
    from training.report import write_report

    print(write_report(args.run))
    return 0


def _run_encoders(args: argparse.Namespace) -> int:
    from training.encoder_config import EncodersConfig, Phase1Config

    overrides = list(args.overrides)
    progress = not args.no_progress
    if args.what == "encoders":
        from training.encoders import run_encoders

        if args.resume:
            folder = run_encoders(resume=args.resume, progress=progress)
        else:
            if args.untrained:
                overrides.append("untrained=true")
            config = load_config(EncodersConfig, args.config, overrides)
            folder = run_encoders(config, progress=progress)
    else:
        from training.phase1 import run_phase1

        if args.resume:
            folder = run_phase1(resume=args.resume, progress=progress)
        else:
            if args.encoders:
                overrides.append(f'encoders="{args.encoders}"')
            folder = run_phase1(
                load_config(Phase1Config, args.config, overrides), progress=progress
            )
    if args.bundle and os.environ.get("RANK", "0") == "0":  # torchrun: rank 0 writes it
        from training.encoder_bundle import write_encoders_bundle

        print(write_encoders_bundle(folder, args.bundle).path)
    if args.demo_encoders and os.environ.get("RANK", "0") == "0":
        from training.encoder_bundle import export_demo_encoders

        out = export_demo_encoders(folder, args.demo_encoders, overwrite=True, recipe=args.recipe)
        print(out)
    print(folder)
    return 0

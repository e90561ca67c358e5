"""``eifer synth --participants N --minutes M --out DIR``: synthetic participants as session
folders (what ``eifer record`` writes), with ground truth, faster than real time.

A thin shell over :mod:`simulation.synth`; prints a progress bar and the folders.
"""

from __future__ import annotations

import argparse

from nodes.common import add_config_arguments, count, non_negative_int, positive_float
from simulation.synth import SynthConfig, print_progress, synthesise
from streaming.config import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--participants", type=count, help="how many participants (default 1)")
    parser.add_argument(
        "--minutes", type=positive_float, help="protocol minutes per session (default 1)"
    )
    parser.add_argument(
        "--seed", type=non_negative_int, help="seed of the first participant (default 0)"
    )
    parser.add_argument("--size", help="frame WIDTHxHEIGHT (default 640x360)")
    parser.add_argument("--jobs", type=count, help="sessions in parallel (default 1)")
    parser.add_argument("--out", required=True, help="output folder (sessions go below it)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    for key in ("participants", "minutes", "seed", "jobs"):
        if getattr(args, key) is not None:
            overrides.append(f"{key}={getattr(args, key)}")
    if args.size:
        width, _, height = args.size.partition("x")
        overrides += [f"width={int(width)}", f"height={int(height)}"]
    config = load_config(SynthConfig, args.config, overrides)
    folders = synthesise(config, args.out, on_progress=None if args.quiet else print_progress)
    for folder in folders:
        print(folder)
    return 0

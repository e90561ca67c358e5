"""``eifer check``: watch the live system for a fixed time and judge it (README "Checking a
setup"); exit status 1 when a threshold fails, so a lab can put it in a pre-session checklist."""

from __future__ import annotations

import argparse
import json

from nodes.common import add_config_arguments, load_node_config
from streaming.check.collect import observe
from streaming.check.config import CheckConfig
from streaming.check.report import as_json, evaluate, format_table, passed
from streaming.lsl_io import configure_lsl


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, example="thresholds.min_published_fraction=0.9")
    parser.add_argument("--seconds", type=float, help="how long to watch (default 10)")
    parser.add_argument("--bus", help="the pipeline's bus address (bus_address)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")


def run(args: argparse.Namespace) -> int:
    config = load_node_config(
        CheckConfig,
        args,
        flags={"seconds": ("--seconds", args.seconds), "bus_address": ("--bus", args.bus)},
    )
    configure_lsl()
    observation = observe(config)
    rows = evaluate(observation, config.thresholds)
    if args.json:
        print(json.dumps(as_json(rows, observation), indent=2))
    else:
        print(format_table(rows))
        for note in observation.notes:
            print(f"note: {note}")
    return 0 if passed(rows) else 1

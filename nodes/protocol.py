"""``eifer node protocol``: run a recording protocol, emit LSL markers and participant instructions.

A thin shell over :mod:`streaming.acquisition.protocol` (schedule, markers, runner): wires the
runner's markers to the LSL outlet ``Markers`` and its instructions to the bus topic
``instruction``. ``--speed`` runs the whole schedule faster (tests, rehearsals); stamps follow the
fast clock.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from configs import config_path
from nodes.common import add_config_arguments, load_node_config, stop_on_signals
from streaming.acquisition.protocol import (
    ProtocolConfig,
    ProtocolRunner,
    build_markers,
    build_schedule,
)

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, example="lead_in_s=1")
    parser.add_argument(
        "--speed", type=_positive, default=1.0, help="run the schedule N times faster"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the schedule and exit")


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    default = config_path("protocols", "mimics_and_muscles.toml")
    config = load_node_config(ProtocolConfig, args, default=default)
    if args.dry_run:
        for at, text in build_markers(build_schedule(config)):
            print(f"{at / args.speed:9.2f} s  {text}")
        return 0
    from streaming.acquisition.lsl_io import ChunkOutlet, configure_lsl, stream_info
    from streaming.bus.curve import CurveServer
    from streaming.bus.pubsub import Publisher

    curve = CurveServer.from_keys(config.bus_curve)  # a bad key file stops it before LSL
    configure_lsl()
    info = stream_info(
        config.stream_name,
        "Markers",
        1,
        0.0,
        "string",
        config.source_id,
        channel_labels=["marker"],
        desc={"protocol": {"name": config.name, "seed": config.seed}},
    )
    with (
        ChunkOutlet(info) as outlet,
        Publisher(config.bus, bind=config.bus_bind, curve=curve) as publisher,
    ):
        if config.wait_for_consumers_s > 0 and not outlet.wait_for_consumers(
            config.wait_for_consumers_s
        ):
            log.warning(
                "no consumer for %r after %.0f s; starting anyway",
                config.stream_name,
                config.wait_for_consumers_s,
            )
        runner = ProtocolRunner(
            config,
            lambda text, t: outlet.push_stamped([[text]], np.array([t])),
            lambda fields, t: publisher.publish("instruction", fields, t=t),
            speed=args.speed,
        )
        stop_on_signals(runner.stop)
        log.info(
            "protocol %r: %d trials, %.0f s; markers on LSL %r, instructions on %s",
            config.name,
            runner.steps[-1].total,
            runner.duration_s,
            config.stream_name,
            publisher.address,
        )
        finished = runner.run()
        time.sleep(0.5)  # recorders receive the last marker before the outlet closes
    return 0 if finished else 130

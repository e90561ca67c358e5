"""``eifer node emg``: stream facial EMG as the ``EMG`` LSL contract stream (DESIGN.md).

A thin shell over the library. Two sources:

- ``simulator``: the EMG simulator paced in real time, with optional amplifier clock emulation
  and a ground-truth stream (:mod:`simulation.live`);
- ``lsl``: a bridge for a real amplifier's LSL stream (:mod:`streaming.acquisition.emg_bridge`).

Both append a ``counter`` channel (:mod:`streaming.acquisition.emg_outlet`);
``stream.counter = false`` turns it off.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from configs import config_path
from nodes import common
from simulation import SimulatorConfig
from simulation.live import stream_simulator
from streaming.acquisition.emg_bridge import BridgeConfig, run_bridge
from streaming.acquisition.emg_outlet import OutputConfig, StopEvent, TimingConfig
from streaming.config import Config, load_config

__all__ = [
    "EmgNodeConfig",
    "add_arguments",
    "config_from_args",
    "load_node_config",
    "run",
    "run_node",
]

DEFAULT_CONFIG = config_path("nodes", "emg.toml")


class EmgNodeConfig(Config):
    source: Literal["simulator", "lsl"] = "simulator"
    resolve_scope: Literal["machine", "link", "site", "organization", "global"] = "machine"
    stream: OutputConfig = OutputConfig()
    timing: TimingConfig = TimingConfig()
    simulator: SimulatorConfig = SimulatorConfig()
    bridge: BridgeConfig = BridgeConfig()


def load_node_config(
    path: str | Path | None = None, overrides: Sequence[str] = ()
) -> EmgNodeConfig:
    """The node config from ``path`` (default: the shipped ``configs/nodes/emg.toml``)."""
    return load_config(EmgNodeConfig, path if path is not None else DEFAULT_CONFIG, overrides)


def run_node(
    cfg: EmgNodeConfig, stop: StopEvent | None = None, duration_s: float | None = None
) -> int:
    """Run the configured source until ``stop`` or ``duration_s``; returns samples pushed."""
    from streaming.acquisition.lsl_io import configure_lsl

    configure_lsl(cfg.resolve_scope)
    source_id = cfg.stream.stream_source_id(cfg.source)
    if cfg.source == "simulator":
        return stream_simulator(cfg.simulator, cfg.stream, cfg.timing, source_id, stop, duration_s)
    return run_bridge(
        cfg.bridge, cfg.stream, source_id, status_interval_s=cfg.timing.status_interval_s,
        stop=stop, duration_s=duration_s,
    )  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_config_arguments(
        parser, example="timing.jitter_s=0.002", default="configs/nodes/emg.toml"
    )
    parser.add_argument("--source", choices=["simulator", "lsl"], help="override `source`")
    parser.add_argument("--scheme", help="simulator electrode scheme (fridlund, kuramoto, path)")
    parser.add_argument("--name", help="output stream name (default EMG)")
    parser.add_argument(
        "--duration", type=common.seconds, default=None, help="stop after this many s"
    )


def config_from_args(args: argparse.Namespace) -> EmgNodeConfig:
    """The shipped file (or ``--config``), ``--set``, then ``--source``/``--scheme``/``--name``."""
    flags = {
        "source": ("--source", args.source),
        "simulator.scheme": ("--scheme", args.scheme),
        "stream.name": ("--name", args.name),
    }
    return common.load_node_config(EmgNodeConfig, args, default=DEFAULT_CONFIG, flags=flags)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    stop = threading.Event()
    common.stop_on_signals(stop.set)  # SIGINT/SIGTERM: leave the loop, close the outlets
    # a closed terminal (SIGHUP) too, at any stage: waiting for the amplifier, bridging, after
    # it vanished (the loops look at `stop` at least every LOOK_S)
    signal.signal(signal.SIGHUP, lambda _signum, _frame: stop.set())
    run_node(cfg, stop, args.duration)
    return 0

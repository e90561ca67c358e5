"""What every node shell shares: config arguments, config loading, clean shutdown."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel

from streaming.config import load_config

ConfigT = TypeVar("ConfigT", bound=BaseModel)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and repeated ``--set key=value`` overrides (TOML literals)."""
    parser.add_argument("--config", metavar="FILE", help="TOML config file (default: built-in)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set emg.feature=mmm (repeatable)",
    )


def load_node_config(cls: type[ConfigT], args: argparse.Namespace) -> ConfigT:
    return load_config(cls, args.config, args.overrides)


def stop_on_signals(stop: Callable[[], None]) -> None:
    """SIGINT and SIGTERM call ``stop`` so the node closes its streams and files cleanly."""

    def handler(signum: int, _frame: object) -> None:
        stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)

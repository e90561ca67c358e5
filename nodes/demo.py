"""``eifer demo``: the whole chain on one machine, with nothing but this repository.

The demo is a session, ``configs/sessions/demo.toml`` (the one description of its nodes, its
preparation and its view): ``eifer demo`` is ``eifer session --config demo``, each option a
``--set`` of that file (:func:`session_overrides`; ``--bus X`` is ``--set params.bus="X"``,
``--headless`` is ``--set nodes.display.enabled=false``). What this shell adds: the options,
checked before anything starts with one line naming the option.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from configs import CONFIG_DIR
from nodes.common import (
    OptionArguments,
    add_option_config_arguments,
    count,
    load_option_config,
    non_negative_int,
    port,
    positive_float,
    seconds,
)
from nodes.ports import check_bus_address, check_port_free
from nodes.session import load_session, run_session
from streaming.addresses import BusAddressError
from streaming.config import load_toml

__all__ = ["DEMO_SESSION", "add_arguments", "demo_params", "run", "session_overrides"]

DEMO_SESSION = CONFIG_DIR / "sessions" / "demo.toml"
# options that set the session file's parameter of the same name
PARAMS = ("participant_seed", "camera_size", "camera_rate", "occlusion", "protocol_speed",
          "suffix", "bus", "protocol_bus", "display_port", "weights")  # fmt: skip


def demo_params() -> dict[str, Any]:
    """The demo's parameters as shipped (``[params]`` of the session file, ``{pid}`` unfilled)."""
    params: dict[str, Any] = load_toml(DEMO_SESSION)["params"]
    return params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options = OptionArguments(parser)
    shipped = demo_params()

    def default(name: str) -> str:
        return f"(default {shipped[name]})".replace("{pid}", "<pid>")

    options.add_argument(
        "--seconds",
        type=seconds,
        help="stop after this many seconds of running, set-up not counted (default: Ctrl-C)",
    )
    options.add_argument("--bus", help=f"bus address to publish on {default('bus')}")
    options.add_argument(
        "--protocol-bus", help=f"the protocol node's bus address {default('protocol_bus')}"
    )
    options.add_argument(
        "--headless", action="store_true", help="no display process (tests, CI, servers)"
    )
    options.add_argument("--no-display", action="store_true", help="the same as --headless")
    options.add_argument("--no-models", action="store_true", help="EMG only: no demo model bundle")
    options.add_argument(
        "--display-port", type=port, help=f"web display port {default('display_port')}"
    )
    every = load_toml(DEMO_SESSION)["view"]["every"]
    options.add_argument("--every", type=count, help=f"print every Nth frame (default {every})")
    options.add_argument(
        "--participant-seed",
        type=non_negative_int,
        help="the synthetic participant (face, EMG, calibration); not a training seed "
        + default("participant_seed"),
    )
    options.add_argument(
        "--camera-size", help=f"participant camera WIDTHxHEIGHT {default('camera_size')}"
    )
    options.add_argument(
        "--camera-rate",
        type=positive_float,
        help=f"participant camera frame rate (Hz) {default('camera_rate')}",
    )
    options.add_argument(
        "--occlusion",
        choices=["fridlund", "none"],
        help=f"electrodes on the face (fridlund, as in the lab) or none {default('occlusion')}",
    )
    options.add_argument(
        "--protocol-speed",
        type=positive_float,
        help=f"run the protocol N times faster {default('protocol_speed')}",
    )
    options.add_argument(
        "--suffix", help=f"stream-name suffix: EMG-<suffix>, ... {default('suffix')}"
    )
    options.add_argument("--weights", help="demo weight folder (default models/demo-mlp)")
    add_option_config_arguments(options, example="display_port=8766")


def _given(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in PARAMS if getattr(args, name) not in (None, "")}


def session_overrides(args: argparse.Namespace) -> list[str]:
    """The options given, as ``--set`` overrides of ``configs/sessions/demo.toml``."""
    overrides = [f"params.{name}={json.dumps(value)}" for name, value in _given(args).items()]
    if args.headless or args.no_display:
        overrides.append("nodes.display.enabled=false")
    if args.no_models:
        overrides.append("prepare.demo.models=false")
    if args.every is not None:
        overrides.append(f"view.every={args.every}")
    return overrides


def check_options(params: dict[str, Any], args: argparse.Namespace) -> None:
    """One line for options that cannot work, before anything starts."""
    from nodes.camera import parse_size
    from simulation.demo_preparation import DemoError, check_held_out
    from streaming.config import ConfigError

    try:
        parse_size(params["camera_size"])
    except ConfigError:
        raise DemoError(
            f"--camera-size {params['camera_size']!r}: expected WIDTHxHEIGHT, e.g. 640x360"
        ) from None
    if not 0 < params["camera_rate"] <= 120:
        raise DemoError(f"--camera-rate {params['camera_rate']:g}: must be in (0, 120] Hz")
    if args.suffix and not args.suffix.replace("-", "").replace("_", "").isalnum():
        raise DemoError(f"--suffix {args.suffix!r}: letters, digits, - and _ only")
    if not args.no_models:
        check_held_out(params["participant_seed"], params["weights"], what="--participant-seed")


def check_addresses(params: dict[str, Any], display: bool) -> None:
    """Fail in a second, with one line, when an address is malformed or taken: before the
    models load, and before this demo could print another pipeline's data as its own."""
    bus, protocol_bus = params["bus"], params["protocol_bus"]
    if bus.strip() == protocol_bus.strip():
        raise BusAddressError(f"--bus and --protocol-bus are the same address ({bus})")
    check_bus_address(bus, "--bus")
    check_bus_address(protocol_bus, "--protocol-bus")
    if display:
        display_port = params["display_port"]
        if not 0 < display_port < 65536:
            raise BusAddressError(f"--display-port {display_port}: not a TCP port (1..65535)")
        check_port_free("127.0.0.1", display_port, "--display-port")


def run(args: argparse.Namespace) -> int:
    load_option_config(args)
    params = {**demo_params(), **_given(args)}
    check_options(params, args)
    check_addresses(params, display=not (args.headless or args.no_display))
    config = load_session(DEMO_SESSION, session_overrides(args))
    return run_session(config, DEMO_SESSION, args.seconds)

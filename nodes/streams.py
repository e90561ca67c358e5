"""``eifer streams``: list the LSL streams visible from this machine."""

from __future__ import annotations

import argparse

from nodes.common import OptionArguments, add_option_config_arguments, load_option_config, seconds
from streaming.acquisition.lsl_io import channel_format, configure_lsl, list_streams


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options = OptionArguments(parser)
    options.add_argument("--timeout", type=seconds, default=2.0, help="seconds to wait for streams")
    add_option_config_arguments(options, example="timeout=5")


def run(args: argparse.Namespace) -> int:
    load_option_config(args)
    configure_lsl()
    streams = list_streams(args.timeout)
    if not streams:
        print("no LSL streams visible")
        return 1
    print(f"{'name':<24} {'type':<10} {'ch':>6} {'rate Hz':>9} {'format':<9} source_id / host")
    for info in sorted(streams, key=lambda i: (i.type(), i.name())):
        print(
            f"{info.name():<24} {info.type():<10} {info.channel_count():>6} "
            f"{info.nominal_srate():>9g} {channel_format(info):<9} "
            f"{info.source_id()} @ {info.hostname()}"
        )
    return 0

"""``eifer keys``: a CURVE key pair for the bus (:mod:`streaming.bus.curve`).

    eifer keys pipeline --dir keys      # keys/pipeline.key (public), keys/pipeline.key_secret

The secret file is written 0600 and stays on its computer; the public file (0644) goes to the
other end: a subscriber's public key into the publisher's ``clients`` folder, the publisher's
public key to each subscriber as its ``server_key``. An existing pair is kept unless ``--force``.
"""

from __future__ import annotations

import argparse

from nodes.common import OptionArguments, add_option_config_arguments, load_option_config
from streaming.bus.curve import write_key_pair


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options = OptionArguments(parser)
    options.add_argument("name", help="the pair's name, e.g. pipeline, protocol, tablet")
    options.add_argument("--dir", default="keys", help="folder for the two files (default: keys)")
    options.add_argument(
        "--force", action="store_true", help="replace an existing pair of that name"
    )
    add_option_config_arguments(options, example="dir=keys")


def run(args: argparse.Namespace) -> int:
    load_option_config(args)
    public, secret = write_key_pair(args.dir, args.name, overwrite=args.force)
    print(f"public key: {public}  (give it to the other end)")
    print(f"secret key: {secret}  (0600; keep it on this computer)")
    return 0

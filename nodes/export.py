"""``eifer export SESSION --to mne|npz|csv``: a recorded session in formats other tools read.

A thin shell over :mod:`streaming.export`; prints the files it wrote.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nodes.common import add_option_config_arguments, load_option_config
from streaming.errors import SessionFileError
from streaming.export import FORMATS, export_session


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", help="session folder (session.xdf + videos) or an XDF file")
    parser.add_argument("--to", required=True, choices=FORMATS, help="output format")
    parser.add_argument("--out", help="output folder (default: <session>/export)")
    parser.add_argument("--emg", help="EMG stream name for MNE (default: first of type EMG)")
    parser.add_argument("--markers", help="marker stream name (default: first of type Markers)")
    add_option_config_arguments(parser, example='emg="EMG-lab2"')


def run(args: argparse.Namespace) -> int:
    load_option_config(args)
    try:
        if args.out:  # before loading the session: an unwritable folder fails at once
            Path(args.out).mkdir(parents=True, exist_ok=True)
        paths = export_session(args.session, args.to, args.out, emg=args.emg, markers=args.markers)
    except OSError as exc:  # an output folder that cannot be created or written
        where = exc.filename or args.out or "the output folder"
        raise SessionFileError(
            f"cannot write the export to {where}: {exc.strerror or exc}"
        ) from None
    for path in paths:
        print(path)
    return 0

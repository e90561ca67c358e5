"""``eifer export SESSION --to mne|npz|csv|bids``: a recorded session in formats other tools read.

A thin shell over :mod:`streaming.recording.export` and :mod:`streaming.recording.export_bids`;
prints the files it wrote, and for BIDS the streams it could not write and why.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nodes.common import (
    OptionArguments,
    add_option_config_arguments,
    count,
    load_option_config,
    positive_float,
)
from streaming.errors import SessionFileError
from streaming.recording.export import FORMATS, export_session


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options = OptionArguments(parser)
    options.add_argument("session", help="session folder (session.xdf + videos) or an XDF file")
    options.add_argument("--to", required=True, choices=(*FORMATS, "bids"), help="output format")
    options.add_argument(
        "--out", help="output folder; for bids the dataset root (default: <session>/export)"
    )
    options.add_argument("--emg", help="EMG stream name for MNE (default: first of type EMG)")
    options.add_argument("--markers", help="marker stream name (default: first of type Markers)")
    bids = options.add_argument_group("bids (default: the recording's LabRecorder fields)")
    bids.add_argument("--subject", help="BIDS subject label (default: the participant)")
    bids.add_argument("--bids-session", help="BIDS session label")
    bids.add_argument("--task", help="BIDS task label (default: the task, else the protocol)")
    bids.add_argument("--run", type=count, help="BIDS run (default: the recording's run)")
    bids.add_argument("--acquisition", help="BIDS acquisition label")
    bids.add_argument(
        "--line-freq", type=positive_float, default=50.0, help="power-line frequency, Hz"
    )
    bids.add_argument("--overwrite", action="store_true", help="replace an existing BIDS run")
    add_option_config_arguments(options, example='emg="EMG-lab2"')


def run(args: argparse.Namespace) -> int:
    load_option_config(args)
    try:
        if args.out:  # before loading the session: an unwritable folder fails at once
            Path(args.out).mkdir(parents=True, exist_ok=True)
        if args.to == "bids":
            return _bids(args)
        paths = export_session(args.session, args.to, args.out, emg=args.emg, markers=args.markers)
    except OSError as exc:  # an output folder that cannot be created or written
        where = exc.filename or args.out or "the output folder"
        raise SessionFileError(
            f"cannot write the export to {where}: {exc.strerror or exc}"
        ) from None
    for path in paths:
        print(path)
    return 0


def _bids(args: argparse.Namespace) -> int:
    from streaming.recording.export_bids import export_bids

    source = Path(args.session)
    root = args.out or (source / "export" / "bids" if source.is_dir() else source.with_name("bids"))
    paths, left_out = export_bids(
        source, root, emg=args.emg, markers=args.markers, line_freq_hz=args.line_freq,
        overwrite=args.overwrite, subject=args.subject, session=args.bids_session,
        task=args.task, run=args.run, acquisition=args.acquisition,
    )  # fmt: skip
    for path in paths:
        print(path)
    for line in left_out:
        print(f"not written to BIDS (kept in the session): {line}")
    return 0

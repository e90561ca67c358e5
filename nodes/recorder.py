"""``eifer record``: record LSL streams into a session folder (XDF + lossless video + session.json).

Prints a status line about every second; Ctrl-C (or SIGTERM) stops cleanly and writes the stream
footers. A full disk stops the recording with a message and a file that still loads.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time

from nodes.common import add_config_arguments, stop_on_signals
from streaming.config import load_config
from streaming.errors import EiferError
from streaming.lsl_io import configure_lsl
from streaming.recorder import Recorder, RecorderConfig

log = logging.getLogger("eifer.record")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, example="status_interval_s=2")
    parser.add_argument("--root", help="folder that holds the sessions (default: sessions)")
    parser.add_argument("--session", help="session name (default: the start time)")
    parser.add_argument("--participant", help="participant id")
    parser.add_argument("--notes", help="free notes stored in session.json")
    parser.add_argument(
        "--stream",
        action="append",
        default=[],
        metavar="NAME",
        help="record only streams with this name (repeatable; default: every visible stream)",
    )
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--quiet", action="store_true", help="no status line")


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    for key in ("root", "session", "participant", "notes"):
        if getattr(args, key):
            overrides.append(f'{key}="{getattr(args, key)}"')
    if args.stream:
        selectors = ", ".join(f'{{name = "{name}"}}' for name in args.stream)
        overrides.append(f"streams=[{selectors}]")
    config = load_config(RecorderConfig, args.config, overrides)
    configure_lsl()
    stop = threading.Event()
    stop_on_signals(stop.set)
    recorder = Recorder(config)
    print(f"recording into {recorder.folder}", flush=True)
    deadline = None if args.duration is None else time.monotonic() + args.duration
    reason, status = "stopped by the user", 0
    next_status = 0.0
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            recorder.poll()
            if not args.quiet and time.monotonic() >= next_status:
                next_status = time.monotonic() + config.status_interval_s
                print(recorder.status_line(), file=sys.stderr, flush=True)
            stop.wait(0.1)
        if not stop.is_set():  # the loop ended on the deadline, not by a signal
            reason = f"the duration ended ({args.duration:g} s)"
    except EiferError as exc:
        reason, status = str(exc), 1
        print(f"eifer record: {exc}", file=sys.stderr, flush=True)
    finally:
        recorder.close(reason)
    print(f"session saved: {recorder.folder} ({recorder.status_line()})", flush=True)
    return status

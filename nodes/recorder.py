"""``eifer record``: record LSL streams into a session folder (XDF + lossless video + session.json).

Prints a status line about every second; Ctrl-C (or SIGTERM) stops cleanly: every stream is
drained, the stream footers and the final ``session.json`` are written. A full disk stops the
recording with one line and files that still load. Settings: ``configs/nodes/recorder.toml``
(default), ``--config FILE``, ``--set key=value``; the options below set typed values, so any
text (quotes included) reaches ``session.json`` exactly.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
from typing import TextIO

from configs import config_path
from nodes.common import add_config_arguments, stop_on_signals
from streaming.config import load_config, validate
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


def recorder_config(args: argparse.Namespace) -> RecorderConfig:
    """The config file (default: the shipped one) and ``--set`` overrides, then the options as
    typed values (never pasted into TOML text, so ``P"01`` stays ``P"01``)."""
    path = args.config if args.config is not None else config_path("nodes", "recorder.toml")
    config = load_config(RecorderConfig, path, args.overrides)
    update: dict[str, object] = {
        key: getattr(args, key)
        for key in ("root", "session", "participant", "notes")
        if getattr(args, key) is not None
    }
    if args.stream:
        update["streams"] = [{"name": name} for name in args.stream]
    if not update:
        return config
    return validate(RecorderConfig, {**config.model_dump(), **update}, "command line")


def run(args: argparse.Namespace) -> int:
    config = recorder_config(args)
    configure_lsl()
    stop = threading.Event()
    stop_on_signals(stop.set)
    # a closed terminal (SIGHUP) ends the recording cleanly too, never by killing it
    signal.signal(signal.SIGHUP, lambda _signum, _frame: stop.set())
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
                _say(recorder.status_line(), sys.stderr)
            stop.wait(0.1)
        if not stop.is_set():  # the loop ended on the deadline, not by a signal
            reason = f"the duration ended ({args.duration:g} s)"
    except EiferError as exc:
        reason, status = str(exc), 1
        _say(f"eifer record: error: {exc}", sys.stderr)
    else:
        if not stop.is_set():
            reason = f"--duration {args.duration:g} s reached"
    finally:
        recorder.close(reason)
    _say(f"session saved: {recorder.folder} ({recorder.status_line()})", sys.stdout)
    return status


def _say(line: str, stream: TextIO) -> None:
    """Print, unless the terminal is gone (after SIGHUP): the recording matters, not the line."""
    with contextlib.suppress(OSError):
        print(line, file=stream, flush=True)

"""``eifer record``: record LSL streams into a session folder (XDF + lossless video + session.json).

Prints a status line about every second; Ctrl-C (or SIGTERM) stops cleanly: every stream is
drained, the stream footers and the final ``session.json`` are written. A full disk stops the
recording with one line and files that still load. Settings: ``configs/nodes/recorder.toml``
(default), ``--config FILE``, ``--set key=value``; the options below set typed values, so any
text (quotes included) reaches ``session.json`` exactly.

As LabRecorder: ``--template bids`` (or ``path_template``) names the XDF by its BIDS template
with the next free run; ``required_streams`` are shown missing until they appear, and a start
without them asks, refuses or records (``missing_required``); ``--remote`` listens for
LabRecorder's remote-control commands (loopback port 22345) and records when told to.
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
from nodes.common import add_config_arguments, non_negative_int, port, seconds, stop_on_signals
from streaming.acquisition.lsl_io import configure_lsl
from streaming.config import load_config, validate
from streaming.errors import EiferError
from streaming.recording.recorder import RecorderConfig
from streaming.recording.recorder_control import RecorderController
from streaming.recording.recorder_remote import RemoteControlServer

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
    parser.add_argument(
        "--template",
        help='LabRecorder path template under --root, "bids" for its BIDS template '
        "(sub-%%p/ses-%%s/%%m/sub-%%p_ses-%%s_task-%%b[_acq-%%a]_run-%%r_%%m.xdf)",
    )
    parser.add_argument("--task", help="task label (%%b in a template)")
    parser.add_argument(
        "--run", type=non_negative_int, help="run number (%%r; default: the next free run)"
    )
    parser.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="NAME",
        help='a required stream, "Name" or "Name (hostname)" (repeatable)',
    )
    parser.add_argument(
        "--remote",
        action="store_true",
        help="LabRecorder remote control: wait for start/stop on the control port",
    )
    parser.add_argument(
        "--remote-port", type=port, help="remote control port (default 22345; 0: any free port)"
    )
    parser.add_argument(
        "--remote-host",
        help="address the remote control listens on (default 127.0.0.1; 0.0.0.0: every network)",
    )
    parser.add_argument(
        "--remote-allow",
        action="append",
        metavar="HOST",
        help="a host (address, network such as 10.0.0.0/24, or name) whose scripts may connect "
        "(repeatable; replaces the default, this machine only)",
    )
    parser.add_argument("--duration", type=seconds, help="stop after this many seconds")
    parser.add_argument("--quiet", action="store_true", help="no status line")


def recorder_config(args: argparse.Namespace) -> RecorderConfig:
    """The config file (default: the shipped one) and ``--set`` overrides, then the options as
    typed values (never pasted into TOML text, so ``P"01`` stays ``P"01``)."""
    path = args.config if args.config is not None else config_path("nodes", "recorder.toml")
    config = load_config(RecorderConfig, path, args.overrides)
    update: dict[str, object] = {
        key: getattr(args, key)
        for key in ("root", "session", "participant", "notes", "task", "run")
        if getattr(args, key) is not None
    }
    if args.template is not None:
        update["path_template"] = args.template
    if args.stream:
        update["streams"] = [{"name": name} for name in args.stream]
    if args.require:
        update["required_streams"] = list(args.require)
    if args.remote or args.remote_port is not None or args.remote_host or args.remote_allow:
        remote = config.remote_control.model_dump()
        remote["enabled"] = remote["enabled"] or args.remote
        if args.remote_port is not None:
            remote["port"] = args.remote_port
        if args.remote_host:
            remote["host"] = args.remote_host
        if args.remote_allow:
            remote["allow"] = list(args.remote_allow)
        update["remote_control"] = remote
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
    controller = RecorderController(config, ask=_ask if sys.stdin.isatty() else None)
    remote = config.remote_control
    server = None
    if remote.enabled:
        server = RemoteControlServer(controller, remote.host, remote.port, remote.allow).start()
        host, port = server.address
        _say(
            f"remote control: listening on {host}:{port} (LabRecorder commands) for "
            f"{', '.join(remote.allow)}",
            sys.stdout,
        )
    reason, status = "stopped by the user", 0
    try:
        if server is None or remote.auto_start:
            controller.start()
            _say(f"recording into {_shown(controller)}", sys.stdout)
        elif config.required_streams:
            controller.refresh()
        status, reason = _loop(args, config, controller, stop, remote_control=server is not None)
    except EiferError as exc:
        reason, status = str(exc), 1
        _say(f"eifer record: error: {exc}", sys.stderr)
    finally:
        if server is not None:
            server.close()
        saved = controller.close(reason)
    if saved is not None or (server is None and controller.last_xdf is not None):
        _say(f"session saved: {_shown(controller)}", sys.stdout)
    return status


def _loop(
    args: argparse.Namespace,
    config: RecorderConfig,
    controller: RecorderController,
    stop: threading.Event,
    *,
    remote_control: bool,
) -> tuple[int, str]:
    """Until a signal, the duration, or (without remote control) a failed recording."""
    deadline = None if args.duration is None else time.monotonic() + args.duration
    next_status = 0.0
    while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
        try:
            controller.poll()
        except EiferError as exc:
            if not remote_control:
                raise
            _say(f"eifer record: error: {exc} (recording stopped)", sys.stderr)
        now = time.monotonic()
        if remote_control and not controller.recording:
            controller.watch()  # a live resolver: the status never misses a stream that is up
        if not args.quiet and now >= next_status:
            next_status = now + config.status_interval_s
            _say(controller.status_line(), sys.stderr)
        stop.wait(0.1)
    if not stop.is_set():  # the loop ended on the deadline, not by a signal
        return 0, f"the duration ended ({args.duration:g} s)"
    return 0, "stopped by the user"


def _shown(controller: RecorderController) -> str:
    """A session folder is shown as the folder (as before templates), a templated run as its XDF."""
    xdf = controller.last_xdf
    assert xdf is not None
    return str(xdf.parent if xdf.name == "session.xdf" else xdf)


def _ask(question: str) -> bool:
    """LabRecorder's "record anyway?" dialog, on the terminal."""
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _say(line: str, stream: TextIO) -> None:
    """Print, unless the terminal is gone (after SIGHUP): the recording matters, not the line."""
    with contextlib.suppress(OSError):
        print(line, file=stream, flush=True)

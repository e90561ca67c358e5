"""``eifer session --config lab.toml``: every node of a real session from one file, one status
view, one stop.

``--config`` takes a session file or the name of a shipped one (``lab``, ``demo``:
``configs/sessions/<name>.toml``); ``--set nodes.camera.enabled=false`` and the like override it.
Ctrl-C, SIGTERM (``kill``, ``timeout``) and SIGHUP (terminal closed) stop every node; a node
that fails, or whose stream does not come, stops the session with one line naming it. The
runner: :mod:`nodes.session_runner`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from configs import CONFIG_DIR
from nodes.common import add_config_arguments, load_node_config, restore_sigint, seconds
from nodes.session_runner import (
    SessionConfig,
    SessionRunner,
    lsl_config_file,
    placeholder_values,
    substitute,
)
from streaming.config import ConfigError
from streaming.errors import EiferError

WORK_PREFIX = "eifer-session-"
PID_FILE = "session.pid"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(
        parser, example="nodes.display.enabled=false", default="configs/sessions/demo.toml"
    )
    parser.add_argument("--seconds", type=seconds, help="stop after this many seconds")


def session_file(name: str | None) -> Path:
    """A path, or the name of a shipped session file."""
    if name is None:
        return CONFIG_DIR / "sessions" / "demo.toml"
    path = Path(name)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / "sessions" / f"{name.removesuffix('.toml')}.toml"
    if shipped.is_file():
        return shipped
    available = sorted(p.stem for p in (CONFIG_DIR / "sessions").glob("*.toml"))
    raise ConfigError(f"session file {name!r} not found (shipped: {', '.join(available)})")


def _stop_on(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _say(line: str) -> None:
    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
        print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    path = session_file(args.config)
    args.config = str(path)
    config = load_node_config(SessionConfig, args)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_on)
    restore_sigint()
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX))
    (work / PID_FILE).write_text(str(os.getpid()))
    if config.lsl_scope:
        os.environ.setdefault("LSLAPICFG", str(lsl_config_file(work, config.lsl_scope)))
    runner = SessionRunner(config, work, _say, base=path.parent)
    error: EiferError | None = None
    try:
        runner.check_ports()  # before anything starts: one line, nothing left behind
        _say(f"EIFER session {config.name!r} from {path}: logs in {work}")
        runner.start()
        for line in config.show:
            _say(substitute(line, placeholder_values(work)))
        _say("press Ctrl-C to stop\n")
        _watch(runner, config, args.seconds)
    except KeyboardInterrupt:
        pass
    except EiferError as exc:  # a taken port, a failed node, a stream that never came
        error = exc
    finally:
        runner.stop()
    if error is None:
        shutil.rmtree(work, ignore_errors=True)
        _say("session stopped: every node ended")
        return 0
    (work / PID_FILE).unlink(missing_ok=True)
    _say(f"session stopped; logs kept in {work}")
    raise error


def _watch(runner: SessionRunner, config: SessionConfig, seconds: float | None) -> None:
    """Check the nodes about every second, print the status line every status interval."""
    from streaming.acquisition.lsl_io import configure_lsl, list_streams

    configure_lsl()
    deadline = None if seconds is None else time.monotonic() + seconds
    next_status = 0.0
    visible: set[str] = set()
    while deadline is None or time.monotonic() < deadline:
        # one discovery round sees only some of a machine's outlets (liblsl#92, the unicast
        # "lottery" on 127.0.0.1), so "up" means seen since the start; a node that dies is
        # caught by its exit, not by its stream going out of sight
        visible |= {info.name() for info in list_streams(1.0)}
        runner.check(visible)
        if time.monotonic() >= next_status:
            next_status = time.monotonic() + config.status_interval_s
            _say(runner.status_line(visible))
        time.sleep(0.5)

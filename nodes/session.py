"""``eifer session --config lab.toml``: every node of a session from one file, one view, one stop.

``--config`` takes a session file or the name of a shipped one (``lab``, ``demo``:
``configs/sessions/<name>.toml``; ``eifer demo`` is ``demo`` with its options as parameters);
``--set nodes.camera.enabled=false`` and the like override it. Ctrl-C, SIGTERM (``kill``,
``timeout``) and SIGHUP (terminal closed) stop every node; a node that fails, or whose stream does
not come, stops the session with one line naming it. :func:`run_session` is the one way a
session runs (the work folder for logs, its pid file, the signals); the runner:
:mod:`nodes.session_runner`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path

from configs import CONFIG_DIR
from nodes.common import add_config_arguments, load_node_config, restore_sigint, seconds
from nodes.session_config import SessionConfig
from nodes.session_runner import SessionRunner, check_before_start, lsl_config_file
from streaming.config import ConfigError
from streaming.errors import EiferError

__all__ = [
    "PID_FILE",
    "WORK_PREFIX",
    "add_arguments",
    "load_session",
    "remove_stale_work_folders",
    "run",
    "run_session",
    "session_file",
]

WORK_PREFIX = "eifer-session-"
PID_FILE = "session.pid"  # in the work folder while the session runs; a dead pid marks it stale


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


def load_session(path: Path, overrides: list[str]) -> SessionConfig:
    """The session file at ``path`` with ``--set`` ``overrides``; errors name the one at fault."""
    args = argparse.Namespace(config=str(path), overrides=overrides)
    return load_node_config(SessionConfig, args)


def remove_stale_work_folders(parent: Path | None = None) -> list[Path]:
    """Remove work folders of sessions that were killed (SIGKILL leaves no chance to clean up)."""
    removed = []
    for folder in Path(parent or tempfile.gettempdir()).glob(WORK_PREFIX + "*"):
        try:
            pid = int((folder / PID_FILE).read_text().strip())
        except (OSError, ValueError):
            continue  # not ours, or kept on purpose (a failed session's logs)
        if not pid_alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_on(signum: int, _frame: object) -> None:
    """SIGTERM (``timeout``, ``kill``) and SIGHUP (terminal closed) end a session like Ctrl-C."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _say(line: str) -> None:
    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
        print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    path = session_file(args.config)
    return run_session(load_session(path, args.overrides), path, args.seconds)


def run_session(config: SessionConfig, path: Path, seconds: float | None = None) -> int:
    """Check, start, watch for ``seconds`` (None: until Ctrl-C, SIGTERM or SIGHUP), stop.

    Returns 0 when every node was stopped as asked (the work folder is removed); raises the
    :class:`EiferError` that ended the session otherwise (the work folder keeps the logs).
    """
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_on)
    restore_sigint()  # Ctrl-C is the documented way to stop
    check_before_start(config)  # one line, nothing started, nothing left behind
    remove_stale_work_folders()
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX))
    (work / PID_FILE).write_text(str(os.getpid()))
    if config.lsl_scope:
        os.environ.setdefault("LSLAPICFG", str(lsl_config_file(work, config.lsl_scope)))
    runner = SessionRunner(config, work, _say, base=path.parent)
    error: EiferError | None = None
    try:
        _say(f"EIFER session {config.name!r} from {path}: logs in {work}")
        runner.start()
        _say("press Ctrl-C to stop\n")
        runner.watch(seconds)
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP, at any stage (even the preparation)
        pass
    except EiferError as exc:  # a failed node, a stream that never came
        error = exc
    finally:
        runner.stop()
    ended = (
        f"{config.name} stopped after {runner.frames} frames"
        if config.view.bus
        else ("session stopped")
    )
    if error is None:
        shutil.rmtree(work, ignore_errors=True)
        _say(f"{ended}: every node ended")
        return 0
    (work / PID_FILE).unlink(missing_ok=True)
    _say(f"{ended}; logs kept in {work}")
    raise error

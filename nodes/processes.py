"""Run several ``eifer`` nodes as child processes and stop them together (a session's nodes).

Children never outlive their parent, however it ends (SIGTERM, SIGHUP, ``timeout``, a closed
terminal, SIGKILL): each child asks the kernel for SIGTERM when its parent dies
(``PR_SET_PDEATHSIG``, Linux, prctl(2)) and also runs a watchdog thread on its parent's pid (the
fallback where prctl does not exist, and the cover for a parent that died before prctl ran).
The parent's pid reaches the child in the environment (:data:`PARENT_PID_ENV`);
:func:`follow_parent` is called by ``nodes.cli`` at start-up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

PARENT_PID_ENV = "EIFER_PARENT_PID"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCHDOG_PERIOD_S = 0.5
GRACE_S = 10.0  # after SIGTERM, a child that has not ended is ended hard


def _set_parent_death_signal(signum: int) -> bool:
    """Ask the kernel to send ``signum`` when the parent dies (Linux only); True if it worked."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _end_self(reason: str) -> None:
    """SIGTERM to this process (the node closes its streams and files); hard exit if it hangs."""
    log.warning("%s: stopping", reason)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE_S)
    os._exit(1)


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCHDOG_PERIOD_S)
    _end_self(f"parent process {parent_pid} ended")


def follow_parent() -> bool:
    """In a child started by :class:`ProcessGroup`: end when the parent ends.

    Returns True when this process is such a child. The variable is removed from the
    environment so the child's own children do not take the wrong parent.
    """
    value = os.environ.pop(PARENT_PID_ENV, None)
    if not value or not value.isdigit():
        return False
    parent_pid = int(value)
    _set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        _end_self(f"parent process {parent_pid} ended before this node started")
    threading.Thread(target=_watch, args=(parent_pid,), name="parent-watchdog", daemon=True).start()
    return True


@dataclass
class Child:
    """One node process; its output goes to ``log_path``."""

    name: str
    argv: list[str]
    log_path: Path
    may_finish: bool = False  # e.g. a protocol that ends; other nodes run until stopped
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ if env is None else env)
        env[PARENT_PID_ENV] = str(os.getpid())
        log_file = self.log_path.open("wb")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nodes.cli", *self.argv],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # Ctrl-C in the terminal reaches the session, which stops us
            )
        finally:
            log_file.close()

    @property
    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


class ProcessGroup:
    """Start children, notice one that dies, stop all with SIGTERM (then SIGKILL)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []

    def start(self, name: str, argv: Sequence[str], *, may_finish: bool = False) -> Child:
        child = Child(name, list(argv), self.log_dir / f"{name}.log", may_finish)
        self.children.append(child)  # before start: a stop during start still sees it
        child.start()
        return child

    def failed(self) -> Child | None:
        """A child that exited on its own (a node should run until stopped) or failed."""
        return next(
            (
                c
                for c in self.children
                if c.exit_code not in (None, *((0,) if c.may_finish else ()))
            ),
            None,
        )

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM to every child, then SIGKILL to those still running after ``timeout_s``.

        Further Ctrl-C / SIGTERM / SIGHUP are ignored meanwhile, so an impatient second
        Ctrl-C cannot leave children behind; the stop itself is bounded.
        """
        ignored = _ignore_stop_signals()
        try:
            for child in reversed(self.children):
                if child.exit_code is None and child.process is not None:
                    child.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            for child in self.children:
                if child.process is None:
                    continue
                try:
                    child.process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop within %.0f s: killed", child.name, timeout_s)
                    child.process.kill()
                    child.process.wait()
        finally:
            _restore_signals(ignored)


_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def _ignore_stop_signals() -> dict[int, object]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, signal.SIG_IGN) for signum in _STOP_SIGNALS}


def _restore_signals(previous: dict[int, object]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)  # type: ignore[arg-type]

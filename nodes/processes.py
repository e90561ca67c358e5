"""Run several ``eifer`` nodes as child processes and stop them together (used by the demo)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Child:
    """One node process; its output goes to ``log_path``."""

    name: str
    argv: list[str]
    log_path: Path
    may_finish: bool = False  # e.g. a protocol that ends; other nodes run until stopped
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str] | None = None) -> None:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nodes.cli", *self.argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C in the terminal reaches the demo, which stops us
        )
        log.close()

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
        child.start(env=dict(os.environ))
        self.children.append(child)
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
                child.process.kill()
                child.process.wait()

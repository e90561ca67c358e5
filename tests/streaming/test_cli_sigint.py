"""Ctrl-C (SIGINT) stops every ``eifer`` command, also when a script started it with SIGINT
ignored (a background job of a non-interactive shell inherits SIG_IGN): issue 18, item 6."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from nodes import cli

REPO = Path(__file__).resolve().parents[2]
SIGINT_BIT = 1 << (signal.SIGINT - 1)


def test_every_command_runs_with_the_default_sigint_handler(monkeypatch) -> None:
    """The one helper runs in ``eifer`` itself, before any command module is imported."""
    seen: dict[tuple[str, ...], object] = {}
    current: list[tuple[str, ...]] = []
    fake = types.ModuleType("fake_eifer_command")
    fake.add_arguments = lambda parser: None  # type: ignore[attr-defined]
    fake.run = lambda args: seen.update({current[-1]: signal.getsignal(signal.SIGINT)})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_eifer_command", fake)
    previous = signal.getsignal(signal.SIGINT)
    try:
        for words in list(cli.COMMANDS):
            monkeypatch.setitem(cli.COMMANDS, words, ("fake_eifer_command", "test"))
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            current.append(words)
            assert cli.main(list(words)) == 0
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen.keys() == cli.COMMANDS.keys()
    assert all(handler is signal.default_int_handler for handler in seen.values()), seen


def _sigint_ignored(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & SIGINT_BIT)
    raise AssertionError("no SigIgn line")


@pytest.mark.parametrize(
    ("argv", "ready"),
    [
        (["listen", "--address", "tcp://127.0.0.1:{port}"], ""),
        (["check", "--seconds", "600", "--bus", "tcp://127.0.0.1:{port}"], ""),
        (["record", "--remote", "--remote-port", "0", "--root", "{tmp}"], "remote control:"),
    ],
    ids=["listen", "check", "record"],
)
def test_ctrl_c_stops_a_command_started_with_sigint_ignored(argv, ready, tmp_path) -> None:
    """Started as a background job of a script would start it; SIGINT is sent only once the
    process has its handler back (read from /proc, no sleep), and it must end within 60 s."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [a.format(port=port, tmp=tmp_path / "study") for a in argv]
    log = tmp_path / "out.txt"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nodes.cli", *argv], cwd=REPO, stdout=out, stderr=out,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while _sigint_ignored(proc.pid) or ready not in log.read_text():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"SIGINT still ignored: {log.read_text()}"
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode in (0, 1, 130), log.read_text()
    assert "Traceback" not in log.read_text()

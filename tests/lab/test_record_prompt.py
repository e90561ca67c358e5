"""``eifer record`` at a terminal without a required stream asks, as LabRecorder's dialog does:
"no" leaves nothing behind, "yes" records and notes what was missing."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path


def _record_at_a_terminal(tmp_path: Path, missing: str, answer: bytes) -> tuple[int, str]:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "nodes.cli", "record", "--root", str(tmp_path), "--session", "s",
         "--require", missing, "--set", "required_wait_s=0", "--stream", missing, "--quiet"],
        stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    os.close(terminal)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "s").exists() and process.poll() is None:
            if time.monotonic() > deadline:
                break
            os.write(controller, answer)  # input() reads it once the question is asked
            time.sleep(1.0)
            if answer == b"n\n":
                break
        if process.poll() is None and (tmp_path / "s").exists():
            time.sleep(1.0)
            process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    finally:
        os.close(controller)
    return process.returncode, out + err


def test_no_refuses_and_leaves_nothing(tmp_path: Path, unique_name: str) -> None:
    code, output = _record_at_a_terminal(tmp_path, unique_name, b"n\n")
    assert code == 1, output
    assert f"required streams missing: {unique_name}. Record anyway? [y/N]" in output
    assert f"required streams missing: {unique_name}; not started" in output
    assert not (tmp_path / "s").exists()


def test_yes_records_and_notes_the_missing_stream(tmp_path: Path, unique_name: str) -> None:
    code, output = _record_at_a_terminal(tmp_path, unique_name, b"y\n")
    assert code == 0, output
    info = json.loads((tmp_path / "s" / "session.json").read_text())
    assert info["required_streams_missing"] == [unique_name]
    assert info["stopped"]

"""``eifer record --duration``: the session says that the duration ended it, not the user."""

from __future__ import annotations

import json
import subprocess
import sys


def test_stop_reason_says_the_duration_ended_the_recording(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "nodes.cli", "record", "--root", str(tmp_path), "--session", "s",
         "--duration", "1.5", "--quiet"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    info = json.loads((tmp_path / "s" / "session.json").read_text())
    assert info["stop_reason"] == "the duration ended (1.5 s)"

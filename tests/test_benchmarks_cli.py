"""``python -m benchmarks`` as a new user runs it (issue 18, item 13)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_help_is_help_and_runs_nothing() -> None:
    done = _run("-m", "benchmarks", "--help")
    assert done.returncode == 0 and "usage: python -m benchmarks" in done.stdout
    assert "===" not in done.stdout  # no benchmark started
    listed = _run("-m", "benchmarks", "--list").stdout.split()
    assert "dsp_online_vs_offline" in listed and "trainer_toy" in listed
    bad = _run("-m", "benchmarks", "nope")
    assert bad.returncode == 2 and "unknown benchmark 'nope'" in bad.stderr


def test_dsp_benchmark_without_the_shared_data_is_one_line(tmp_path: Path) -> None:
    done = _run("-m", "benchmarks.dsp_online_vs_offline", "--data", str(tmp_path / "none"),
                "--out", str(tmp_path / "out.json"))  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "not found in" in lines[0] and "--data" in lines[0], lines
    assert not (tmp_path / "out.json").exists()

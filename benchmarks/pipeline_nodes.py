"""What the pipeline benchmarks share: the real source nodes as processes, and the results file.

``pipeline_latency`` and ``pipeline_overload`` both run the real EMG node (simulator, 22 channels
at 4096 Hz) and camera node (synthetic face) as separate processes, with the pipeline in the
benchmark's own process, over loopback LSL (the tests' liblsl config).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def use_loopback_lsl() -> None:
    """liblsl sees this machine only (the tests' config), unless ``LSLAPICFG`` says otherwise."""
    os.environ.setdefault("LSLAPICFG", str(ROOT / "tests" / "lsl_api.cfg"))


def node(argv: list[str]) -> subprocess.Popen[bytes]:
    """``eifer <argv>`` as a quiet child process."""
    return subprocess.Popen(
        [sys.executable, "-m", "nodes.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@contextmanager
def source_nodes(tag: str, size: str) -> Iterator[tuple[str, str]]:
    """The EMG node and the camera node (``size`` frames) streaming as ``EMG-<tag>`` and
    ``Camera-<tag>``; yields those names, stops both (SIGTERM, then waits) on leaving."""
    emg, cam = f"EMG-{tag}", f"Camera-{tag}"
    nodes = [
        node(["node", "emg", "--name", emg]),
        node(["node", "camera", "--source", "synthetic", "--name", cam, "--size", size]),
    ]
    try:
        yield emg, cam
    finally:
        for process in nodes:
            process.terminate()
            process.wait(10)


def machine() -> dict[str, Any]:
    """Where a figure was measured."""
    return {
        "processor": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def write_results(name: str, fields: dict[str, Any]) -> Path:
    """``benchmarks/results/<name>.json``: the benchmark's name, ``fields``, and the time."""
    RESULTS.mkdir(exist_ok=True)
    out = {"benchmark": name, **fields, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(out, indent=2))
    return path

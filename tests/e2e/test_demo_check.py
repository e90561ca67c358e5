"""The demo as a newcomer runs it, judged by ``eifer check`` against the synthetic participant's
truth: real nodes, real LSL streams, the real bus, psutil to see that nothing outlives it."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from nodes.demo import demo_params
from simulation.demo_preparation import training_seeds
from streaming.check.config import Thresholds

REPO = Path(__file__).resolve().parents[2]
DEMO_PARTICIPANT_SEED = demo_params()["participant_seed"]  # configs/sessions/demo.toml
CLI = [sys.executable, "-m", "nodes.cli"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
ALIGNMENT = "EMG-to-frame alignment error |p99| (vs truth)"
MIN_R_PHI_EMG = 0.8  # the check's default (streaming/check/config.py); justified below


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Output:
    """The demo's stdout, read in a thread (a full pipe would block the demo)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout_s: float, process: subprocess.Popen[str]) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text(), re.MULTILINE)
            if match:
                return match[1] if match.groups() else match[0]
            if process.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"no {pattern!r} within {timeout_s:.0f} s:\n{self.text()[-4000:]}")


def _rows(report: dict) -> dict[str, dict]:
    return {row["check"]: row for row in report["rows"]}


@pytest.mark.slow
def test_the_demo_passes_the_check_against_its_truth_and_stops_cleanly():
    """``eifer demo --headless`` (participant seed 7, the protocol at 3x speed so a 100 s window
    covers rest and about eight movements) checked by ``eifer check --bundle`` for 100 s (the
    video rows are judged over >= 90 s only: with the earlier encoders 40 s windows swung from
    0.16 to 0.24 between runs; 100 s with the demo's encoders measured 0.80 (phi_video) and 0.65
    (emg_from_video), twice).

    The camera runs at 10 fps and 320x180 here: on the shared 2-core test machine (other work,
    e.g. ``stress-ng --cpu 2``) the renderer and the CPU encoders cannot hold 30 fps
    (published/captured measured 0.81-0.98 at 30 fps, and 0.90 at 15 fps under ``stress-ng
    --cpu 2``; README "Demo"); at this rate the check judges what the pipeline guarantees when
    the CPU keeps up, not the machine's load.

    Asserted: every node starts (the check finds the EMG, camera and truth streams and the bus),
    published >= 95 % of captured frames, EMG-to-frame alignment p99 within 1 ms of the
    simulator's truth, and r(phi_emg, true phi) >= 0.8 on a participant the MLPs never saw
    (offline held-out r 0.967 over 5 folds of seeds 200-204; live on seed 7 it measured 0.97 in
    30-40 s windows: 0.8 leaves room for windows with few movements, seed 7's different gains
    and the online chain). ``phi_video`` and ``emg_from_video`` come from the trained demo
    encoders (``models/demo-encoders``, never trained on seed 7): the check judges them against
    its defaults ``min_r_phi_video`` / ``min_r_emg_from_video`` (set from the measured figures,
    README "Checking a setup"), and they pass. Then SIGTERM: no node outlives the demo."""
    assert DEMO_PARTICIPANT_SEED not in training_seeds(), "the demo participant was trained on"
    bus, protocol = f"tcp://127.0.0.1:{_free_port()}", f"tcp://127.0.0.1:{_free_port()}"
    suffix = f"check{os.getpid()}"
    demo = subprocess.Popen(
        [*CLI, "demo", "--headless", "--seconds", "600", "--bus", bus, "--protocol-bus", protocol,
         "--suffix", suffix, "--protocol-speed", "3", "--camera-rate", "10", "--camera-size", "320x180",
         "--every", "100000"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=ENV,
        preexec_fn=os.setsid,
    )  # fmt: skip
    output = _Output(demo)
    children: list[psutil.Process] = []
    try:
        assert f"seed {DEMO_PARTICIPANT_SEED}," in output.wait_for(r"^participant: .*$", 60, demo)
        bundle = output.wait_for(r"^models: (/\S+)$", 240, demo)
        output.wait_for(r"^protocol: started", 300, demo)
        check = subprocess.run(
            [*CLI, "check", "--json", "--seconds", "100", "--bus", bus, "--bundle", bundle,
             "--set", f'emg.name="EMG-{suffix}"', "--set", f'video.name="Camera-{suffix}"',
             "--set", "find_timeout_s=20", "--set", "settle_s=2"],
            capture_output=True, text=True, cwd=REPO, env=ENV, timeout=300,
        )  # fmt: skip
        children = psutil.Process(demo.pid).children(recursive=True)
        assert demo.poll() is None, output.text()[-4000:]
        os.kill(demo.pid, signal.SIGTERM)
        demo.wait(90)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(30)
    assert len(children) >= 4, f"emg, camera, pipeline, protocol: {children}"
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"left running after SIGTERM: {[p.pid for p in alive]}"

    report = json.loads(check.stdout) if check.stdout.startswith("{") else None
    assert report is not None, check.stdout + check.stderr
    rows = _rows(report)
    print(json.dumps(report["rows"], indent=1))  # the figures, for the README
    assert report["emg_truth"] and report["video_truth"], report["notes"]
    assert rows["published / captured"]["value"] >= 0.95, rows["published / captured"]
    assert rows[ALIGNMENT]["value"] < 1.0, rows[ALIGNMENT]
    phi_emg = rows["r phi_emg vs true phi"]
    assert phi_emg["passed"] is True and phi_emg["value"] >= MIN_R_PHI_EMG, phi_emg
    limits = Thresholds()
    for name, limit in (("r phi_video vs true phi", limits.min_r_phi_video),
                        ("r emg_from_video vs measured envelope", limits.min_r_emg_from_video)):  # fmt: skip
        assert rows[name]["passed"] is True and rows[name]["value"] >= limit, rows[name]
    assert check.returncode == 0 and report["passed"], json.dumps(report["rows"])

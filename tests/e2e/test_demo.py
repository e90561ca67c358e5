"""End to end, as a newcomer runs it: ``eifer demo`` (EMG simulator, protocol, camera, pipeline
with a demo bundle and a calibration profile, display) seen on the bus and in a real browser."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from nodes.display.headless import CHROMIUM, CHROMIUM_ARGS
from streaming.bus.pubsub import Subscriber

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def demo():
    bus = f"tcp://127.0.0.1:{_free_port()}"
    protocol = f"tcp://127.0.0.1:{_free_port()}"
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "nodes.cli", "demo", "--seconds", "120", "--bus", bus,
         "--protocol-bus", protocol, "--display-port", str(port), "--every", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    output: list[str] = []  # read all along: a full pipe would block the demo's prints
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
    reader.start()
    # start-up (demo bundle, calibration) takes ~20 s idle, minutes on a loaded machine
    deadline = time.monotonic() + 300
    while not any("press Ctrl-C" in line for line in output) and time.monotonic() < deadline:
        assert process.poll() is None, "".join(output)
        time.sleep(0.2)
    yield bus, protocol, port, process, output
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.slow
@pytest.mark.browser
def test_demo_publishes_every_frame_with_models_and_the_page_shows_it(demo, tmp_path):
    bus, protocol, port, process, output = demo
    seen: dict[str, list] = {"muscle": [], "expression": [], "status": [], "instruction": []}
    with Subscriber([bus, protocol], list(seen)) as subscriber:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (
            len(seen["muscle"]) < 150 or not seen["instruction"] or len(seen["expression"]) < 150
        ):
            message = subscriber.receive(0.5)
            if message is not None:
                seen[message.topic].append(message)
        muscle_seen = len(seen["muscle"])
        status_seen = len(seen["status"])
        deadline = time.monotonic() + 10  # a status sent after these frames counts their drops
        while len(seen["status"]) == status_seen and time.monotonic() < deadline:
            message = subscriber.receive(0.5)
            if message is not None:
                seen[message.topic].append(message)
    assert process.poll() is None, "".join(output)
    muscle = seen["muscle"][:muscle_seen][-100:]
    frames = [m.frame for m in muscle]
    assert np.all(np.diff(frames) > 0), "frames out of order"
    # an overloaded machine may skip frames to stay current, but never silently
    unpublished = frames[-1] - frames[0] + 1 - len(frames)
    assert all(m.fields["normalised"] and not m.fields["emg_missing"] for m in muscle[-30:])
    assert muscle[-1].fields["emg_from_video"].shape == (22,)
    last_expression = seen["expression"][-1].fields
    assert last_expression["phi_video"].shape == (55,) and last_expression["face_detected"] in (
        True,
        False,
    )
    assert any(e.fields["face_detected"] for e in seen["expression"][-30:]), "no face found"
    status = seen["status"][-1].fields
    assert status["backend"] == "onnxruntime"
    counted = status["frames"].get("dropped", 0) + status["frames"].get("skipped", 0)
    assert unpublished <= counted, f"{unpublished} frames missing, {counted} counted in status"
    assert seen["instruction"][-1].fields["text"]

    if not (Path(CHROMIUM).is_file() or shutil.which("chromium")):
        pytest.skip("Chromium not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function("() => (window.eiferStats.received.muscle || 0) > 30", timeout=30000)
        first = page.evaluate("() => window.eiferStats.received.muscle")
        # it keeps receiving (at 30 Hz when idle; a loaded machine may skip frames)
        page.wait_for_function(
            f"() => window.eiferStats.received.muscle >= {first + 10}", timeout=30000
        )
        artifacts = REPO / "artifacts" / "e2e"
        artifacts.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(artifacts / "demo_display.png"))
        browser.close()

    process.send_signal(signal.SIGINT)
    process.wait(30)
    deadline = time.monotonic() + 5  # the reader takes the last lines
    while "demo stopped" not in "".join(output) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.returncode == 0, "".join(output)
    assert re.search(r"demo stopped after \d+ frames", "".join(output))

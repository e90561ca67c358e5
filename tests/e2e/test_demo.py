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
import time
from pathlib import Path

import pytest

from nodes.display.headless import CHROMIUM, CHROMIUM_ARGS
from streaming.bus import Subscriber

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
    yield bus, protocol, port, process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.slow
@pytest.mark.browser
def test_demo_publishes_every_frame_with_models_and_the_page_shows_it(demo, tmp_path):
    bus, protocol, port, process = demo
    seen: dict[str, list] = {"muscle": [], "expression": [], "status": [], "instruction": []}
    with Subscriber([bus, protocol]) as subscriber:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (
            len(seen["muscle"]) < 150 or not seen["instruction"] or len(seen["expression"]) < 150
        ):
            message = subscriber.receive(0.5)
            if message is not None:
                seen[message.topic].append(message)
    assert process.poll() is None, process.stdout.read() if process.stdout else ""
    muscle = seen["muscle"][-100:]
    frames = [m.frame for m in muscle]
    assert frames == list(range(frames[0], frames[0] + 100)), "frames were dropped"
    assert all(m.fields["normalised"] and not m.fields["emg_missing"] for m in muscle[-30:])
    assert muscle[-1].fields["emg_from_video"].shape == (22,)
    last_expression = seen["expression"][-1].fields
    assert last_expression["phi_video"].shape == (55,) and last_expression["face_detected"] in (
        True,
        False,
    )
    assert any(e.fields["face_detected"] for e in seen["expression"][-30:]), "no face found"
    status = seen["status"][-1].fields
    assert status["backend"] == "onnxruntime" and status["frames"]["dropped"] == 0
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
        page.wait_for_timeout(2000)
        later = page.evaluate("() => window.eiferStats.received.muscle")
        assert later - first > 30, "the page stopped receiving"
        artifacts = REPO / "artifacts" / "e2e"
        artifacts.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(artifacts / "demo_display.png"))
        browser.close()

    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert re.search(r"demo stopped after \d+ frames", output)

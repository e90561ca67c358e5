"""The live face end to end: the synthetic participant camera and the EMG simulator (real nodes,
real LSL), the pipeline with a model bundle publishing ``face`` at 5 Hz, the display reading the
camera's ``VideoTruth``, and the page in headless Chromium showing the image, the box, the crop
and the true box."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from eifer_models.bundle import create_demo_bundle
from eifer_models.live import FramePredictor
from nodes.display.server import DisplayConfig, ServerThread
from simulation.emg import EmgSimulator
from streaming.bus.pubsub import Publisher, Subscriber
from streaming.config import validate
from streaming.pipeline.pipeline import Pipeline, PipelineConfig
from streaming.pipeline.profile import compute_profile

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _node(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "nodes.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_the_page_shows_the_pipelines_live_face_with_the_true_box(
    browser, unique_name: str, tmp_path: Path, artifacts: Path
) -> None:
    from nodes.emg import load_node_config

    simulator = EmgSimulator(load_node_config().simulator.model_copy(update={"seed": 1}))
    calibration, _ = simulator.generate(int(60 * simulator.rate_hz))
    profile = compute_profile(calibration, simulator.rate_hz, simulator.labels, "P1").save(
        tmp_path / "p.json"
    )
    bundle = create_demo_bundle(tmp_path / "bundle").path
    emg, cam = f"{unique_name}-emg", f"{unique_name}-cam"
    nodes = [
        _node("node", "emg", "--name", emg),
        _node(
            "node", "camera", "--source", "participant", "--name", cam, "--size", "640x360",
            "--set", f'participant.emg_stream="{emg}"',
        ),
    ]  # fmt: skip
    config = validate(
        PipelineConfig,
        {
            "emg": {"name": emg},
            "video": {"name": cam},
            "output": {"lsl_name": f"{unique_name}-EIFER", "face_preview_hz": 5.0},
            "models": {"bundle": str(bundle), "backend": "onnxruntime"},
            "profile": str(profile),
        },
    )
    publisher = Publisher("tcp://127.0.0.1:*")
    subscriber = Subscriber(publisher.address, ["face"])
    pipeline = Pipeline(
        config, models=FramePredictor.from_config(config.models), publisher=publisher
    )
    thread = threading.Thread(target=pipeline.run, daemon=True)
    display = ServerThread(
        DisplayConfig(
            bus_address=publisher.address, port=0, protocol_address="",
            video_truth=f"{cam}-truth", emg_truth=f"{emg}-truth",
        )
    )  # fmt: skip
    faces = []
    try:
        thread.start()
        url = display.start()
        page = browser.new_page(viewport={"width": 1600, "height": 1300})
        page.goto(url)
        deadline = time.monotonic() + 150
        while len(faces) < 25 and time.monotonic() < deadline:
            message = subscriber.receive(0.5)
            if message is not None:
                faces.append(message)
        page.wait_for_function(
            "() => window.eiferStats.face.drawn > 3 && window.eiferStats.face.box"
            " && window.eiferStats.face.crop && window.eiferStats.face.truth_box",
            timeout=60000,
        )
        time.sleep(2.0)  # the traces fill
        stats = page.evaluate("() => JSON.parse(JSON.stringify(window.eiferStats))")
        page.screenshot(path=str(artifacts / "display_face_pipeline.png"), full_page=True)
        health = display.call(display.server.health)
        status = pipeline.status()
        page.close()
    finally:
        display.stop()
        pipeline.stop()
        thread.join(10)
        for node in nodes:
            node.terminate()
            node.wait(10)
        subscriber.close()
        publisher.close()
    assert len(faces) >= 25, f"{len(faces)} face messages in 150 s"
    # ~5 per second of capture time: one per slot of a 0.2 s grid (a frame late for its slot,
    # e.g. after a skipped frame, can follow the previous preview closer than 0.2 s, but never
    # faster on average), and not starved by the frame loop
    t = np.array([m.t for m in faces[-20:]])
    dt = np.diff(t)
    assert dt.min() > 0 and t[-1] - t[0] >= (len(t) - 2) * 0.2 - 1e-6, dt
    assert np.median(dt) <= 0.5, dt
    f = faces[-1].fields
    assert f["source_size"] == [640, 360] and f["image_size"] == [320, 180]
    assert f["scale"] == pytest.approx(0.5)
    assert f["crop_size"] == [112, 112]
    boxes = [m.fields["face_box"] for m in faces[-10:] if m.fields["face_box"] is not None]
    assert boxes, "no face box in the last 10 face messages"
    assert health["truth"]["video"]["connected"] and health["invalid"] == 0
    # the detector's box and the true one, both scaled into the page's picture, overlap
    assert _iou(np.asarray(stats["face"]["box"]), np.asarray(stats["face"]["truth_box"])) > 0.3
    assert stats["face"]["truth_phi"] > 0 and stats["face"]["truth_activation"] > 0
    assert status["frames"]["face_previews"] >= 25
    assert "face_preview_cpu" in status["latency_ms"]

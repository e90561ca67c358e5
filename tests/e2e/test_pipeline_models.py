"""The pipeline with a model bundle loaded: every frame gets ``muscle`` and ``expression``, the
encoders see a face crop, EMG2Exp runs on the profile-normalised envelope."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np

from eifer_models.bundle import create_demo_bundle
from eifer_models.live import FramePredictor
from simulation.emg import EmgSimulator
from streaming.bus.pubsub import Publisher, Subscriber
from streaming.config import validate
from streaming.pipeline.pipeline import Pipeline, PipelineConfig
from streaming.pipeline.profile import compute_profile


def _node(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "nodes.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_every_frame_gets_muscle_and_expression_with_a_bundle_loaded(unique_name, tmp_path):
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
        _node("node", "camera", "--source", "synthetic", "--name", cam, "--size", "320x240"),
    ]
    config = validate(
        PipelineConfig,
        {
            "emg": {"name": emg},
            "video": {"name": cam},
            "output": {"lsl_name": f"{unique_name}-EIFER", "status_interval_s": 0.5},
            "models": {"bundle": str(bundle), "backend": "onnxruntime"},
            "profile": str(profile),
        },
    )
    publisher = Publisher("tcp://127.0.0.1:*")
    subscriber = Subscriber(publisher.address, ["muscle", "expression", "status"])
    pipeline = Pipeline(
        config, models=FramePredictor.from_config(config.models), publisher=publisher
    )
    thread = threading.Thread(target=pipeline.run, daemon=True)
    seen: dict[str, list] = {"muscle": [], "expression": [], "status": []}
    try:
        thread.start()
        deadline = time.monotonic() + 40
        while len(seen["expression"]) < 120 and time.monotonic() < deadline:
            message = subscriber.receive(0.5)
            if message is not None:
                seen[message.topic].append(message)
    finally:
        pipeline.stop()
        thread.join(10)
        for node in nodes:
            node.terminate()
            node.wait(10)
        subscriber.close()
        publisher.close()
    muscle = {m.frame: m for m in seen["muscle"]}
    expression = {m.frame: m for m in seen["expression"]}
    assert len(expression) >= 120 and set(expression) <= set(muscle), "a frame missed a topic"
    published = sorted(expression)
    unpublished = set(range(published[0], published[-1] + 1)) - set(published)
    # under load the pipeline skips stale frames to stay current: each one counted
    assert len(unpublished) <= pipeline.skipped, "a frame vanished without being counted"
    last = published[-60:]
    # the synthetic camera shows a real face: found by the detections (every few frames), its
    # box kept in between
    assert sum(expression[frame].fields["face_detected"] is True for frame in last) >= 10
    for frame in last:
        e, m = expression[frame].fields, muscle[frame].fields
        assert isinstance(e["face_detected"], bool) and e["phi_video"].shape == (55,)
        assert e["face_box"].shape == (4,) and np.isfinite(e["face_box"]).all()
        assert np.isfinite(e["phi_video"]).all() and np.isfinite(e["pose"]).all()
        assert np.isfinite(e["phi_emg"]).all() and np.abs(e["phi_emg"]).max() <= 1.0  # Tanh
        assert m["normalised"] and np.isfinite(m["emg_from_video"]).all()
        assert (m["emg_from_video"] >= 0).all() and np.isfinite(
            m["emg_from_video_uv"]
        ).all()  # ReLU
    status = seen["status"][-1].fields
    assert status["backend"] == "onnxruntime" and status["profile"] == "p.json"
    assert "model_encoders" in status["latency_ms"] and "model_emg2exp" in status["latency_ms"]
    assert not [e for e in status["errors"] if e.startswith("models")]

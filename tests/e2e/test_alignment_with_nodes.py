"""Simulator node -> pipeline -> subscriber, with the amplifier on another clock (a constant
offset) and USB-like chunk jitter injected by the EMG node: the EMG sample aligned with each frame
is within 1 ms of the truth once the known offset is configured."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np

from streaming.bus import Publisher, Subscriber
from streaming.config import validate
from streaming.lsl_io import StreamSelector, desc_to_dict, find_stream
from streaming.pipeline import Pipeline, PipelineConfig

OFFSET_S, JITTER_S, RATE_HZ = 0.25, 0.002, 4096.0


def _node(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "nodes.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_simulator_to_subscriber_alignment_within_1_ms(unique_name):
    emg, cam = f"{unique_name}-emg", f"{unique_name}-cam"
    nodes = [
        _node("node", "emg", "--name", emg, "--set", f"timing.clock_offset_s={OFFSET_S}",
              "--set", f"timing.jitter_s={JITTER_S}"),
        _node("node", "camera", "--source", "synthetic", "--name", cam, "--size", "160x120"),
    ]  # fmt: skip
    publisher = Publisher("tcp://127.0.0.1:*")
    subscriber = Subscriber(publisher.address, ["muscle"])
    try:
        t0 = float(desc_to_dict(find_stream(StreamSelector(name=emg), 20))["simulation"]["t0_lsl"])
        config = validate(
            PipelineConfig,
            {
                "emg": {"name": emg, "clock_offset_s": -OFFSET_S},
                "video": {"name": cam},
                "output": {"lsl_name": f"{unique_name}-EIFER"},
            },
        )
        pipeline = Pipeline(config, publisher=publisher)
        thread = threading.Thread(target=pipeline.run, daemon=True)
        thread.start()
        messages = []
        deadline = time.monotonic() + 40
        while len(messages) < 200 and time.monotonic() < deadline:
            message = subscriber.receive(0.5)
            if message is not None:
                messages.append(message)
        pipeline.stop()
        thread.join(10)
    finally:
        for node in nodes:
            node.terminate()
            node.wait(10)
        subscriber.close()
        publisher.close()
    assert len(messages) == 200
    frames = [m.frame for m in messages]
    assert frames == list(range(frames[0], frames[0] + 200)), "one muscle message per frame"
    assert np.all(np.diff([m.t for m in messages]) > 0)
    settled = [m for m in messages[-100:] if not m.fields["emg_missing"]]
    assert len(settled) == 100 and settled[-1].fields["emg_measured"].shape == (22,)
    k_aligned = np.array([m.fields["emg_sample_index"] for m in settled])
    k_true = (np.array([m.t for m in settled]) - t0) * RATE_HZ
    error_ms = 1e3 * np.abs(k_aligned - k_true) / RATE_HZ
    assert error_ms.max() < 1.0, f"alignment error up to {error_ms.max():.3f} ms"

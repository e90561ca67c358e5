"""EMG simulator node + camera node -> pipeline -> subscriber, checked against the simulator's
truth stream: the amplifier runs on another clock (a constant offset, configured) with USB-like
chunk jitter. In both alignment modes the EMG sample each message names is within 1 ms of the
moment it should describe: the frame's capture time plus the chain's delay ``D`` when aligning
(so, after the delay, the frame's own moment), the capture time in the ``latest`` mode (the
envelope then lags the frame by ``D``, as the message and ``status`` say). A frame whose EMG
came later than the bounded wait says ``emg_missing`` and is counted; the wait here is 5x the
default, so a loaded machine's late chunks still arrive within it, and at most a tenth of the
frames may go without."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np

from streaming.acquisition.lsl_io import StreamSelector, find_stream
from streaming.bus.pubsub import Publisher, Subscriber
from streaming.check.alignment import alignment_errors_ms
from streaming.check.truth import TruthRecorder, emg_truth_selector
from streaming.config import validate
from streaming.pipeline.features import get_feature
from streaming.pipeline.pipeline import Pipeline, PipelineConfig

OFFSET_S, JITTER_S, RATE_HZ = 0.25, 0.002, 4096.0
WAIT_MS = 500.0  # the pipeline's bounded wait for late EMG (default 100 ms)


def _node(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "nodes.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _run_pipeline(config: PipelineConfig, n: int) -> tuple[list, dict]:
    """``n`` consecutive muscle messages and the last status of a pipeline run."""
    publisher = Publisher("tcp://127.0.0.1:*")
    subscriber = Subscriber(publisher.address, ["muscle", "status"])
    pipeline = Pipeline(config, publisher=publisher)
    thread = threading.Thread(target=pipeline.run, daemon=True)
    thread.start()
    muscle: list = []
    status: dict = {}  # the first status after the n-th muscle message: it counts every skip
    try:
        deadline = time.monotonic() + 40
        while not status and time.monotonic() < deadline:
            message = subscriber.receive(0.5)
            if message is None:
                continue
            if message.topic == "muscle" and len(muscle) < n:
                muscle.append(message)
            elif message.topic == "status" and len(muscle) == n:
                status = message.fields
    finally:
        pipeline.stop()
        thread.join(10)
        subscriber.close()
        publisher.close()
    return muscle, status


def test_emg_and_video_in_step_within_1_ms_of_the_truth_in_both_modes(unique_name):
    emg, cam = f"{unique_name}-emg", f"{unique_name}-cam"
    nodes = [
        _node("node", "emg", "--name", emg, "--set", f"timing.clock_offset_s={OFFSET_S}",
              "--set", f"timing.jitter_s={JITTER_S}"),
        _node("node", "camera", "--source", "synthetic", "--name", cam, "--size", "160x120"),
    ]  # fmt: skip
    truth: TruthRecorder | None = None
    try:
        selector = emg_truth_selector(find_stream(StreamSelector(name=emg), 20))
        assert selector is not None, "the simulator names its truth stream"
        truth = TruthRecorder(selector, 10)
        runs = {}
        for align in ("delay", "latest"):
            config = validate(
                PipelineConfig,
                {
                    "emg": {"name": emg, "clock_offset_s": -OFFSET_S},
                    "video": {"name": cam},
                    "sync": {"align": align, "max_wait_ms": WAIT_MS},
                    "output": {"lsl_name": f"{unique_name}-EIFER-{align}"},
                },
            )
            runs[align] = _run_pipeline(config, 200)
        truth_t, truth_k = truth.column("sample_index")
    finally:
        if truth is not None:
            truth.stop()
        for node in nodes:
            node.terminate()
            node.wait(10)
    delay_ms = 1e3 * get_feature("low_latency").delay_s(RATE_HZ)
    for align, (messages, status) in runs.items():
        assert len(messages) == 200, align
        frames = [m.frame for m in messages]
        assert frames == sorted(set(frames)), "frames in order, each once"
        # a frame not published was skipped to stay current (a loaded machine), and counted
        unpublished = frames[-1] - frames[0] + 1 - len(frames)
        assert unpublished <= min(status["frames"]["skipped"], 10), (unpublished, status)
        assert np.all(np.diff([m.t for m in messages]) > 0)
        settled = [m for m in messages[-100:] if not m.fields["emg_missing"]]
        assert len(settled) >= 90 and settled[-1].fields["emg_measured"].shape == (22,)
        missing = sum(m.fields["emg_missing"] for m in messages)
        assert status["frames"]["emg_missing"] >= missing, "every frame without EMG is counted"
        offset_ms = delay_ms if align == "delay" else 0.0
        assert {m.fields["align"] for m in settled} == {align}
        np.testing.assert_allclose([m.fields["emg_read_offset_ms"] for m in settled], offset_ms)
        error_ms = alignment_errors_ms(settled, truth_t, truth_k)
        assert np.all(np.isfinite(error_ms)), "the truth covers every frame"
        assert np.abs(error_ms).max() < 1.0, f"{align}: error up to {np.abs(error_ms).max():.3f} ms"
        sync = status["sync"]
        assert sync["align"] == align
        assert abs(sync["emg_lag_ms"] - (delay_ms - offset_ms)) < 0.01, sync

"""The pipeline over real LSL streams and a real ZeroMQ bus: one message per frame, aligned EMG."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from streaming.bus import Message, Publisher, Subscriber
from streaming.config import validate
from streaming.pipeline import Pipeline, PipelineConfig

RATE_HZ = 4096.0


class Running:
    """A pipeline in a background thread, with a subscriber collecting what it publishes."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.publisher = Publisher("tcp://127.0.0.1:*")
        self.subscriber = Subscriber(self.publisher.address)
        self.pipeline = Pipeline(validate(PipelineConfig, config), publisher=self.publisher)
        self.thread = threading.Thread(target=self.pipeline.run, daemon=True)
        self.messages: list[Message] = []
        time.sleep(0.2)
        self.thread.start()

    def collect(self, topic: str, n: int, timeout_s: float = 20.0) -> list[Message]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and sum(m.topic == topic for m in self.messages) < n:
            message = self.subscriber.receive(0.2)
            if message is not None:
                self.messages.append(message)
        return [m for m in self.messages if m.topic == topic]

    def wait_status(self, check: Any, timeout_s: float = 15.0) -> dict[str, Any]:
        """The first status message (from now on) for which ``check(fields)`` holds."""
        deadline = time.monotonic() + timeout_s
        seen = len(self.collect("status", 0))
        while time.monotonic() < deadline:
            statuses = self.collect("status", seen + 1, timeout_s=2.0)
            for message in statuses[seen:]:
                if check(message.fields):
                    return message.fields
            seen = len(statuses)
        raise AssertionError(f"no status satisfied the check; last: {statuses[-1].fields}")

    def stop(self) -> None:
        self.pipeline.stop()
        self.thread.join(10)
        self.subscriber.close()
        self.publisher.close()


@pytest.fixture
def pipeline_with() -> Iterator[Any]:
    running: list[Running] = []

    def start(config: dict[str, Any]) -> Running:
        running.append(Running(config))
        return running[-1]

    yield start
    for r in running:
        r.stop()


def _config(emg: str, camera: str | None, **emg_extra: Any) -> dict[str, Any]:
    video = {"name": camera, "type": "Video"} if camera else {"enabled": False}
    return {
        "emg": {"name": emg, "type": "EMG", "reconnect_timeout_s": 1.0, **emg_extra},
        "video": video,
        "output": {"lsl_name": emg + "-EIFER", "status_interval_s": 0.5},
    }


def test_one_muscle_message_per_frame_with_22_channels_and_monotonic_times(
    spawn_node, unique_name, pipeline_with
):
    spawn_node("amplifier", name=unique_name + "-emg")
    spawn_node("camera", name=unique_name + "-cam")
    run = pipeline_with(_config(unique_name + "-emg", unique_name + "-cam"))
    muscle = run.collect("muscle", 60)
    assert len(muscle) >= 60
    frames = [m.frame for m in muscle]
    assert frames == list(range(frames[0], frames[0] + len(frames))), "a frame was not published"
    times = np.array([m.t for m in muscle])
    assert np.all(np.diff(times) > 0)
    np.testing.assert_allclose(np.diff(times), 1 / 30, atol=5e-3)
    last = muscle[-1].fields
    assert last["channels"] == [f"F{i + 1}" for i in range(22)]
    assert last["emg_measured"].shape == (22,) and not last["emg_missing"]
    # 100 uV sine at 130 Hz -> linear envelope 2A/pi = 63.66 uV (x band-pass gain ~1)
    np.testing.assert_allclose(last["emg_measured_uv"], 63.66, rtol=0.05)


def test_emg_sample_aligned_to_each_frame_is_within_1_ms_despite_offset_and_jitter(
    spawn_node, unique_name, pipeline_with
):
    offset_s, jitter_s = 0.250, 2e-3
    _, t0 = spawn_node("amplifier", name=unique_name + "-emg", offset_s=offset_s, jitter_s=jitter_s)
    spawn_node("camera", name=unique_name + "-cam")
    run = pipeline_with(
        _config(unique_name + "-emg", unique_name + "-cam", clock_offset_s=-offset_s)
    )
    muscle = run.collect("muscle", 150)[-90:]  # after the clock model settled (~2 s)
    k_aligned = np.array([m.fields["emg_sample_index"] for m in muscle])
    k_true = (np.array([m.t for m in muscle]) - t0.value) * RATE_HZ
    error_ms = 1e3 * np.abs(k_aligned - k_true) / RATE_HZ
    assert np.nanmax(error_ms) < 1.0, f"alignment error up to {np.nanmax(error_ms):.3f} ms"


def test_uncompensated_clock_offset_is_visible_as_misalignment(
    spawn_node, unique_name, pipeline_with
):
    _, t0 = spawn_node("amplifier", name=unique_name + "-emg", offset_s=-0.1)
    spawn_node("camera", name=unique_name + "-cam")
    run = pipeline_with(_config(unique_name + "-emg", unique_name + "-cam"))
    muscle = [m for m in run.collect("muscle", 60) if not m.fields["emg_missing"]][-20:]
    k_true = (np.array([m.t for m in muscle]) - t0.value) * RATE_HZ
    error_s = (np.array([m.fields["emg_sample_index"] for m in muscle]) - k_true) / RATE_HZ
    np.testing.assert_allclose(error_s, 0.1, atol=2e-3)


def test_dropped_camera_frames_are_counted_in_status(spawn_node, unique_name, pipeline_with):
    spawn_node("amplifier", name=unique_name + "-emg")
    # the camera skips 5 frames 6 s after it starts, when the pipeline runs for sure
    spawn_node("camera", name=unique_name + "-cam", skip=set(range(180, 185)))
    run = pipeline_with(_config(unique_name + "-emg", unique_name + "-cam"))
    status = run.wait_status(lambda s: s["frames"]["dropped"] >= 5, timeout_s=20)
    assert status["frames"]["dropped"] == 5 and status["frames"]["duplicates"] == 0
    assert status["streams"]["emg"]["connected"] and status["streams"]["video"]["connected"]
    assert status["latency_ms"]["capture_to_publish"]["p50"] > 0
    assert status["feature"] == "low_latency" and status["emg_group_delay_ms"] > 10


def test_frames_without_emg_are_published_marked_missing(spawn_node, unique_name, pipeline_with):
    spawn_node("camera", name=unique_name + "-cam")
    run = pipeline_with(
        {**_config(unique_name + "-absent", unique_name + "-cam"), "sync": {"max_wait_ms": 20}}
    )
    muscle = run.collect("muscle", 20)
    assert len(muscle) >= 20 and all(m.fields["emg_missing"] for m in muscle)
    status = run.wait_status(lambda s: s["streams"]["emg"]["error"])
    assert not status["streams"]["emg"]["connected"]
    assert "no LSL stream" in status["streams"]["emg"]["error"]
    assert status["frames"]["emg_missing"] >= 20


def test_pipeline_recovers_when_the_emg_stream_vanishes_and_returns(
    spawn_node, unique_name, pipeline_with
):
    stop_emg, _ = spawn_node("amplifier", name=unique_name + "-emg")
    spawn_node("camera", name=unique_name + "-cam")
    run = pipeline_with(
        {**_config(unique_name + "-emg", unique_name + "-cam"), "sync": {"max_wait_ms": 30}}
    )
    run.collect("muscle", 30)
    stop_emg.set()
    time.sleep(2.0)
    spawn_node("amplifier", name=unique_name + "-emg")
    n = len(run.collect("muscle", 0))
    muscle = run.collect("muscle", n + 150, timeout_s=30)
    missing = [m.fields["emg_missing"] for m in muscle]
    assert any(missing[30:]), "the outage was not flagged"
    assert not any(missing[-15:]), "EMG did not come back"
    frames = [m.frame for m in muscle]
    assert frames == list(range(frames[0], frames[0] + len(frames))), "frames lost during outage"


def test_wrong_channel_labels_are_reported_not_crashing(spawn_node, unique_name, pipeline_with):
    spawn_node("amplifier", name=unique_name + "-emg")
    run = pipeline_with(_config(unique_name + "-emg", None, channels=["F1", "Zyg-L"]))
    status = run.wait_status(lambda s: s["streams"]["emg"]["error"])
    assert "lacks channels ['Zyg-L']" in status["streams"]["emg"]["error"]
    assert run.collect("muscle", 5)[-1].fields["emg_missing"]


def test_without_a_camera_an_internal_clock_paces_frames(spawn_node, unique_name, pipeline_with):
    spawn_node("amplifier", name=unique_name + "-emg")
    run = pipeline_with(_config(unique_name + "-emg", None))
    run.wait_status(lambda s: s["streams"]["emg"]["connected"])
    muscle = run.collect("muscle", len(run.collect("muscle", 0)) + 45)[-45:]
    assert not any(m.fields["emg_missing"] for m in muscle)
    np.testing.assert_allclose(np.diff([m.t for m in muscle]), 1 / 30, atol=1e-6)

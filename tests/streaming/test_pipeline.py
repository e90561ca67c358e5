"""The pipeline over real LSL streams and a real ZeroMQ bus: one message per frame, aligned EMG."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from streaming.bus.pubsub import Message, Publisher, Subscriber
from streaming.config import validate
from streaming.pipeline.pipeline import Pipeline, PipelineConfig
from streaming.pipeline.predictions import FramePredictions, nan_predictions

RATE_HZ = 4096.0


class Running:
    """A pipeline in a background thread, with a subscriber collecting what it publishes."""

    def __init__(self, config: dict[str, Any], models: Any = None) -> None:
        self.publisher = Publisher("tcp://127.0.0.1:*")
        self.subscriber = Subscriber(self.publisher.address)
        self.pipeline = Pipeline(
            validate(PipelineConfig, config), models=models, publisher=self.publisher
        )
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

    def wait_message(self, topic: str, check: Any, timeout_s: float = 30.0) -> Message:
        """The first ``topic`` message, read from now on, for which ``check(message)`` holds."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = self.subscriber.receive(0.2)
            if message is None:
                continue
            self.messages.append(message)
            if message.topic == topic and check(message):
                return message
        raise AssertionError(f"no {topic} message satisfied the check within {timeout_s} s")

    def assert_every_frame_accounted_for(self) -> None:
        """Frames are published in order; each one not published was counted as skipped."""
        frames = [m.frame for m in self.messages if m.topic == "muscle"]
        assert frames == sorted(set(frames)), "frames out of order or twice"
        unpublished = set(range(frames[0], frames[-1] + 1)) - set(frames)
        assert len(unpublished) <= self.pipeline.skipped, "a frame vanished uncounted"

    def stop(self) -> None:
        self.pipeline.stop()
        self.thread.join(10)
        self.subscriber.close()
        self.publisher.close()


@pytest.fixture
def pipeline_with() -> Iterator[Any]:
    running: list[Running] = []

    def start(config: dict[str, Any], models: Any = None) -> Running:
        running.append(Running(config, models))
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
    run.assert_every_frame_accounted_for()
    frames, times = np.array([m.frame for m in muscle]), np.array([m.t for m in muscle])
    assert np.all(np.diff(times) > 0)
    np.testing.assert_allclose(np.diff(times), np.diff(frames) / 30, atol=5e-3)
    last = muscle[-1].fields
    assert last["channels"] == [f"F{i + 1}" for i in range(22)]
    assert last["emg_measured"].shape == (22,) and not last["emg_missing"]
    # 100 uV sine at 130 Hz -> linear envelope 2A/pi = 63.66 uV (x band-pass gain ~1)
    np.testing.assert_allclose(last["emg_measured_uv"], 63.66, rtol=0.05)


@pytest.mark.parametrize("align", ["delay", "latest"])
def test_emg_sample_aligned_to_each_frame_is_within_1_ms_despite_offset_and_jitter(
    spawn_node, unique_name, pipeline_with, align
):
    offset_s, jitter_s = 0.250, 2e-3
    _, t0 = spawn_node("amplifier", name=unique_name + "-emg", offset_s=offset_s, jitter_s=jitter_s)
    spawn_node("camera", name=unique_name + "-cam")
    config = _config(unique_name + "-emg", unique_name + "-cam", clock_offset_s=-offset_s)
    config["sync"] = {"align": align}
    # the video branch runs (overlapped with the EMG wait) on every frame
    run = pipeline_with(config, models=CountingModels())
    muscle = run.collect("muscle", 150)[-90:]  # after the clock model settled (~2 s)
    assert all(m.fields["align"] == align for m in muscle)
    assert (align == "latest") == all(m.fields["emg_read_offset_ms"] == 0 for m in muscle)
    k_aligned = np.array([m.fields["emg_sample_index"] for m in muscle])
    t_read = np.array([m.t + 1e-3 * m.fields["emg_read_offset_ms"] for m in muscle])
    k_true = (t_read - t0.value) * RATE_HZ  # at t + D (or t): the read time, from the truth
    error_ms = 1e3 * np.abs(k_aligned - k_true) / RATE_HZ
    assert np.nanmax(error_ms) < 1.0, f"alignment error up to {np.nanmax(error_ms):.3f} ms"
    run.assert_every_frame_accounted_for()


def test_uncompensated_clock_offset_is_visible_as_misalignment(
    spawn_node, unique_name, pipeline_with
):
    _, t0 = spawn_node("amplifier", name=unique_name + "-emg", offset_s=-0.1)
    spawn_node("camera", name=unique_name + "-cam")
    run = pipeline_with(_config(unique_name + "-emg", unique_name + "-cam"))
    muscle = [m for m in run.collect("muscle", 60) if not m.fields["emg_missing"]][-20:]
    k_true = np.array([m.t + 1e-3 * m.fields["emg_read_offset_ms"] for m in muscle]) - t0.value
    k_true *= RATE_HZ
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


def _stream_status_is_consistent(stream: dict[str, Any], stall_after_s: float = 1.0) -> None:
    """What every status must say of a stream that has sent nothing for a while."""
    if stream["age_s"] is not None and stream["age_s"] > stall_after_s + 0.1:
        assert not stream["connected"] and stream["rate_hz"] == 0, stream
        assert "no data for" in stream["error"], stream


def test_pipeline_recovers_when_the_emg_stream_vanishes_and_returns(
    spawn_node, unique_name, pipeline_with
):
    stop_emg, _ = spawn_node("amplifier", name=unique_name + "-emg")
    spawn_node("camera", name=unique_name + "-cam")
    run = pipeline_with(
        {**_config(unique_name + "-emg", unique_name + "-cam"), "sync": {"max_wait_ms": 30}}
    )
    before = run.wait_status(lambda s: (s["streams"]["emg"]["rate_hz"] or 0) > 1000, 30)
    assert before["streams"]["emg"]["reconnects"] == 0  # the first connection is no reconnect
    run.wait_message("muscle", lambda m: not m.fields["emg_missing"])
    stop_emg.set()
    # the outage is flagged on the frames and reported in status (rate gone, error names it)
    run.wait_message("muscle", lambda m: m.fields["emg_missing"])
    lost = run.wait_status(lambda s: not s["streams"]["emg"]["connected"], 30)["streams"]["emg"]
    assert lost["rate_hz"] == 0 and lost["outages"] == 1, lost
    assert "no data for" in lost["error"] and unique_name in lost["error"], lost
    spawn_node("amplifier", name=unique_name + "-emg")
    back = run.wait_status(lambda s: s["streams"]["emg"]["connected"], 60)["streams"]["emg"]
    assert back["reconnects"] == 1 and back["error"] == "", back
    run.wait_message("muscle", lambda m: not m.fields["emg_missing"])  # EMG on frames again
    for message in run.collect("status", 0):
        _stream_status_is_consistent(message.fields["streams"]["emg"])
    run.assert_every_frame_accounted_for()


def test_a_camera_outage_is_reported_not_counted_as_dropped_frames(
    spawn_node, unique_name, pipeline_with
):
    spawn_node("amplifier", name=unique_name + "-emg")
    stop_camera, _ = spawn_node("camera", name=unique_name + "-cam")
    run = pipeline_with(_config(unique_name + "-emg", unique_name + "-cam"))
    run.wait_status(lambda s: s["streams"]["video"]["connected"], 30)
    stop_camera.set()
    lost = run.wait_status(lambda s: not s["streams"]["video"]["connected"], 30)
    assert "no data for" in lost["streams"]["video"]["error"]
    time.sleep(1.0)  # a gap of 30+ frame periods
    spawn_node("camera", name=unique_name + "-cam")
    back = run.wait_status(lambda s: s["streams"]["video"]["reconnects"] >= 1, 60)
    assert back["streams"]["video"]["outages"] == 1 and back["streams"]["video"]["connected"]
    assert back["frames"]["dropped"] == 0, back["frames"]
    for message in run.collect("status", 0):
        _stream_status_is_consistent(message.fields["streams"]["video"])


def test_wrong_channel_labels_are_reported_not_crashing(spawn_node, unique_name, pipeline_with):
    spawn_node("amplifier", name=unique_name + "-emg")
    run = pipeline_with(_config(unique_name + "-emg", None, channels=["F1", "Zyg-L"]))
    status = run.wait_status(lambda s: s["streams"]["emg"]["error"])
    assert "lacks channels ['Zyg-L']" in status["streams"]["emg"]["error"]
    assert run.collect("muscle", 5)[-1].fields["emg_missing"]


def test_without_a_camera_an_internal_clock_paces_frames(spawn_node, unique_name, pipeline_with):
    spawn_node("amplifier", name=unique_name + "-emg")
    # a generous bounded wait: EMG late by up to 0.5 s (a loaded machine) still reaches its frame
    run = pipeline_with({**_config(unique_name + "-emg", None), "sync": {"max_wait_ms": 500}})
    run.wait_status(lambda s: s["streams"]["emg"]["connected"], 30)
    run.wait_message("muscle", lambda m: not m.fields["emg_missing"])
    muscle = run.collect("muscle", len(run.collect("muscle", 0)) + 45)[-45:]
    assert not any(m.fields["emg_missing"] for m in muscle)
    # frame k is due at t0 + k / 30 exactly: skipped frames leave gaps of whole periods
    t = np.array([m.t for m in muscle])
    k = np.array([m.frame for m in muscle])
    np.testing.assert_allclose(np.diff(t), np.diff(k) / 30, atol=1e-6)
    run.assert_every_frame_accounted_for()


def test_before_the_emg_connects_muscle_carries_the_configured_channels_as_nan(
    spawn_node, unique_name, pipeline_with
):
    spawn_node("camera", name=unique_name + "-cam")
    scheme = pipeline_with(_config(unique_name + "-absent", unique_name + "-cam"))
    explicit = pipeline_with(_config(unique_name + "-absent2", None, channels=["F3", "F1"]))
    for run, channels in ((scheme, [f"F{i + 1}" for i in range(22)]), (explicit, ["F3", "F1"])):
        fields = run.collect("muscle", 3)[-1].fields
        assert fields["emg_missing"] and fields["channels"] == channels
        for key in ("emg_measured", "emg_measured_uv"):
            assert fields[key].shape == (len(channels),) and np.isnan(fields[key]).all()


def _settled_envelope_uv(run: Running) -> np.ndarray:
    """The envelope of a frame 30 frames (1 s) after the EMG first reached one."""
    first = run.wait_message("muscle", lambda m: not m.fields["emg_missing"], 60)
    return run.wait_message(
        "muscle", lambda m: not m.fields["emg_missing"] and m.frame >= first.frame + 30
    ).fields["emg_measured_uv"]


@pytest.mark.parametrize(
    ("unit", "scale"), [("volts", 1e-6), ("millivolts", 1e-3), ("uV", 1.0), ("0", 1e-6)]
)
def test_the_declared_emg_unit_is_converted_to_microvolts(
    spawn_node, unique_name, pipeline_with, unit, scale
):
    spawn_node("amplifier", name=unique_name + "-emg", unit=unit, scale=scale)
    run = pipeline_with(_config(unique_name + "-emg", None))
    np.testing.assert_allclose(_settled_envelope_uv(run), 63.66, rtol=0.05)


def test_a_recording_played_by_mne_lsl_is_read_in_microvolts(
    spawn_node, unique_name, pipeline_with
):
    """MNE-LSL's PlayerLSL sends an MNE recording in volts and declares it its own way."""
    spawn_node("mne_player", name=unique_name + "-mne")
    config = _config(unique_name + "-mne", None)
    config["emg"]["type"] = "emg"  # PlayerLSL names the stream type after the channel type
    run = pipeline_with(config)
    np.testing.assert_allclose(_settled_envelope_uv(run), 63.66, rtol=0.05)


def test_an_unknown_emg_unit_is_refused_with_a_clear_error(spawn_node, unique_name, pipeline_with):
    spawn_node("amplifier", name=unique_name + "-emg", unit="furlongs")
    run = pipeline_with(_config(unique_name + "-emg", None))
    status = run.wait_status(lambda s: "furlongs" in s["streams"]["emg"]["error"], 30)
    assert "cannot convert to microvolts" in status["streams"]["emg"]["error"]
    assert all(m.fields["emg_missing"] for m in run.collect("muscle", 5))


class SlowModels:
    """A model stage that needs two frame periods per frame (a CPU shared with other work)."""

    backend = "slow-test-stage"
    feature = None
    normalisation = None
    expression_dim = 55

    def process(self, rgb: Any, envelope: Any, labels: list[str]) -> FramePredictions:
        time.sleep(2 / 30)
        return nan_predictions(self.expression_dim, len(labels), 300, self.backend)


class SlowSplitModels(SlowModels):
    """The same, split: its slow video branch runs while the EMG is awaited."""

    def process_video(self, rgb: Any, labels: list[str]) -> FramePredictions:
        return self.process(rgb, None, labels)

    def process_emg(self, video: FramePredictions, envelope: Any, labels: list[str]) -> Any:
        return video


class CountingModels:
    """A split model stage that records, for each frame, when its video branch ran and how many
    video branches had run when its EMG2Exp (after the join) ran."""

    backend = "counting-test-stage"
    feature = None
    normalisation = None
    expression_dim = 55

    def __init__(self) -> None:
        self.video_calls = 0
        self.video_calls_at_join: list[int] = []
        self.lock = threading.Lock()

    def process(self, rgb: Any, envelope: Any, labels: list[str]) -> FramePredictions:
        raise AssertionError("a split model stage is never run whole")

    def process_video(self, rgb: Any, labels: list[str]) -> FramePredictions:
        with self.lock:
            self.video_calls += 1
        return nan_predictions(self.expression_dim, len(labels), 300, self.backend)

    def process_emg(self, video: FramePredictions, envelope: Any, labels: list[str]) -> Any:
        with self.lock:
            self.video_calls_at_join.append(self.video_calls)
        return video


@pytest.mark.parametrize("models", [SlowModels, SlowSplitModels])
def test_under_overload_stale_frames_are_skipped_and_latency_stays_bounded(
    spawn_node, unique_name, pipeline_with, models
):
    spawn_node("amplifier", name=unique_name + "-emg")
    spawn_node("camera", name=unique_name + "-cam")
    run = pipeline_with(_config(unique_name + "-emg", unique_name + "-cam"), models=models())
    run.collect("muscle", 60, timeout_s=60)
    status = run.wait_status(lambda s: s["frames"]["skipped"] >= 30, 60)
    latency = status["latency_ms"]["capture_to_publish"]
    # backlogged, frames would wait in a queue of 30 (1 s) and more; current, a frame waits at
    # most sync.max_wait_ms + video.max_queue_ms (150 ms) plus one frame's work (67 ms)
    assert latency["p50"] < 400 and latency["p99"] < 600, latency
    assert status["frames"]["dropped"] == 0, status["frames"]
    run.assert_every_frame_accounted_for()


def test_the_video_branch_runs_while_the_join_waits_for_the_emg(
    spawn_node, unique_name, pipeline_with
):
    # no EMG stream and a 3 s bounded wait: a frame's join waits 3 s (90 frame periods), while
    # the video branch goes on with the next frames, up to its in-flight bound; frames keep
    # their order and each one not published is counted as skipped
    spawn_node("camera", name=unique_name + "-cam")
    config = _config(unique_name + "-emg-absent", unique_name + "-cam")
    config["sync"] = {"max_wait_ms": 3000.0}
    config["video"]["queue_frames"] = 10
    models = CountingModels()
    run = pipeline_with(config, models=models)
    muscle = run.collect("muscle", 3, timeout_s=30)
    assert len(muscle) >= 3 and all(m.fields["emg_missing"] for m in muscle)
    with models.lock:
        at_join = list(models.video_calls_at_join)
    # the first frame's video branch, then those of the frames behind it (the in-flight bound
    # of 10 plus the one each thread holds), all before the first join ended its 3 s wait
    assert at_join[0] >= 10, at_join
    status = run.wait_status(lambda s: s["frames"]["published"] >= 3, 20)
    assert status["overlap"] is True
    assert status["frames"]["in_flight"] <= 10
    assert {"video_to_join", "video_branch", "emg_branch"} <= set(status["latency_ms"])
    assert status["latency_ms"]["video_to_join"]["p50"] > 1000  # the video waited for the join
    run.assert_every_frame_accounted_for()


def test_with_the_emg_there_first_the_video_branch_joins_itself_keeping_the_order(
    spawn_node, unique_name, pipeline_with
):
    # align = "latest" and a 67 ms video branch: the envelope at t is there long before the video
    # result, so the video branch's thread joins most frames itself; the main thread joins the
    # rest; either way frames go out in order, once, and unpublished ones are counted
    spawn_node("amplifier", name=unique_name + "-emg")
    spawn_node("camera", name=unique_name + "-cam")
    config = _config(unique_name + "-emg", unique_name + "-cam")
    config["sync"] = {"align": "latest"}
    run = pipeline_with(config, models=SlowSplitModels())
    run.collect("muscle", 60, timeout_s=60)
    status = run.wait_status(lambda s: s["frames"]["joined_by_video_branch"] >= 10, 30)
    assert status["frames"]["published"] >= status["frames"]["joined_by_video_branch"]
    run.assert_every_frame_accounted_for()


def test_stream_health_counts_returns_and_reports_an_outage_when_read():
    from streaming.pipeline.health import StreamHealth

    health = StreamHealth(name="EMG", stall_after_s=0.05)
    health.on_data(32)
    health.on_data(32)
    assert health.connected and health.reconnects == 0  # the first connection is no reconnect
    time.sleep(0.1)  # nothing checked the stall since: reading the status judges it
    status = health.as_status()
    assert not status["connected"] and status["rate_hz"] == 0 and status["outages"] == 1
    assert "'EMG': no data for" in status["error"] and status["outage_s"] >= 0
    health.on_data(32)
    status = health.as_status()
    assert status["connected"] and status["reconnects"] == 1 and status["error"] == ""
    assert status["outage_s"] is None


def test_stale_frames_are_skipped_only_while_a_newer_one_waits():
    from collections import deque

    from streaming.pipeline.video_feed import Frame, _take_current, arrival_time

    queue = deque(Frame(t=k / 30, index=k, t_arrival=k / 30 + 0.01) for k in range(5))
    # at 0.15 s frames 0..2 have waited > 50 ms: skipped; frame 3 (waited 40 ms) is taken
    frame, skipped = _take_current(queue, 0.15, 0.05, arrival_time)
    assert (frame.index, skipped, len(queue)) == (3, 3, 1)
    # the last frame is never skipped, however old: there is nothing newer to show
    frame, skipped = _take_current(queue, 10.0, 0.05, arrival_time)
    assert (frame.index, skipped) == (4, 0)


def test_the_internal_clock_skips_ahead_instead_of_building_a_backlog():
    import pylsl

    from streaming.pipeline.video_feed import InternalFrameClock, arrival_time

    clock = InternalFrameClock(30.0, max_queue_ms=50.0)
    clock.start()
    first = clock.next_frame(1.0, arrival_time)
    time.sleep(0.5)  # a consumer that stalls for 15 frame periods
    called_at = pylsl.local_clock()
    late = clock.next_frame(1.0, arrival_time)
    assert first is not None and late is not None
    assert clock.skipped >= 10 and late.index == first.index + 1 + clock.skipped
    assert abs((late.t - first.t) - (late.index - first.index) / 30) < 1e-9
    assert called_at - late.t <= 0.05 + 1e-9  # current again: due at most max_queue_ms ago


def test_face_previews_show_the_frame_they_name_at_the_configured_rate(
    spawn_node, unique_name, pipeline_with
):
    import cv2

    from streaming.bus.schema import validate as validate_fields

    spawn_node("amplifier", name=unique_name + "-emg")
    spawn_node("camera", name=unique_name + "-cam")  # 32x24, pixel value = camera frame number
    config = _config(unique_name + "-emg", unique_name + "-cam")
    config["output"]["face_preview_hz"] = 5.0
    run = pipeline_with(config)
    faces = [validate_fields(m) for m in run.collect("face", 10, timeout_s=30)]
    assert len(faces) >= 10
    f = faces[-1].fields
    # no models: the camera image alone; a small frame is not upscaled
    assert f["image_size"] == [32, 24] and f["source_size"] == [32, 24] and f["scale"] == 1.0
    assert f["face_box"] is None and f["crop"] is None and f["face_detected"] is False
    times = np.array([m.t for m in faces])
    assert np.all(np.diff(times) >= 0.2 - 1 / 30 - 1e-3)  # at most 5 per second of capture time
    # each picture is the frame the message names: pixel values step with the frame numbers
    values = [
        int(np.round(cv2.imdecode(np.frombuffer(m.fields["image"], np.uint8), 0).mean()))
        for m in faces
    ]
    frames = [m.frame for m in faces]
    for k in range(1, len(faces)):
        step = (values[k] - values[k - 1]) % 256
        assert abs(step - (frames[k] - frames[k - 1]) % 256) <= 1 + run.pipeline.frames.dropped
    status = run.wait_status(lambda s: s["frames"]["face_previews"] >= 10)
    assert "face_preview_cpu" in status["latency_ms"]


def test_face_preview_off_publishes_no_face_topic(spawn_node, unique_name, pipeline_with):
    spawn_node("amplifier", name=unique_name + "-emg")
    spawn_node("camera", name=unique_name + "-cam")
    config = _config(unique_name + "-emg", unique_name + "-cam")
    config["output"]["face_preview_hz"] = 0.0
    run = pipeline_with(config)
    assert len(run.collect("muscle", 45)) >= 45
    assert run.collect("face", 0) == [] and run.pipeline.face_preview.offered == 0

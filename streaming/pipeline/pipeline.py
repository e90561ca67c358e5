"""The live pipeline: per camera frame, the EMG feature at the frame's time, models, publish.

A causal envelope lags its input by the feature chain's delay ``D`` (over the envelope's band,
:attr:`streaming.dsp.stages.Chain.band_delay_s`). With ``sync.align = "delay"`` (the default) the
pipeline reads the envelope at ``t + D`` for a frame captured at ``t``, so both halves of a message
describe the same moment (what the MLPs were trained on: zero-phase features), at the price of
``D`` more latency; ``sync.align = "latest"`` reads at ``t`` (lowest latency; the EMG then lags
the video by ``D``). Each ``muscle`` message says which (``align``, ``emg_read_offset_ms``).
Each frame goes through two branches that overlap (issue 20):

- the **video branch** (its own thread, from the moment the frame arrives): face crop, encoders,
  ``phi_video`` and Exp2EMG (``FrameModels.process_video``), which need no EMG. It takes frames
  from the feed in capture order and hands them to the join through a bounded in-flight queue
  (``video.queue_frames``; when it is full the video branch waits for room).
- the **join**, in the same order, by whichever side comes last (the thread that called
  :meth:`Pipeline.run`, or the video branch's own when the EMG was already there and no earlier
  frame is in flight: no thread hand-over then; counted as ``joined_by_video_branch``): it waits
  (bounded, from the capture time) until the envelope covers the read time, reads it there by
  interpolation (emg_processing.md 3.3), runs EMG2Exp on it (``FrameModels.process_emg``) and
  publishes one ``muscle`` message (and ``expression`` when models run).

So a frame's latency is the longer of the two branches, not their sum. One thread feeds the
join through one FIFO, and the video branch joins a frame itself only while none is in flight
and no join runs (one lock), so frames are published in capture order, each at most once; a
frame not published was counted as skipped. ``status`` reports the overlap: ``video_to_join``
(the video branch's result waiting for the EMG) and ``emg_to_join`` (the envelope at ``t + D``
waiting for the video branch). A model stage without ``process_video`` runs whole at the
join, as before. A frame whose EMG never comes is published with
``emg_missing = true``, never dropped (DESIGN.md); before the EMG stream was ever seen, the
message already carries the configured channels (NaN), so every consumer sees one shape. Under
overload whichever side is behind skips stale frames instead of building a backlog: the feed
those that waited ``video.max_queue_ms`` past their arrival, the join those that have been ready
(video branch done, EMG there or waited for) that long, each while a newer one waits; both count
as ``skipped``.
Twice a second a ``quality`` message gives each electrode's state and why, from the raw EMG
(:mod:`streaming.pipeline.quality_stage`, on its own thread; ``quality.enabled``), judged
against the movements the protocol's marker stream announces (``quality.markers_stream``).
A few times a second (``output.face_preview_hz``) a ``face`` message shows the camera image,
the face box and the crop the encoders read, encoded off the frame loop
(:mod:`streaming.pipeline.face_preview`). About once a second a ``status`` message reports stream
health, per-stage latency, drops and skips. Predictions also go out as the ``EIFER`` LSL stream, so
a recorder keeps them next to the raw data.

Past the house's ~450 lines on purpose: :class:`Pipeline` is one state machine (the frame
queue, the video thread, the wait for the EMG, publishing) whose parts share its locks and
counters; split into modules, each part would reach into the others' state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveFloat

from streaming.acquisition.lsl_io import ChunkOutlet, stream_info
from streaming.addresses import DEFAULT_ADDRESS, PublisherKeys
from streaming.bus.curve import CurveServer
from streaming.bus.pubsub import Publisher
from streaming.config import Config
from streaming.errors import EiferError
from streaming.pipeline.emg_feed import EmgFeed, EmgInputConfig
from streaming.pipeline.face_preview import FacePreview, PreviewJob
from streaming.pipeline.features import FeatureDefinition
from streaming.pipeline.health import LatencyStats
from streaming.pipeline.predictions import FramePredictions, nan_predictions
from streaming.pipeline.profile import Normalisation, Profile, check_normalisation
from streaming.pipeline.quality_stage import QualityOutlet, QualityStage, QualityStageConfig
from streaming.pipeline.video_feed import (
    Frame,
    InternalFrameClock,
    VideoFeed,
    VideoInputConfig,
)

__all__ = ["FrameModels", "InFlight", "Pipeline", "PipelineConfig", "SplitFrameModels"]

log = logging.getLogger(__name__)


Align = Literal["delay", "latest"]


class SyncConfig(Config):
    align: Align = Field(
        "delay",
        description="delay: read the envelope at t + D (EMG and video in step); latest: at t "
        "(lowest latency, EMG lags the video by D)",
    )
    max_wait_ms: NonNegativeFloat = Field(
        100.0, description="bounded wait for late EMG per frame, past its read time t (+ D)"
    )


class OutputConfig(Config):
    bus_address: str = DEFAULT_ADDRESS
    # CURVE: only subscribers whose keys are in bus_curve.clients read (README "Running across
    # computers"); off by default, as the bus binds loopback
    bus_curve: PublisherKeys = Field(default_factory=PublisherKeys)
    lsl_predictions: bool = True
    lsl_name: str = "EIFER"
    status_interval_s: PositiveFloat = 1.0
    face_preview_hz: NonNegativeFloat = Field(
        5.0, le=30.0, description="`face` messages (camera image, box, crop) per second; 0 = off"
    )
    face_preview_px: int = Field(320, ge=16, le=1280, description="longest side of its image")
    face_preview_crop_px: int = Field(112, ge=16, le=512, description="side of its crop")
    face_preview_quality: int = Field(80, ge=10, le=95, description="JPEG quality")


class ModelsConfig(Config):
    bundle: str = ""  # model bundle folder; "" = no models (EMG only)
    backend: str = "auto"  # auto | tensorrt | torch-cuda | onnxruntime


class PipelineConfig(Config):
    """Settings of ``eifer pipeline`` (``--config`` file, ``--set``; defaults here)."""

    emg: EmgInputConfig = Field(default_factory=EmgInputConfig)
    video: VideoInputConfig = Field(default_factory=VideoInputConfig)
    sync: SyncConfig = Field(default_factory=SyncConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    quality: QualityStageConfig = Field(default_factory=QualityStageConfig)
    profile: str = ""  # participant normalisation profile (JSON); "" = microvolts


class FrameModels(Protocol):
    """The model stage (e.g. ``eifer_models.live.FramePredictor``): per frame, pixels and the
    normalised envelope (channels named by ``labels``) in, that frame's predictions out.

    A stage that also has ``process_video(rgb, labels)`` (crop, encoders, Exp2EMG; ``phi_emg``
    NaN) and ``process_emg(video, envelope, labels)`` (EMG2Exp added to that result) has its video
    branch run while the EMG is awaited (:class:`SplitFrameModels`)."""

    backend: str
    feature: FeatureDefinition | None  # what the MLPs were trained on (None: the config's)
    normalisation: Normalisation | None  # the EMG method they were trained on (None: undeclared)
    expression_dim: int  # length of phi (55 for EIFER/SMIRK; a bundle property)

    def process(
        self, rgb: np.ndarray | None, envelope_normalised: np.ndarray | None, labels: list[str]
    ) -> FramePredictions: ...


class SplitFrameModels(FrameModels, Protocol):
    """A model stage split at the join: the video branch, then EMG2Exp once the EMG is there."""

    def process_video(self, rgb: np.ndarray | None, labels: list[str]) -> FramePredictions: ...

    def process_emg(
        self, video: FramePredictions, envelope_normalised: np.ndarray | None, labels: list[str]
    ) -> FramePredictions: ...


@dataclass
class InFlight:
    """A frame between its video branch and the join."""

    frame: Frame
    video: FramePredictions | None  # None: no models, or a model stage that runs whole at the join
    taken_perf: float  # perf_counter when the video branch took the frame
    video_ms: float  # the video branch's work
    video_done: float  # LSL time the video branch finished


class Pipeline:
    """Joins the EMG feed and the frame clock, runs the models, publishes every frame."""

    def __init__(
        self,
        config: PipelineConfig,
        models: FrameModels | None = None,
        publisher: Publisher | None = None,
    ) -> None:
        self.config = config
        self.latency = LatencyStats()
        bundle_feature = models.feature if models is not None else None
        if bundle_feature is not None and bundle_feature.name != config.emg.feature:
            log.info(
                "EMG feature %r from the model bundle (config says %r): models only work on "
                "the feature they were trained on",
                bundle_feature.name,
                config.emg.feature,
            )
        self.quality = (
            QualityStage(config.quality, config.emg.scheme, self.latency, emg_name=config.emg.name)
            if config.quality.enabled
            else None
        )
        self.quality_published = 0
        self._quality_outlet = (
            QualityOutlet(self.quality.quality_config.update_s)
            if self.quality is not None and config.quality.lsl_stream
            else None
        )
        self.emg = EmgFeed(config.emg, self.latency, feature=bundle_feature, quality=self.quality)
        self.frames: VideoFeed | InternalFrameClock = (
            VideoFeed(config.video)
            if config.video.enabled
            else InternalFrameClock(config.video.frame_rate_hz, config.video.max_queue_ms)
        )
        self.models = models
        self._split: SplitFrameModels | None = (
            models  # type: ignore[assignment]
            if hasattr(models, "process_video") and hasattr(models, "process_emg")
            else None
        )
        self.profile = Profile.load(config.profile) if config.profile else None
        if self.profile is not None and models is not None:  # a profile of another method: refused
            source = f"the model bundle {config.models.bundle}"
            check_normalisation(self.profile, models.normalisation, source)
        self.publisher = publisher or Publisher(
            config.output.bus_address, curve=CurveServer.from_keys(config.output.bus_curve)
        )
        self._own_publisher = publisher is None
        self.published = 0
        self.emg_missing = 0
        self.errors: deque[str] = deque(maxlen=10)
        self._stop = threading.Event()
        self._video_stop = threading.Event()
        self._video_error: BaseException | None = None
        self.skipped_at_join = 0  # in-flight frames skipped to stay current (the join behind)
        self.joined_by_video_branch = 0  # frames whose EMG was there when their video was done
        self._join_lock = threading.Lock()  # one join at a time, in order; guards the bus socket
        self._in_flight: deque[InFlight] = deque()
        self._in_flight_changed = threading.Condition()
        self._max_in_flight = config.video.queue_frames
        self._outlet: ChunkOutlet | None = None
        self._last_status = 0.0
        out = config.output
        self.face_preview = FacePreview(
            out.face_preview_hz if config.video.enabled else 0.0,
            out.face_preview_px,
            out.face_preview_crop_px,
            out.face_preview_quality,
        )

    @property
    def skipped(self) -> int:
        """Frames not published to stay current: stale in the feed (the video branch behind)
        or in flight (the join behind)."""
        return int(self.frames.skipped) + self.skipped_at_join

    # -- lifecycle --------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def run(
        self, max_frames: int | None = None, on_frame: Callable[[int], None] | None = None
    ) -> int:
        """Process frames until :meth:`stop` (or ``max_frames``); returns frames published."""
        if self.quality is not None:
            self.quality.start()
        self.emg.start()
        self.frames.start()
        self._video_stop.clear()
        video = threading.Thread(target=self._video_loop, name="eifer-video-branch", daemon=True)
        video.start()
        try:
            while not self._stop.is_set():
                if max_frames is not None and self.published >= max_frames:
                    break
                item = self._next_in_flight(timeout_s=0.2)  # holds the join lock if not None
                if item is not None:
                    try:
                        self._join(item)
                    finally:
                        self._join_lock.release()
                    if on_frame is not None:
                        on_frame(self.published)
                with self._join_lock:  # the bus socket is used by one thread at a time
                    self._publish_face_preview()
                    self._publish_quality()
                    self._maybe_status()
        finally:
            self._video_stop.set()
            video.join(5.0)
            self.face_preview.close()
            self.frames.stop()
            self.emg.stop()
            if self.quality is not None:
                self.quality.stop()
            if self._own_publisher:
                self.publisher.close()
            if self._outlet is not None:
                self._outlet.close()
            if self._quality_outlet is not None:
                self._quality_outlet.close()
        if self._video_error is not None:
            raise self._video_error
        return self.published

    # -- per frame ----------------------------------------------------------------------------
    @property
    def read_offset_s(self) -> float:
        """How long after a frame's capture time its envelope is read: ``D`` when aligning (once
        the EMG stream, hence its rate and ``D``, is known), else 0."""
        delay_s = self.emg.group_delay_s
        return delay_s if self.config.sync.align == "delay" and delay_s is not None else 0.0

    # -- the video branch -------------------------------------------------------------------
    def _video_loop(self) -> None:
        """The video thread: :meth:`_video_frames`; an unexpected error stops the pipeline and
        :meth:`run` raises it (as it would have raised it in a single thread)."""
        try:
            self._video_frames()
        except BaseException as exc:
            self._video_error = exc
            self._stop.set()

    def _video_frames(self) -> None:
        """Frames in capture order through the video branch, into the in-flight queue."""
        while not (self._stop.is_set() or self._video_stop.is_set()):
            frame = self.frames.next_frame(timeout_s=0.2)  # stale by arrival: skipped, counted
            if frame is None:
                continue
            item = self._video_branch(frame)
            with self._in_flight_changed:
                while len(self._in_flight) >= self._max_in_flight:  # the join is behind
                    if self._stop.is_set() or self._video_stop.is_set():
                        return
                    self._in_flight_changed.wait(0.1)
                # the side that comes last joins: with no earlier frame in flight and the EMG
                # already there (always so with align = "latest" and models), this thread joins
                # at once, saving a thread hand-over
                inline = (
                    not self._in_flight
                    and self.emg.covers(frame.t + self.read_offset_s)
                    and self._join_lock.acquire(blocking=False)
                )
                if not inline:
                    self._in_flight.append(item)
                    self._in_flight_changed.notify_all()
            if inline:
                try:
                    self._join(item)
                    self.joined_by_video_branch += 1
                finally:
                    self._join_lock.release()

    def _video_branch(self, frame: Frame) -> InFlight:
        import pylsl

        taken_perf = time.perf_counter()
        if frame.t_arrival is not None:  # camera + transport, then waiting for this thread
            self.latency.add("capture_to_arrival", 1e3 * (frame.t_arrival - frame.t))
            self.latency.add("frame_queue", 1e3 * (pylsl.local_clock() - frame.t_arrival))
        video, video_ms = None, 0.0
        if self._split is not None:
            t0 = time.perf_counter()
            try:
                video = self._split.process_video(frame.rgb, self.emg.labels)
            except EiferError as exc:  # a model stage that raises after all: NaN, and say why
                video = self._nan_predictions(str(exc))
            video_ms = 1e3 * (time.perf_counter() - t0)
            self.latency.add("video_branch", video_ms)
        return InFlight(frame, video, taken_perf, video_ms, pylsl.local_clock())

    def _next_in_flight(self, timeout_s: float) -> InFlight | None:
        """The oldest in-flight frame that is still current; older ones that have been ready
        (video branch done, EMG at ``t + D`` there or waited for) for more than
        ``video.max_queue_ms`` while a newer one waits are skipped, counted in ``skipped``."""
        import pylsl

        max_queue_s = self.config.video.max_queue_ms / 1e3
        with self._in_flight_changed:
            if not self._in_flight:
                self._in_flight_changed.wait(timeout_s)
            if not self._in_flight:
                return None
            now = pylsl.local_clock()
            while (
                len(self._in_flight) > 1 and now - self._ready_at(self._in_flight[0]) > max_queue_s
            ):
                self._in_flight.popleft()
                self.skipped_at_join += 1
            item = self._in_flight.popleft()
            self._in_flight_changed.notify_all()
            # taken before the queue's lock is let go: the video branch, which joins a frame
            # itself only when the queue is empty and this lock free, can never overtake it
            self._join_lock.acquire()
            return item

    def _ready_at(self, item: InFlight) -> float:
        """When an in-flight frame became ready to join: its video branch done and its EMG (at
        ``t + D``) arrived, or its bounded EMG wait over. Waiting longer than that makes it
        stale."""
        t_read = item.frame.t + self.read_offset_s
        if self.emg.covers(t_read):
            covered_at = self.emg.covered_at(t_read)
            return max(item.video_done, t_read if covered_at is None else covered_at)
        return max(item.video_done, t_read + self.config.sync.max_wait_ms / 1e3)

    # -- the join -----------------------------------------------------------------------------
    def _join(self, item: InFlight) -> None:
        import pylsl

        frame = item.frame
        t_start = time.perf_counter()
        # the wait is bounded from the capture time, so a pipeline that is behind (or an EMG
        # outage) never makes later frames wait longer
        read_offset_s = self.read_offset_s
        t_read = frame.t + read_offset_s
        wait_s = t_read + self.config.sync.max_wait_ms / 1e3 - pylsl.local_clock()
        covered = self.emg.wait_until(t_read, max(0.0, wait_s))
        joined = pylsl.local_clock()
        self.latency.add("emg_wait", 1e3 * (time.perf_counter() - t_start))
        self.latency.add("video_to_join", 1e3 * (joined - item.video_done))
        emg_ready = self.emg.covered_at(t_read) if covered else None
        if emg_ready is not None:
            self.latency.add("emg_to_join", 1e3 * max(0.0, joined - emg_ready))
        aligned = self.emg.envelope_at(t_read) if covered else None
        labels = self.emg.labels
        if aligned is None:
            self.emg_missing += 1
            envelope_uv = np.full(len(labels), np.nan, dtype=np.float32)
            sample_index = float("nan")
        else:
            envelope_uv = aligned[0].astype(np.float32)
            sample_index = aligned[1]
        normalised = self._normalise(envelope_uv, labels)
        muscle: dict[str, Any] = {
            "channels": labels,
            "emg_measured": normalised if normalised is not None else envelope_uv,
            "emg_measured_uv": envelope_uv,
            "normalised": normalised is not None,
            "emg_missing": aligned is None,
            "emg_sample_index": sample_index,
            "align": self.config.sync.align,
            "emg_read_offset_ms": 1e3 * read_offset_s,
        }
        expression: dict[str, Any] | None = None
        predictions: FramePredictions | None = None
        if self.models is not None:
            if normalised is None and aligned is not None:
                self._note_error("models: EMG2Exp needs normalised EMG: load a participant profile")
            envelope = None if aligned is None else normalised
            predictions = (
                self._predict(frame, envelope, labels)
                if item.video is None
                else self._predict_emg(item.video, item.video_ms, envelope, labels)
            )
            expression = {
                "phi_video": predictions.phi_video,
                "phi_emg": predictions.phi_emg,
                "pose": predictions.pose,
                "face_detected": predictions.face_detected,
                "face_box": predictions.face_box,
            }
            if predictions.face_detector:
                expression["face_detector"] = predictions.face_detector
            if predictions.landmarks is not None:
                expression["landmarks"] = predictions.landmarks
            muscle["emg_from_video"] = predictions.emg_from_video
            if self.profile is not None:
                muscle["emg_from_video_uv"] = self.profile.to_microvolts(
                    predictions.emg_from_video
                ).astype(np.float32)
        self.publisher.publish("muscle", muscle, t=frame.t, frame=frame.index)
        if expression is not None:
            self.publisher.publish("expression", expression, t=frame.t, frame=frame.index)
        self._push_lsl(frame, muscle, expression)
        self._offer_face_preview(frame, predictions)
        self.published += 1
        self.latency.add("pipeline", 1e3 * (time.perf_counter() - item.taken_perf))
        published_at = pylsl.local_clock()
        self.latency.add("capture_to_publish", 1e3 * (published_at - frame.t))
        if frame.t_arrival is not None:  # the part this pipeline controls
            self.latency.add("arrival_to_publish", 1e3 * (published_at - frame.t_arrival))

    def _predict(
        self, frame: Frame, envelope: np.ndarray | None, labels: list[str]
    ) -> FramePredictions:
        """The model stage's predictions; its problems go to ``errors``, never stop the frame."""
        assert self.models is not None
        t_models = time.perf_counter()
        try:
            predictions = self.models.process(frame.rgb, envelope, labels)
        except EiferError as exc:  # a model stage that raises after all: NaN, and say why
            predictions = nan_predictions(
                self.models.expression_dim, len(labels), 0, self.models.backend, (str(exc),)
            )
        for problem in predictions.errors:
            self._note_error(f"models: {problem}")
        self.latency.add("models", 1e3 * (time.perf_counter() - t_models))
        for stage, ms in predictions.latency_ms.items():
            self.latency.add(stage, ms)
        return predictions

    def _predict_emg(
        self,
        video: FramePredictions,
        video_ms: float,
        envelope: np.ndarray | None,
        labels: list[str],
    ) -> FramePredictions:
        """EMG2Exp after the join, completing the video branch's predictions."""
        assert self._split is not None
        t0 = time.perf_counter()
        try:
            predictions = self._split.process_emg(video, envelope, labels)
        except EiferError as exc:
            predictions = video
            self._note_error(f"models: {exc}")
        for problem in predictions.errors:
            self._note_error(f"models: {problem}")
        emg_ms = 1e3 * (time.perf_counter() - t0)
        self.latency.add("emg_branch", emg_ms)
        self.latency.add("models", video_ms + emg_ms)  # the model stage's work on this frame
        for stage, ms in predictions.latency_ms.items():
            self.latency.add(stage, ms)
        return predictions

    def _nan_predictions(self, error: str) -> FramePredictions:
        assert self.models is not None
        n = len(self.emg.labels)
        return nan_predictions(self.models.expression_dim, n, 0, self.models.backend, (error,))

    def _normalise(self, envelope_uv: np.ndarray, labels: list[str]) -> np.ndarray | None:
        if self.profile is None:
            return None
        try:
            self.profile.check_matches(labels, self.emg.feature.name)
        except Exception as exc:  # a mismatching profile must not stop the session
            self._note_error(str(exc))
            return None
        return self.profile.normalise(envelope_uv).astype(np.float32)

    # -- outputs ----------------------------------------------------------------------------
    def _offer_face_preview(self, frame: Frame, predictions: FramePredictions | None) -> None:
        """Hand a due frame to the preview worker (references only: the frame loop never waits
        for the JPEG encoding; ``streaming.pipeline.face_preview``)."""
        if frame.rgb is None or not self.face_preview.due(frame.t):
            return
        p = predictions
        self.face_preview.offer(
            PreviewJob(
                t=frame.t,
                frame=frame.index,
                rgb=frame.rgb,
                face_detected=bool(p.face_detected) if p is not None else False,
                face_box=p.face_box if p is not None else None,
                landmarks=p.landmarks if p is not None else None,
                crop=p.crop if p is not None else None,
            )
        )

    def _publish_face_preview(self) -> None:
        result = self.face_preview.take()
        if result is None:
            return
        self.latency.add("face_preview_cpu", result.encode_cpu_ms)
        self.publisher.publish("face", result.fields, t=result.t, frame=result.frame)

    def _publish_quality(self) -> None:
        if self.quality is None:
            return
        for report in self.quality.take():
            self.publisher.publish("quality", report.to_dict(), t=report.t_lsl)
            self.quality_published += 1
            if self._quality_outlet is not None:
                self._quality_outlet.push(report, self.emg.stream_name)

    def _prediction_layout(self, n_emg: int) -> list[str]:
        layout = [f"emg_measured_{i + 1}" for i in range(n_emg)] + ["emg_missing"]
        if self.models is not None:
            n_phi = self.models.expression_dim
            layout += [f"phi_video_{i}" for i in range(n_phi)]
            layout += [f"phi_emg_{i}" for i in range(n_phi)]
            layout += [f"pose_{i}" for i in range(6)] + [
                f"emg_from_video_{i + 1}" for i in range(n_emg)
            ]
        return layout

    def _push_lsl(
        self, frame: Frame, muscle: dict[str, Any], expression: dict[str, Any] | None
    ) -> None:
        if not self.config.output.lsl_predictions:
            return
        n_emg = len(muscle["channels"])
        if self._outlet is None:
            layout = self._prediction_layout(n_emg)
            info = stream_info(
                self.config.output.lsl_name,
                "EIFER",
                len(layout),
                self.frames.rate_hz,
                "float32",
                f"eifer-pipeline-{self.config.output.lsl_name}",
                channel_labels=layout,
                desc={
                    "emg_channels": muscle["channels"],
                    "feature": self.emg.feature.name,
                    "normalised": muscle["normalised"],
                },
            )
            self._outlet = ChunkOutlet(info, max_buffered_s=30)
        values = [muscle["emg_measured"], [float(muscle["emg_missing"])]]
        if self.models is not None:
            nan_phi = np.full(self.models.expression_dim, np.nan, np.float32)
            expression = expression or {}
            values += [
                expression.get("phi_video", nan_phi),
                expression.get("phi_emg", nan_phi),
                expression.get("pose", np.full(6, np.nan, np.float32)),
                muscle.get("emg_from_video", np.full(n_emg, np.nan, np.float32)),
            ]
        row = np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in values])
        if len(row) == self._outlet.channel_count:
            self._outlet.push(row[None, :], frame.t)

    def _note_error(self, text: str) -> None:
        if not self.errors or self.errors[-1] != text:
            self.errors.append(text)
            log.warning("%s", text)

    def status(self) -> dict[str, Any]:
        """The ``status`` message fields (also useful to callers and tests)."""
        streams = {
            "emg": self.emg.health.as_status(),
            "video": self.frames.health.as_status(),
        }
        for key, health in (("emg", self.emg.health), ("video", self.frames.health)):
            if health.last_error:
                self._note_error(f"{key}: {health.last_error}")
        if self.face_preview.last_error:
            self._note_error(self.face_preview.last_error)
        if self.quality is not None and self.quality.last_error:
            self._note_error(self.quality.last_error)
        return {
            "streams": streams,
            "latency_ms": self.latency.summary(),
            "frames": {
                "published": self.published,
                "dropped": int(self.frames.dropped),  # by the camera (gaps in its stamps)
                "skipped": self.skipped,  # by the pipeline, to stay current
                "skipped_at_join": self.skipped_at_join,
                "joined_by_video_branch": self.joined_by_video_branch,
                "in_flight": len(self._in_flight),  # past the video branch, awaiting the join
                "duplicates": int(self.frames.duplicates),
                "emg_missing": self.emg_missing,
                "face_previews": self.face_preview.offered,
                "face_previews_skipped": self.face_preview.busy_skipped,
                "quality_reports": self.quality_published,
                "quality_dropped": 0 if self.quality is None else self.quality.reports_dropped,
            },
            "backend": self.models.backend if self.models is not None else "none",
            "feature": self.emg.feature.name,
            "emg_group_delay_ms": None
            if self.emg.group_delay_s is None
            else round(1e3 * self.emg.group_delay_s, 2),
            "sync": self._sync_status(),
            "overlap": self._split is not None,  # video branch runs while the EMG is awaited
            "profile": Path(self.config.profile).name if self.config.profile else None,
            "errors": list(self.errors),
        }

    def _sync_status(self) -> dict[str, Any]:
        """How EMG and video are paired: the envelope is read ``emg_read_offset_ms`` after each
        frame's capture (the latency alignment adds) and lags the video by ``emg_lag_ms``."""
        delay_s = self.emg.group_delay_s
        offset_s = self.read_offset_s
        return {
            "align": self.config.sync.align,
            "emg_read_offset_ms": round(1e3 * offset_s, 3),
            "emg_lag_ms": None if delay_s is None else round(1e3 * (delay_s - offset_s), 3),
            "max_wait_ms": self.config.sync.max_wait_ms,
        }

    def _maybe_status(self) -> None:
        now = time.monotonic()
        if now - self._last_status >= self.config.output.status_interval_s:
            self._last_status = now
            import pylsl

            self.publisher.publish("status", self.status(), t=pylsl.local_clock())

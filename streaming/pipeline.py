"""The live pipeline: per camera frame, the EMG feature at the frame's time, models, publish.

A causal envelope lags its input by the feature chain's delay ``D`` (over the envelope's band,
:attr:`streaming.dsp.stages.Chain.band_delay_s`). With ``sync.align = "delay"`` (the default) the
pipeline reads the envelope at ``t + D`` for a frame captured at ``t``, so both halves of a message
describe the same moment (what the MLPs were trained on: zero-phase features), at the price of
``D`` more latency; ``sync.align = "latest"`` reads at ``t`` (lowest latency; the EMG then lags
the video by ``D``). Each ``muscle`` message says which (``align``, ``emg_read_offset_ms``).
The pipeline waits (bounded, from the capture time) until the envelope covers the read time,
reads it there by interpolation (emg_processing.md 3.3) and publishes one ``muscle``
message (and ``expression`` when models run). A frame whose EMG never comes is published with
``emg_missing = true``, never dropped (DESIGN.md); before the EMG stream was ever seen, the
message already carries the configured channels (NaN), so every consumer sees one shape. Under
overload the frame feed skips stale frames (counted as ``skipped``) instead of building a backlog.
A few times a second (``output.face_preview_hz``) a ``face`` message shows the camera image,
the face box and the crop the encoders read, encoded off the frame loop
(:mod:`streaming.face_preview`). About once a second a ``status`` message reports stream health, per-stage latency, drops and
skips. Predictions also go out as the ``EIFER`` LSL stream, so a recorder keeps them next to the
raw data.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveFloat

from streaming.bus import DEFAULT_ADDRESS, Publisher
from streaming.config import Config
from streaming.emg_feed import EmgFeed, EmgInputConfig
from streaming.errors import EiferError
from streaming.face_preview import FacePreview, PreviewJob
from streaming.features import FeatureDefinition
from streaming.health import LatencyStats
from streaming.lsl_io import ChunkOutlet, stream_info
from streaming.predictions import FramePredictions, nan_predictions
from streaming.profile import Profile, check_profile_for_bundle
from streaming.video_feed import (
    Frame,
    InternalFrameClock,
    VideoFeed,
    VideoInputConfig,
    arrival_time,
)

__all__ = ["FrameModels", "Pipeline", "PipelineConfig"]

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
    profile: str = ""  # participant normalisation profile (JSON); "" = microvolts


class FrameModels(Protocol):
    """The model stage (e.g. ``eifer_models.live.FramePredictor``): per frame, pixels and the
    normalised envelope (channels named by ``labels``) in, that frame's predictions out."""

    backend: str
    feature: FeatureDefinition | None  # what the MLPs were trained on (None: the config's)
    expression_dim: int  # length of phi (55 for EIFER/SMIRK; a bundle property)

    def process(
        self, rgb: np.ndarray | None, envelope_normalised: np.ndarray | None, labels: list[str]
    ) -> FramePredictions: ...


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
        self.emg = EmgFeed(config.emg, self.latency, feature=bundle_feature)
        self.frames: VideoFeed | InternalFrameClock = (
            VideoFeed(config.video)
            if config.video.enabled
            else InternalFrameClock(config.video.frame_rate_hz, config.video.max_queue_ms)
        )
        self.models = models
        self.profile = Profile.load(config.profile) if config.profile else None
        check_profile_for_bundle(self.profile, config.models.bundle if models else None)
        self.publisher = publisher or Publisher(config.output.bus_address)
        self._own_publisher = publisher is None
        self.published = 0
        self.emg_missing = 0
        self.errors: deque[str] = deque(maxlen=10)
        self._stop = threading.Event()
        self._outlet: ChunkOutlet | None = None
        self._last_status = 0.0
        out = config.output
        self.face_preview = FacePreview(
            out.face_preview_hz if config.video.enabled else 0.0,
            out.face_preview_px,
            out.face_preview_crop_px,
            out.face_preview_quality,
        )

    # -- lifecycle --------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def run(
        self, max_frames: int | None = None, on_frame: Callable[[int], None] | None = None
    ) -> int:
        """Process frames until :meth:`stop` (or ``max_frames``); returns frames published."""
        self.emg.start()
        self.frames.start()
        try:
            while not self._stop.is_set():
                if max_frames is not None and self.published >= max_frames:
                    break
                frame = self.frames.next_frame(timeout_s=0.2, ready_at=self._ready_at)
                if frame is not None:
                    self._process(frame)
                    if on_frame is not None:
                        on_frame(self.published)
                self._publish_face_preview()
                self._maybe_status()
        finally:
            self.face_preview.close()
            self.frames.stop()
            self.emg.stop()
            if self._own_publisher:
                self.publisher.close()
            if self._outlet is not None:
                self._outlet.close()
        return self.published

    # -- per frame ----------------------------------------------------------------------------
    @property
    def read_offset_s(self) -> float:
        """How long after a frame's capture time its envelope is read: ``D`` when aligning (once
        the EMG stream, hence its rate and ``D``, is known), else 0."""
        delay_s = self.emg.group_delay_s
        return delay_s if self.config.sync.align == "delay" and delay_s is not None else 0.0

    def _ready_at(self, frame: Frame) -> float:
        """When ``frame`` became ready to process: once it arrived and its EMG (at ``t + D``)
        arrived, else at the end of its bounded EMG wait. Waiting longer than that
        makes a frame stale."""
        arrived = arrival_time(frame)
        t_read = frame.t + self.read_offset_s
        if self.emg.covers(t_read):
            covered_at = self.emg.covered_at(t_read)
            return max(arrived, t_read if covered_at is None else covered_at)
        return max(arrived, t_read + self.config.sync.max_wait_ms / 1e3)

    def _process(self, frame: Frame) -> None:
        import pylsl

        t_start = time.perf_counter()
        if frame.t_arrival is not None:  # camera + transport, then waiting for this thread
            self.latency.add("capture_to_arrival", 1e3 * (frame.t_arrival - frame.t))
            self.latency.add("frame_queue", 1e3 * (pylsl.local_clock() - frame.t_arrival))
        # the wait is bounded from the capture time, so a pipeline that is behind (or an EMG
        # outage) never makes later frames wait longer
        read_offset_s = self.read_offset_s
        t_read = frame.t + read_offset_s
        wait_s = t_read + self.config.sync.max_wait_ms / 1e3 - pylsl.local_clock()
        covered = self.emg.wait_until(t_read, max(0.0, wait_s))
        self.latency.add("emg_wait", 1e3 * (time.perf_counter() - t_start))
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
            predictions = self._predict(frame, None if aligned is None else normalised, labels)
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
        self.latency.add("pipeline", 1e3 * (time.perf_counter() - t_start))
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
        for the JPEG encoding; ``streaming.face_preview``)."""
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
        return {
            "streams": streams,
            "latency_ms": self.latency.summary(),
            "frames": {
                "published": self.published,
                "dropped": int(self.frames.dropped),  # by the camera (gaps in its stamps)
                "skipped": int(self.frames.skipped),  # by the pipeline, to stay current
                "duplicates": int(self.frames.duplicates),
                "emg_missing": self.emg_missing,
                "face_previews": self.face_preview.offered,
                "face_previews_skipped": self.face_preview.busy_skipped,
            },
            "backend": self.models.backend if self.models is not None else "none",
            "feature": self.emg.feature.name,
            "emg_group_delay_ms": None
            if self.emg.group_delay_s is None
            else round(1e3 * self.emg.group_delay_s, 2),
            "sync": self._sync_status(),
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

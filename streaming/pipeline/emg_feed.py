"""The pipeline's EMG input: LSL inlet -> sample clock -> online feature chain -> envelope ring.

Runs in its own thread so that EMG keeps flowing while a frame is being processed. The stream is
(re)found by name/type/source id; when it vanishes the feed keeps retrying and reports it in the
health record, and when it returns the clock model and filters restart cleanly.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import deque
from typing import Any

import numpy as np
from pydantic import Field, PositiveFloat, field_validator

from streaming.acquisition.clock import LinearDejitter, SampleIndexer
from streaming.acquisition.electrodes import load_scheme
from streaming.acquisition.emg_units import channel_units, microvolts_per_unit, to_microvolts_scale
from streaming.acquisition.lsl_io import ChunkInlet, StreamSelector, channel_labels
from streaming.config import Config
from streaming.dsp.stages import Chain
from streaming.errors import StreamFormatError
from streaming.pipeline.features import FeatureDefinition, build_chain, get_feature
from streaming.pipeline.feed import ReconnectingFeed
from streaming.pipeline.health import LatencyStats
from streaming.pipeline.quality_stage import QualityStage
from streaming.pipeline.ringbuffer import TimeSeriesRing

__all__ = ["EmgFeed", "EmgInputConfig"]

log = logging.getLogger(__name__)

ARRIVALS_KEPT = 1024  # chunk arrivals remembered (>= 4 s of 32-sample chunks at 4096 Hz)


class EmgInputConfig(Config):
    """Which EMG stream to use and how to turn it into the model's feature."""

    name: str | None = "EMG"
    type: str | None = "EMG"
    source_id: str | None = None
    channels: list[str] = Field(
        default_factory=list, description="labels to use; [] = the scheme's channels"
    )
    scheme: str = Field(
        "fridlund",
        description="electrode scheme (name or .toml path) whose labels are the channels when "
        "`channels` is empty; '' = every channel the stream has (unknown until it connects)",
    )
    undeclared_unit: str = Field(
        "microvolts", description="unit assumed for channels whose stream declares none"
    )
    counter_label: str = "counter"
    feature: str = "low_latency"
    mains_hz: PositiveFloat = 50.0
    clock_offset_s: float = Field(0.0, description="known constant lag added to every stamp")
    dejitter_half_life_s: PositiveFloat = 10.0
    buffer_s: PositiveFloat = 10.0
    reconnect_timeout_s: PositiveFloat = 2.0
    stall_after_s: PositiveFloat = 1.0  # no data this long = an outage (reported in status)

    @field_validator("undeclared_unit")
    @classmethod
    def _known_unit(cls, unit: str) -> str:
        if microvolts_per_unit(unit) is None:
            raise ValueError(f"{unit!r} is not a voltage unit (volts, millivolts, microvolts)")
        return unit

    def selector(self) -> StreamSelector:
        return StreamSelector(self.name or None, self.type or None, self.source_id or None)

    def expected_channels(self) -> list[str]:
        """The channels every ``muscle`` message carries, known before the stream connects."""
        if self.channels:
            return list(self.channels)
        return load_scheme(self.scheme).labels if self.scheme else []


class EmgFeed(ReconnectingFeed):
    """Acquire, index, dejitter and filter EMG; the envelope is read by time from :attr:`ring`."""

    label = "EMG input"

    def __init__(
        self,
        config: EmgInputConfig,
        latency: LatencyStats | None = None,
        feature: FeatureDefinition | None = None,
        quality: QualityStage | None = None,
    ) -> None:
        """``feature`` (e.g. a model bundle's) takes precedence over ``config.feature``;
        ``quality`` gets every raw chunk (microvolts, before the envelope)."""
        self.config = config
        chosen = feature if feature is not None else get_feature(config.feature)
        self.feature: FeatureDefinition = chosen.with_mains_hz(config.mains_hz)
        super().__init__(
            config.selector(),
            config.reconnect_timeout_s,
            config.name or config.type or "EMG",
            stall_after_s=config.stall_after_s,
        )
        self.latency = latency or LatencyStats()
        self.expected_labels = config.expected_channels()
        self.labels: list[str] = list(self.expected_labels)
        self.quality = quality
        self.stream_name = config.name or config.type or "EMG"  # the connected stream's, later
        self.ring: TimeSeriesRing | None = None
        self.group_delay_s: float | None = None
        # (envelope covered up to t, LSL time that chunk arrived), for when a time was covered
        self._arrivals: deque[tuple[float, float]] = deque(maxlen=ARRIVALS_KEPT)

    # -- reading -------------------------------------------------------------------------------
    def wait_until(self, t: float, timeout_s: float) -> bool:
        """Block until the envelope covers time ``t`` (or ``timeout_s`` passes)."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                ring = self.ring
                latest = ring.latest_t if ring is not None else None
                if latest is not None and latest >= t:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    return False
                self._changed.wait(remaining)

    def covers(self, t: float) -> bool:
        """The envelope has arrived up to time ``t``."""
        ring = self.ring
        latest = ring.latest_t if ring is not None else None
        return latest is not None and latest >= t

    def covered_at(self, t: float) -> float | None:
        """LSL time at which the envelope came to cover ``t`` (None: not yet, or too long ago to
        remember); a frame waiting for its EMG became ready then, not when it arrived."""
        with self._changed:
            arrivals = list(self._arrivals)
        i = bisect.bisect_left([covered for covered, _ in arrivals], t)
        return arrivals[i][1] if i < len(arrivals) else None

    def envelope_at(self, t: float) -> tuple[np.ndarray, float] | None:
        """Envelope (per channel) and fractional EMG sample index at time ``t``, if covered."""
        ring = self.ring
        return None if ring is None else ring.interpolate(t)

    # -- acquisition ------------------------------------------------------------------------
    def _select(self, info: Any) -> tuple[np.ndarray, int | None, np.ndarray]:
        """Channel picks, the counter channel and each pick's factor to microvolts."""
        labels = channel_labels(info)
        counter = (
            labels.index(self.config.counter_label) if self.config.counter_label in labels else None
        )
        wanted = self.expected_labels or [label for i, label in enumerate(labels) if i != counter]
        missing = [label for label in wanted if label not in labels]
        if missing:
            raise StreamFormatError(
                f"EMG stream {info.name()!r} lacks channels {missing}; it has {labels}. "
                "Set emg.channels (or emg.scheme) to labels it has, or map them in the EMG "
                "node's bridge."
            )
        picks = np.array([labels.index(label) for label in wanted])
        units = channel_units(info)
        scale = to_microvolts_scale(
            [units[i] for i in picks], wanted, info.name(), self.config.undeclared_unit
        )
        if not np.all(scale == 1.0):
            log.info("EMG input: %r values converted to microvolts (x%g)", info.name(), scale[0])
        self.labels = list(wanted)
        return picks, counter, scale

    def _acquire(self, info: Any) -> None:
        rate_hz = info.nominal_srate()
        if rate_hz <= 0:
            raise StreamFormatError(
                f"EMG stream {info.name()!r} is irregular (nominal rate 0); EMG must be sampled "
                "at a fixed rate"
            )
        picks, counter, scale_uv = self._select(info)
        chain = build_chain(self.feature, len(picks), rate_hz)
        self.group_delay_s = chain.group_delay_s
        dejitter = LinearDejitter(rate_hz, self.config.dejitter_half_life_s)
        indexer = SampleIndexer(rate_hz)
        self.ring = TimeSeriesRing(int(self.config.buffer_s * rate_hz), len(picks))
        max_chunk = max(256, int(rate_hz * 0.5))
        self.stream_name = info.name()
        if self.quality is not None:
            self.quality.begin(self.labels, rate_hz, info)
        with ChunkInlet(info, max_buflen_s=self.config.buffer_s, max_chunk=max_chunk) as inlet:
            inlet.open(self.config.reconnect_timeout_s)
            log.info(
                "EMG input: %r, %d channels at %g Hz, feature %r (group delay %.1f ms)",
                info.name(),
                len(picks),
                rate_hz,
                self.feature.name,
                1e3 * chain.group_delay_s,
            )
            while not self._stop.is_set():
                data, stamps = inlet.pull(timeout_s=0.05)  # raises when the stream is lost
                if len(stamps) == 0:
                    self.health.check_stall()  # liblsl's recover=True keeps waiting silently
                    continue
                self._ingest(data, stamps, picks, counter, scale_uv, chain, dejitter, indexer)

    def _ingest(
        self,
        data: np.ndarray,
        stamps: np.ndarray,
        picks: np.ndarray,
        counter: int | None,
        scale_uv: np.ndarray,
        chain: Chain,
        dejitter: LinearDejitter,
        indexer: SampleIndexer,
    ) -> None:
        t0 = time.perf_counter()
        restarts = indexer.restarts
        indices = indexer.index(stamps, None if counter is None else data[:, counter])
        if indexer.restarts != restarts:  # the source restarted: a new clock and a new signal
            dejitter.reset()
            chain.reset()
            if self.ring is not None:
                self.ring.clear()
            if self.quality is not None:
                self.quality.restart()
            with self._changed:
                self._arrivals.clear()
        times = dejitter.update(indices, stamps) + self.config.clock_offset_s
        raw_uv = data[:, picks].astype(np.float64) * scale_uv
        envelope = chain.process(raw_uv)
        if self.quality is not None and len(times):
            self.quality.feed(raw_uv, float(times[-1]))
        if self.ring is not None:
            self.ring.append(times, envelope, indices)
        self.health.on_data(len(stamps))
        self.health.gaps, self.health.lost_samples = indexer.gaps, indexer.lost_samples
        self.health.bad_samples = int(chain.bad_samples)
        self.latency.add("emg_dsp", 1e3 * (time.perf_counter() - t0))
        import pylsl

        with self._changed:
            if len(times):
                self._arrivals.append((float(times[-1]), pylsl.local_clock()))
            self._changed.notify_all()

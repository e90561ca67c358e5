"""The pipeline's electrode-quality stage: the raw EMG the feed receives -> ``quality`` reports.

The EMG feed hands every raw chunk (microvolts, the channels it uses, before the envelope) to
:meth:`QualityStage.feed`, which only appends it to a list: the analysis
(:class:`streaming.dsp.quality.QualityMonitor`, one block per ``update_s`` = 0.5 s, a few ms for
22 channels) runs on this stage's own thread, woken once a block has gathered, so the envelope
(and every frame waiting for it) never waits for it. Finished reports wait in :meth:`take` for
the pipeline's publishing thread (the bus socket has one user at a time).

Set-up per stream connection (:meth:`begin`): neighbours from the electrode scheme's positions
(the ``neighbours`` nearest channels of the ones the stream carries), the amplifier's range from
the stream's ``desc/amplifier/range_uv`` where it declares one (else ``range_uv`` of the config,
else none: railing judged from repeated extremes), and each movement's per-channel level from
``configs/movements.toml`` and the scheme's muscles (:func:`movement_targets`).

Movements: the protocol's marker stream (``markers_stream``; :mod:`.quality_markers`) announces
each ``start:<movement>`` / ``stop:`` with its LSL stamp. :meth:`QualityStage.mark` queues it, and
the stage's thread converts the stamp into the monitor's sample index through the EMG feed's time
mapping: the dejittered LSL time of each chunk's last sample, as the feed hands it over, the
marker's sample being the first one stamped at or after it (``ceil((t - t_end) * rate)`` samples
after that chunk's last one). A marker is placed by the first chunk that reaches its time, so a
gap in the EMG does not shift it. With movements, only rest feeds the rest baseline and a channel
that stays near it in a movement driving its muscle is ``silent``; without a marker stream: the
lowest-activity windows are the baseline, and no ``silent`` check.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

import numpy as np
from pydantic import Field, PositiveFloat

from configs import config_path
from streaming.acquisition.electrodes import load_scheme
from streaming.acquisition.lsl_io import ChunkOutlet, stream_info
from streaming.acquisition.lsl_meta import desc_to_dict
from streaming.config import Config
from streaming.dsp.quality import (
    QualityMonitor,
    QualityReport,
    channel_targets,
    nearest_neighbours,
)
from streaming.dsp.quality_codes import STREAM_TYPE, encode_report, stream_channels, stream_desc
from streaming.dsp.quality_config import load_quality_config
from streaming.pipeline.biofeedback import load_movement_levels
from streaming.pipeline.health import LatencyStats
from streaming.pipeline.quality_markers import MarkerReader, marker_sample, markers_stream_name

__all__ = [
    "QualityOutlet",
    "QualityStage",
    "QualityStageConfig",
    "declared_range_uv",
    "movement_targets",
    "scheme_neighbours",
]

log = logging.getLogger(__name__)

REPORTS_KEPT = 20  # reports not yet published (10 s at 2 a second); older ones are dropped


class QualityStageConfig(Config):
    """``quality`` of the pipeline config: the per-channel electrode quality monitor."""

    enabled: bool = Field(
        True, description="publish the `quality` topic (eifer pipeline --no-quality)"
    )
    config: str = Field("", description="thresholds TOML; '' = the shipped configs/quality.toml")
    neighbours: int = Field(
        4, ge=0, le=16, description="nearest electrodes compared for noise and bridging; 0 = none"
    )
    range_uv: PositiveFloat | None = Field(
        None, description="amplifier range (+/- uV) where the stream declares none"
    )
    lsl_stream: bool = Field(
        True, description="also push the timeline as the LSL stream `<EMG name>-quality`"
    )
    markers_stream: str = Field(
        "auto",
        description="the protocol's LSL marker stream (start:/stop: movements); 'auto' = "
        "'Markers' + what follows 'EMG' in emg.name (EMG -> Markers, EMG-demo42 -> "
        "Markers-demo42); '' = none (rest baseline from the quietest windows, no silent check)",
    )
    markers_source_id: str = Field("", description="the marker stream's source id; '' = any")
    movements: str = Field(
        "", description="muscle levels per movement (TOML); '' = the shipped configs/movements.toml"
    )


def declared_range_uv(info: Any) -> float | None:
    """The range the stream declares in ``desc/amplifier/range_uv`` (microvolts), or None."""
    amplifier = desc_to_dict(info).get("amplifier")
    text = amplifier.get("range_uv") if isinstance(amplifier, dict) else None
    try:
        value = float(text) if text not in (None, "") else None
    except (TypeError, ValueError):
        log.warning("EMG stream declares amplifier/range_uv %r: not a number, ignored", text)
        return None
    return value if value is not None and np.isfinite(value) and value > 0 else None


def movement_targets(scheme: str, labels: list[str], movements: str = "") -> dict[str, np.ndarray]:
    """Per movement, the level (0..1) it drives each of ``labels``' muscles at (the ``scheme``'s
    muscle under each label; labels it does not place: 0), from ``movements`` (a movements TOML;
    '' = the shipped ``configs/movements.toml``); {} without a scheme."""
    if not scheme:
        return {}
    placed = load_scheme(scheme)
    muscle = dict(zip(placed.labels, placed.muscles, strict=True))
    levels = load_movement_levels(movements or config_path("movements.toml"))
    return channel_targets(levels, [muscle.get(label, "") for label in labels])


def scheme_neighbours(scheme: str, labels: list[str], k: int) -> dict[str, list[str]]:
    """Each of ``labels``' ``k`` nearest channels on the face, among ``labels`` that the electrode
    ``scheme`` places ('' or no placed label: none)."""
    if not scheme or k == 0:
        return {}
    placed = load_scheme(scheme)
    known = [label for label in labels if label in placed.labels]
    if len(known) < 2:
        return {}
    positions = placed.positions[[placed.index(label) for label in known]]
    return nearest_neighbours(known, positions, k=k)


class QualityStage:
    """Runs the quality monitor on the EMG feed's raw chunks on its own thread."""

    def __init__(
        self,
        config: QualityStageConfig,
        scheme: str,
        latency: LatencyStats | None = None,
        emg_name: str | None = None,
    ) -> None:
        """``emg_name``: the EMG stream's configured name (for ``markers_stream = "auto"``)."""
        self.config = config
        self.quality_config = (
            load_quality_config(config.config) if config.config else load_quality_config()
        )
        self.scheme = scheme
        self.latency = latency or LatencyStats()
        self.monitor: QualityMonitor | None = None
        self.reports_dropped = 0  # not taken in time (the publisher behind)
        self.last_error: str | None = None
        self._pending: list[tuple[np.ndarray, float]] = []
        self._pending_n = 0
        self._need = 1  # samples that complete the monitor's next block (wake-up threshold)
        self._reset = False  # the source restarted: reset the monitor before the next chunk
        self._reports: deque[QualityReport] = deque(maxlen=REPORTS_KEPT)
        self._markers: list[tuple[float, str | None]] = []  # (t_lsl, movement) not yet placed
        self._movement: str | None = None  # the last movement placed
        self._any_marker = False
        self.movements_placed = 0
        name = markers_stream_name(config.markers_stream, emg_name)
        self.markers = (
            MarkerReader(name, config.markers_source_id, self.mark) if name is not None else None
        )
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the EMG feed's side ---------------------------------------------------------------------
    def begin(self, labels: list[str], rate_hz: float, info: Any = None) -> None:
        """A (new) stream connection: a fresh monitor for its channels and rate."""
        range_uv = (declared_range_uv(info) if info is not None else None) or self.config.range_uv
        monitor = QualityMonitor(
            labels,
            rate_hz,
            self.quality_config,
            neighbours=scheme_neighbours(self.scheme, labels, self.config.neighbours),
            range_uv=range_uv,
            channel_targets=movement_targets(self.scheme, labels, self.config.movements),
        )
        with self._lock:
            self.monitor = monitor
            if self._any_marker:  # the movement going on when the stream (re)connected
                monitor.set_movement(self._movement, 0)
            self._pending, self._pending_n = [], 0
            self._need, self._reset = monitor.samples_to_next_report, False
        log.info(
            "electrode quality: %d channels, range %s, neighbours from %r",
            len(labels),
            "undeclared" if range_uv is None else f"+/-{range_uv:g} uV",
            self.scheme or "none",
        )

    def restart(self) -> None:
        """The source restarted (a new signal): forget what the monitor saw."""
        with self._lock:
            self._pending, self._pending_n = [], 0
            self._reset = True
            self._lock.notify()

    def feed(self, chunk_uv: np.ndarray, t_lsl_end: float) -> None:
        """Queue a raw chunk ``(n, channels)`` whose last sample was at ``t_lsl_end``; wakes the
        thread once a whole block has gathered."""
        if self.monitor is None or chunk_uv.shape[0] == 0:
            return
        with self._lock:
            self._pending.append((chunk_uv, float(t_lsl_end)))
            self._pending_n += chunk_uv.shape[0]
            if self._pending_n >= self._need:
                self._lock.notify()

    def mark(self, t_lsl: float, movement: str | None) -> None:
        """The protocol's movement (None: rest) from LSL time ``t_lsl`` on (the marker reader's
        callback); placed on the EMG's samples by the chunk that reaches ``t_lsl``."""
        with self._lock:
            self._markers.append((float(t_lsl), movement))

    def _place_markers(self, monitor: QualityMonitor, n: int, t_end: float) -> None:
        """Announce the queued movements stamped up to ``t_end``, the time of the last of the
        ``n`` samples about to be fed: the first sample at or after each stamp (a stamp before
        the monitor's data: sample 0)."""
        with self._lock:
            self._markers.sort(key=lambda m: m[0])
            due = [m for m in self._markers if m[0] <= t_end]
            self._markers = self._markers[len(due) :]
        fed = monitor.sample_index + monitor.block_n - monitor.samples_to_next_report
        last = fed + n - 1  # the monitor's index of the chunk's last sample
        for t, movement in due:
            monitor.set_movement(movement, marker_sample(t, t_end, last, monitor.rate_hz))
            self._movement, self._any_marker = movement, True
            self.movements_placed += 1

    # -- the publisher's side --------------------------------------------------------------------
    def take(self) -> list[QualityReport]:
        """Reports finished since the last call, oldest first."""
        with self._lock:
            out = list(self._reports)
            self._reports.clear()
        return out

    # -- its thread ------------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="eifer-quality", daemon=True)
        self._thread.start()
        if self.markers is not None:
            self.markers.start()

    def stop(self) -> None:
        if self.markers is not None:
            self.markers.stop()
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(5.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if self._pending_n < self._need and not self._reset:
                    self._lock.wait(0.25)
                monitor, chunks, reset = self.monitor, self._pending, self._reset
                self._pending, self._pending_n, self._reset = [], 0, False
            if monitor is None:
                continue
            if reset:
                monitor.reset()
                if self._any_marker:
                    monitor.set_movement(self._movement, 0)
            t0 = time.perf_counter()
            try:
                reports = []
                for chunk, t in chunks:
                    self._place_markers(monitor, chunk.shape[0], t)
                    reports += monitor.process_all(chunk, t)
            except Exception as exc:  # a monitor error must not stop the pipeline: say it
                self.last_error = f"quality: {exc}"
                log.warning("%s", self.last_error)
                reports = []
            if reports:
                self.latency.add("quality_cpu", 1e3 * (time.perf_counter() - t0) / len(reports))
            with self._lock:
                if monitor is not self.monitor:  # a new stream meanwhile: these are stale
                    continue
                self._need = monitor.samples_to_next_report
                overflow = len(self._reports) + len(reports) - REPORTS_KEPT
                self.reports_dropped += max(0, overflow)
                self._reports.extend(reports)


class QualityOutlet:
    """The timeline as the irregular LSL stream ``<EMG name>-quality`` (type ``EMGQuality``; layout:
    :mod:`streaming.dsp.quality_codes`), one sample per report at the report's time, so that a
    recorder keeps it beside the EMG. A new channel list (another EMG stream) opens a new outlet."""

    def __init__(self, update_s: float) -> None:
        self.update_s = update_s
        self._outlet: ChunkOutlet | None = None
        self._key: tuple[str, tuple[str, ...]] | None = None

    def push(self, report: QualityReport, of_stream: str) -> None:
        key = (of_stream, report.channels)
        if key != self._key:
            self.close()
            labels = list(report.channels)
            name = f"{of_stream}-quality"
            info = stream_info(
                name,
                STREAM_TYPE,
                3 * len(labels),
                0.0,  # irregular: a report per block of EMG received (none in an outage)
                "float32",
                f"eifer-pipeline-{name}",
                channel_labels=stream_channels(labels),
                channel_type=["state"] * len(labels) + ["misc"] * (2 * len(labels)),
                desc=stream_desc(of_stream, labels, self.update_s),
            )
            self._outlet, self._key = ChunkOutlet(info, max_buffered_s=360), key
        assert self._outlet is not None
        self._outlet.push(encode_report(report)[None, :], report.t_lsl)

    def close(self) -> None:
        if self._outlet is not None:
            self._outlet.close()
        self._outlet, self._key = None, None

"""The protocol's movements for the electrode-quality monitor: the ``Markers`` LSL stream, read live.

The protocol node (``eifer node protocol``) sends ``start:<movement>:<rep>`` and
``stop:<movement>:<rep>`` around each perform phase and ``protocol:end`` / ``protocol:abort`` at
the end (grammar: :mod:`streaming.acquisition.markers`). :class:`MarkerReader` follows that
stream on its own thread (found again when it goes and comes back; absent: it keeps looking,
quietly, and the monitor works as without markers) and hands each movement change with its LSL
stamp (this machine's clock, liblsl's clock correction) to a callback: ``(t_lsl, movement)``,
``movement`` None for rest. The quality stage turns the stamp into an EMG sample index
(:meth:`streaming.pipeline.quality_stage.QualityStage.mark`).

Which stream: ``quality.markers_stream`` of the pipeline config; ``"auto"`` derives it from the
EMG stream's name the way the shipped sessions name them (:func:`markers_stream_name`).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable

from streaming.acquisition.lsl_io import ChunkInlet, StreamSelector, find_stream
from streaming.acquisition.markers import ends_protocol, parse_trial_marker
from streaming.errors import EiferError

__all__ = ["MarkerReader", "marker_movement", "marker_sample", "markers_stream_name"]

log = logging.getLogger(__name__)


def markers_stream_name(setting: str, emg_name: str | None) -> str | None:
    """The marker stream to follow: ``setting`` itself, or for ``"auto"`` ``Markers`` plus what
    follows ``EMG`` in the EMG stream's name (the lab's ``EMG`` -> ``Markers``, the demo's
    ``EMG-demo42`` -> ``Markers-demo42``; a name not starting with ``EMG``: ``Markers``);
    ``""``: none (no movements announced)."""
    if setting != "auto":
        return setting or None
    name = emg_name or "EMG"
    return "Markers" + (name[3:] if name.startswith("EMG") else "")


def marker_movement(text: str) -> tuple[bool, str | None]:
    """``(changes, movement)`` for one marker: ``start:<m>:<rep>`` -> ``(True, m)``; ``stop:...``,
    ``protocol:end`` / ``protocol:abort`` -> ``(True, None)``; anything else ``(False, None)``."""
    parsed = parse_trial_marker(text)
    if parsed is not None and parsed.kind == "start":
        return True, parsed.movement
    if (parsed is not None and parsed.kind == "stop") or ends_protocol(text):
        return True, None
    return False, None


def marker_sample(t_lsl: float, t_end: float, last_index: int, rate_hz: float) -> int:
    """The index of the first sample stamped at or after ``t_lsl``, from one chunk's mapping: its
    last sample ``last_index`` at ``t_end`` (samples 1 / ``rate_hz`` apart); never below 0."""
    ahead = math.ceil(round((t_lsl - t_end) * rate_hz, 6))  # round: 1e-12 s of float noise
    return max(0, last_index + ahead)


OPEN_TIMEOUT_S = 5.0  # a found stream's inlet: a loaded machine can take seconds


class MarkerReader:
    """Follows a ``Markers`` stream on a thread; ``on_movement(t_lsl, movement)`` per change."""

    def __init__(
        self,
        name: str,
        source_id: str | None,
        on_movement: Callable[[float, str | None], None],
        retry_s: float = 0.5,  # also bounds how long stop() waits for a search under way
    ) -> None:
        self.selector = StreamSelector(name=name, type="Markers", source_id=source_id or None)
        self.on_movement = on_movement
        self.retry_s = retry_s
        self.connected = False
        self.markers_received = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="eifer-quality-markers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                info = find_stream(self.selector, timeout_s=self.retry_s)
            except EiferError as exc:  # no protocol running: the monitor goes without movements
                log.debug("quality markers: %s", exc)
                self._stop.wait(0.5)
                continue
            log.info("electrode quality: movements from the markers of %r", info.name())
            try:
                with ChunkInlet(info, clock_sync=True, recover=False, max_chunk=256) as inlet:
                    inlet.open(OPEN_TIMEOUT_S)
                    self.connected = True
                    while not self._stop.is_set():
                        rows, stamps = inlet.pull(timeout_s=0.2)
                        for row, t in zip(rows, stamps, strict=True):
                            self.markers_received += 1
                            changes, movement = marker_movement(str(row[0]))
                            if changes:
                                self.on_movement(float(t), movement)
            except EiferError as exc:
                log.info("quality markers: %s; looking for the stream again", exc)
            finally:
                self.connected = False

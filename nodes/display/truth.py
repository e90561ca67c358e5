"""The truth beside the live data, where the source has one: the synthetic participant's
``VideoTruth`` and the EMG simulator's ``EMGTruth`` (README "Contract additions"), read by the
display from LSL.

Why here and not forwarded by the pipeline: the pipeline is the system under test and what a lab
runs; the truth is the judge's (``eifer check`` reads it from LSL too). Keeping it out of the
pipeline keeps the bus contract the same for every setup, and the pipeline cannot depend on
what no lab has. A lab names no truth streams (the default), so the display there works unchanged.
The cost is pairing: the display finds a truth row by the message's ``t``, which is the frame's
capture stamp in this machine's LSL clock, the same stamp the camera gives its truth row.

Each stream is resolved in a thread (retried every few seconds until it appears, again after it
is lost), and only the last ``keep_s`` seconds are kept.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

import numpy as np

from streaming.acquisition.lsl_io import ChunkInlet, StreamSelector, channel_labels, find_stream
from streaming.errors import EiferError

__all__ = ["TruthStream", "TruthView"]

log = logging.getLogger(__name__)


class TruthStream:
    """Rows of one truth stream, newest last, with their LSL stamps (this machine's clock)."""

    def __init__(self, name: str, keep_s: float = 20.0, retry_s: float = 2.0) -> None:
        self.name = name
        self.keep_s, self.retry_s = keep_s, retry_s
        self.labels: list[str] = []
        self.connected = False
        self.error: str | None = None
        self._stamps: deque[float] = deque()
        self._rows: deque[np.ndarray] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"truth-{name}", daemon=True)

    def start(self) -> TruthStream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(3.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                info = find_stream(StreamSelector(name=self.name), timeout_s=self.retry_s)
                self.labels = channel_labels(info)
                with ChunkInlet(info, max_buflen_s=5, max_chunk=256) as inlet:
                    inlet.open(self.retry_s)
                    self.connected, self.error = True, None
                    log.info("display: truth stream %r (%d columns)", self.name, len(self.labels))
                    while not self._stop.is_set():
                        rows, stamps = inlet.pull(timeout_s=0.1)
                        if len(stamps):
                            self._add(np.asarray(rows, np.float64), stamps)
            except EiferError as exc:
                self.error = str(exc)
            except Exception as exc:  # a bad stream must not end the display's truth for good
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("display: truth stream %r: %s", self.name, self.error)
            self.connected = False
            self._stop.wait(self.retry_s if self.error else 0.0)

    def _add(self, rows: np.ndarray, stamps: np.ndarray) -> None:
        with self._lock:
            for row, t in zip(rows, stamps, strict=True):
                self._rows.append(row)
                self._stamps.append(float(t))
            newest = self._stamps[-1]
            while self._stamps and self._stamps[0] < newest - self.keep_s:
                self._stamps.popleft()
                self._rows.popleft()

    def nearest(self, t: float, within_s: float) -> np.ndarray | None:
        """The row stamped nearest ``t`` if it lies within ``within_s``, else None."""
        with self._lock:
            if not self._stamps:
                return None
            stamps = np.fromiter(self._stamps, float, len(self._stamps))
            i = int(np.argmin(np.abs(stamps - t)))
            if abs(stamps[i] - t) > within_s:
                return None
            return self._rows[i]


class TruthView:
    """Truth for one bus message time: true ``phi``, face box (frame pixels), and the true
    activation of each channel's muscle (``VideoTruth``'s ``act_*`` at the frame time, else
    the ``EMGTruth`` row nearest it).

    ``muscles``/``sides`` give each scheme channel's muscle and side (``fridlund``: F1 is the
    right frontalis medialis); the simulator names a muscle's side ``<muscle>_l``/``<muscle>_r``.
    """

    def __init__(
        self,
        video: str = "",
        emg: str = "",
        *,
        frame_within_s: float = 0.010,
        emg_within_s: float = 0.050,
    ) -> None:
        self.video = TruthStream(video).start() if video else None
        self.emg = TruthStream(emg).start() if emg else None
        self.frame_within_s = frame_within_s  # truth rows carry the frame's own capture stamp
        self.emg_within_s = emg_within_s  # EMG truth comes per chunk (~8 ms at 4096 Hz / 32)
        self._columns: dict[tuple[str, ...], dict[str, Any]] = {}

    @property
    def enabled(self) -> bool:
        return self.video is not None or self.emg is not None

    def status(self) -> dict[str, Any]:
        return {
            key: {"name": s.name, "connected": s.connected, "error": s.error}
            for key, s in (("video", self.video), ("emg", self.emg))
            if s is not None
        }

    def _index(self, stream: TruthStream) -> dict[str, Any]:
        key = tuple(stream.labels)
        if key not in self._columns:
            where = {label: i for i, label in enumerate(stream.labels)}
            phi = [i for label, i in where.items() if label.startswith("phi_")]
            box = [where.get(f"face_{k}_px") for k in ("x", "y", "w", "h")]
            self._columns[key] = {
                "where": where,
                "phi": phi,
                "box": box if all(b is not None for b in box) else None,
            }
        return self._columns[key]

    def video_row(self, t: float | None) -> tuple[np.ndarray, dict[str, Any]] | None:
        if self.video is None or t is None:
            return None
        row = self.video.nearest(t, self.frame_within_s)
        return None if row is None else (row, self._index(self.video))

    def phi(self, t: float | None) -> np.ndarray | None:
        found = self.video_row(t)
        if found is None or not found[1]["phi"]:
            return None
        return found[0][found[1]["phi"]].astype(np.float32)

    def face_box(self, t: float | None) -> np.ndarray | None:
        """True face box (x, y, w, h) in frame pixels at ``t``."""
        found = self.video_row(t)
        if found is None or found[1]["box"] is None:
            return None
        return found[0][found[1]["box"]].astype(np.float32)

    def activation(
        self, t: float | None, muscles: list[str], sides: list[str]
    ) -> np.ndarray | None:
        """True activation (0..1) of each channel's muscle at ``t``; NaN where unknown."""
        names = [f"{m}_{(s or '?')[0]}" for m, s in zip(muscles, sides, strict=True)]
        found = self.video_row(t)
        if found is not None:
            row, where = found[0], found[1]["where"]
            columns = [where.get(f"act_{n}") for n in names]
        elif self.emg is not None and t is not None:
            emg_row = self.emg.nearest(t, self.emg_within_s)
            if emg_row is None:
                return None
            row, where = emg_row, self._index(self.emg)["where"]
            columns = [where.get(n) for n in names]
        else:
            return None
        if all(c is None for c in columns):
            return None
        return np.array([np.nan if c is None else row[c] for c in columns], np.float32)

    def close(self) -> None:
        for stream in (self.video, self.emg):
            if stream is not None:
                stream.stop()

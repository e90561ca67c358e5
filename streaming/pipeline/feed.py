"""A stream input that keeps itself connected: find the stream, acquire until it is lost or
malformed, report that in its health record, try again. Base of the pipeline's EMG and video
feeds (MNE-LSL's ``recover=True``, plus re-resolving for sources without a source id)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from streaming.acquisition.lsl_io import StreamSelector, find_stream
from streaming.errors import EiferError, StreamFormatError
from streaming.pipeline.health import StreamHealth

__all__ = ["ReconnectingFeed"]

log = logging.getLogger(__name__)


class ReconnectingFeed:
    """Subclasses implement :meth:`_acquire` (pull until stopped; raise when the stream is gone)."""

    label = "input"

    def __init__(
        self,
        selector: StreamSelector,
        reconnect_timeout_s: float,
        name: str,
        stall_after_s: float = 1.0,
    ) -> None:
        self.selector = selector
        self.reconnect_timeout_s = reconnect_timeout_s
        self.health = StreamHealth(name=name, stall_after_s=stall_after_s)
        self._changed = threading.Condition()  # notified when new data arrived, and on stop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"{self.label}-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._acquire(find_stream(self.selector, self.reconnect_timeout_s))
            except EiferError as exc:
                if str(exc) != self.health.last_error:
                    log.warning("%s: %s", self.label, exc)
                self.health.on_lost(str(exc))
                if isinstance(exc, StreamFormatError):  # wrong stream: do not spin on it
                    self._stop.wait(self.reconnect_timeout_s)

    def _acquire(self, info: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

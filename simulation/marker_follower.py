"""The simulated participant follows a protocol node live: its LSL markers drive the script."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from simulation.movements import LiveScript
from streaming.acquisition.markers import ends_protocol, parse_trial_marker

log = logging.getLogger(__name__)


class MarkerFollower:
    """Reads a protocol node's marker stream in a thread; the generator drains what arrived.

    Markers (grammar in :mod:`streaming.acquisition.markers`): ``start:<movement>:<rep>``,
    ``stop:<movement>:<rep>``, ``protocol:end`` / ``protocol:abort``. ``drain`` applies them to a
    :class:`~simulation.LiveScript` at their LSL stamps (in this machine's clock)
    converted to simulator time ``stamp - t0``. A start stamped before samples already generated
    (up to one 125 ms block ahead) takes effect from the next block.
    """

    def __init__(self, name: str, source_id: str | None, stop: threading.Event) -> None:
        self._selector_args = (name, source_id)
        self._stop = stop
        self._lock = threading.Lock()
        self._pending: list[tuple[float, str]] = []
        self.connected = False
        self._thread = threading.Thread(target=self._run, name="markers", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from streaming.acquisition.lsl_io import ChunkInlet, StreamSelector, find_stream
        from streaming.errors import EiferError

        name, source_id = self._selector_args
        selector = StreamSelector(name=name, type="Markers", source_id=source_id)
        while not self._stop.is_set():
            try:
                info = find_stream(selector, timeout_s=2.0)
            except EiferError as exc:
                log.debug("markers: %s", exc)
                continue
            log.info("following markers from %r", info.name())
            with ChunkInlet(info, clock_sync=True, recover=False) as inlet:
                self.connected = True
                try:
                    while not self._stop.is_set():
                        rows, stamps = inlet.pull(timeout_s=0.2)
                        if len(stamps):
                            with self._lock:
                                self._pending += [
                                    (float(t), str(r[0])) for r, t in zip(rows, stamps, strict=True)
                                ]
                except EiferError as exc:
                    log.warning("markers: %s; looking for the stream again", exc)
                finally:
                    self.connected = False

    def drain(
        self, script: LiveScript, t0: float, known: Mapping[str, object], now_s: float
    ) -> None:
        """Apply the markers that arrived; ``now_s`` = simulator time of the next sample."""
        with self._lock:
            pending, self._pending = self._pending, []
        for stamp, marker in sorted(pending):
            parsed = parse_trial_marker(marker)
            t_s = stamp - t0
            if parsed is not None and parsed.kind == "start":
                if parsed.movement not in known:
                    log.warning("marker %r: unknown movement, ignored", marker)
                    continue
                script.start(parsed.movement, t_s, parsed.repetition)
            elif (parsed is not None and parsed.kind == "stop") or ends_protocol(marker):
                script.stop(t_s)
        script.prune(now_s - 60.0)

    def close(self) -> None:
        self._thread.join(timeout=5.0)

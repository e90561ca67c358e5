"""Record LSL streams into a session folder, as LabRecorder does, plus lossless video files.

One thread per stream pulls numpy chunks with the raw LSL stamps (no online clock correction:
offsets are recorded as ClockOffset chunks every ~5 s and applied at load time, the LSL
recommendation). Video and depth streams go to ``<stream>.mkv`` (bit-exact lossless), and the XDF
keeps a frame-index stream in their place: one sample per frame, the frame number, at the frame's
original time, with the camera's metadata and ``desc/video/file`` in its header. Streams that
appear late are picked up by a discovery loop; streams that drop out and return (same source id)
are resumed by liblsl's recovery, without losing what the sender buffered meanwhile; each pause
of a regular stream (nothing received, or its stamps jumping, for ``gap_threshold_s``) is stated
in ``session.json`` (the stream's ``interruptions``) and logged.

At a stop, every stream is drained before the files close: everything its inlet holds, and what
is still in flight up to the stop time (bounded by ``drain_timeout_s``), so a recorder that fell
behind (say, video encoding on a loaded machine) still saves the end of the session.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from datetime import UTC, datetime
from typing import Any, Literal

from streaming.acquisition.lsl_io import (
    list_streams,
    with_full_desc,
)
from streaming.errors import EiferError, SessionFileError
from streaming.recording.names import (
    SessionPaths,
    folder_paths,
    templated_paths,
)
from streaming.recording.quality_timeline import kept_summary
from streaming.recording.recorder_config import RecorderConfig, RemoteControlConfig, SelectorConfig
from streaming.recording.required_streams import missing_required, required_matches
from streaming.recording.session_folder import (
    SessionInfo,
    create_session_folder,
    reserve_session_info,
    write_session_info,
)
from streaming.recording.stream_recorder import StreamRecorder, frame_index_header
from streaming.recording.xdf_writer import XdfWriter

__all__ = [
    "Recorder",
    "RecorderConfig",
    "RemoteControlConfig",
    "SelectorConfig",
    "frame_index_header",
    "session_paths",
]

log = logging.getLogger(__name__)


def session_paths(config: RecorderConfig) -> SessionPaths:
    """Where a new recording goes: a new session folder, or the path template's next run."""
    if config.path_template.strip():
        return templated_paths(config.root, config.file_name_fields())
    name = config.session or datetime.now().strftime("%Y%m%d-%H%M%S")
    return folder_paths(create_session_folder(config.root, name))


class Recorder:
    """A session being recorded: ``start()``, ``poll()`` in a loop, ``close()``.

    ``selection``: the config's streams (``"config"``), every visible stream (``"all"``), or
    none but the required ones (``"none"``), as LabRecorder's ``select all`` / ``select none``.
    """

    def __init__(
        self,
        config: RecorderConfig,
        paths: SessionPaths | None = None,
        *,
        selection: Literal["config", "all", "none"] = "config",
        missing_at_start: list[str] | None = None,
        visible: list[Any] | None = None,
    ) -> None:
        self.config = config
        self.selection = selection
        self.paths = session_paths(config) if paths is None else paths
        self.folder = self.paths.folder
        self.writer = XdfWriter(self.paths.xdf)
        templated = self.paths.info.name != "session.json"
        self.info = SessionInfo(
            participant=config.participant,
            electrode_scheme=config.electrode_scheme,
            protocol=config.protocol,
            notes=config.notes,
            file_name_fields=(
                {"xdf": self.paths.xdf.name, **config.file_name_fields().model_dump()}
                if templated
                else {}
            ),
            required_streams_missing=list(missing_at_start or []),
        )
        self.missing_required: list[str] = list(config.required_streams)
        self._info_name = self.paths.info.name
        write_session_info(self.folder, self.info, self._info_name)
        # the final session.json is written even on a full disk
        reserve_session_info(self.folder, file_name=self._info_name)
        self.streams: dict[str, StreamRecorder] = {}
        self.error: Exception | None = None
        self._lock = threading.Lock()
        self._next = {"flush": 0.0, "boundary": 0.0}
        self._closing = threading.Event()
        # discovery waits on the network (a short resolve misses streams): its own thread
        self._discovery = threading.Thread(
            target=self._discover_loop, args=(visible,), name="rec-discover", daemon=True
        )
        self._discovery.start()

    def _discover_loop(self, visible: list[Any] | None) -> None:
        """Streams already resolved by the caller (``visible``) are subscribed at once, so the
        recording starts without another discovery round (a second of data)."""
        while not self._closing.is_set():
            try:
                self.discover(timeout_s=1.0, resolved=visible)
                visible = None
            except Exception as exc:  # never let discovery kill the recording
                log.warning("record: discovery failed: %s", exc)
            self._closing.wait(self.config.discover_interval_s)

    def _on_error(self, exc: Exception) -> None:
        with self._lock:
            if self.error is None:
                self.error = exc

    def _wanted(self, info: Any) -> bool:
        if required_matches(self.config.required_streams, info):
            return True  # LabRecorder: required streams are always checked
        if self.selection != "config":
            return self.selection == "all"
        selectors = [s.selector() for s in self.config.streams]
        return not selectors or any(s.matches(info) for s in selectors)

    def discover(self, timeout_s: float = 1.0, resolved: list[Any] | None = None) -> list[str]:
        """Start recording every wanted stream not yet recorded; returns the new names.
        ``resolved``: streams just resolved elsewhere (else: look for ``timeout_s``)."""
        added = []
        if self._closing.is_set():
            return []
        known_sources = {(r.info.source_id(), r.info.name()) for r in self.streams.values()}
        visible = list_streams(timeout_s) if resolved is None else resolved
        self.missing_required = missing_required(self.config.required_streams, visible)
        for found in visible:
            if found.uid() in self.streams or not self._wanted(found):
                continue
            if found.source_id() and (found.source_id(), found.name()) in known_sources:
                continue  # the same source came back: liblsl's recovery resumes its recorder
            try:
                info = with_full_desc(found)
                recorder = StreamRecorder(
                    info,
                    len(self.streams) + 1,
                    self.writer,
                    self.paths,
                    self.config,
                    self._on_error,
                )
            except EiferError as exc:
                log.warning("record: cannot record %r: %s", found.name(), exc)
                continue
            with self._lock:
                if self._closing.is_set():
                    recorder.discard()
                    break
                self.streams[found.uid()] = recorder
            recorder.start()
            added.append(info.name())
            log.info("record: recording %r (%s)", info.name(), info.type())
        return added

    def poll(self) -> None:
        """Periodic work: discovery, flush to disk, boundary chunks. Raises the first error."""
        now = time.monotonic()
        if self.error is not None:
            raise self.error
        try:
            self._periodic(now)
        except OSError as exc:  # fsync on a failing disk
            self._on_error(SessionFileError(f"cannot write {self.writer.path}: {exc.strerror}"))
            raise self.error from None  # type: ignore[misc]

    def _periodic(self, now: float) -> None:
        if now >= self._next["flush"]:
            self._next["flush"] = now + self.config.flush_interval_s
            self.writer.sync()
        if now >= self._next["boundary"]:
            self._next["boundary"] = now + self.config.boundary_interval_s
            self.writer.boundary()

    def status_line(self) -> str:
        free_gb = shutil.disk_usage(self.folder).free / 1e9
        parts = [
            f"{r.stats.name}: {r.stats.samples}{' (lost)' if r.stats.lost else ''}"
            for r in self.streams.values()
        ]
        files = [self.paths.xdf] + [
            self.folder / r.video_file for r in self.streams.values() if r.video is not None
        ]
        size_mb = sum(p.stat().st_size for p in files if p.is_file()) / 1e6
        missing = (
            f" | missing required: {', '.join(self.missing_required)}"
            if self.missing_required
            else ""
        )
        name = self.folder.name if self._info_name == "session.json" else self.paths.xdf.name
        return (
            f"{name}: {'; '.join(parts) or 'no streams yet'}{missing} | {size_mb:.1f} MB"
            f" | {free_gb:.1f} GB free"
        )

    def _quality_summaries(self) -> dict[str, dict[str, object]]:
        """``session.json``'s ``quality``: each recorded quality stream's summary."""
        out = {}
        for r in self.streams.values():
            if r.kept is None or not r.kept:
                continue
            try:
                out[r.stats.name] = kept_summary(r.info, r.kept)
            except ValueError as exc:  # a stream of that type but another layout: say so
                log.warning("record: quality stream %r not summarised: %s", r.stats.name, exc)
        return out

    def close(self, reason: str = "stopped") -> None:
        """Drain every stream, write the footers, close the files, then the final session.json.

        Never raises for a failing disk: the first error is in :attr:`error` and in
        ``stop_reason``; the caller has already told the user.
        """
        import pylsl

        with self._lock:
            self._closing.set()
        self._discovery.join(5)
        stop_t = pylsl.local_clock()  # one stop time for every stream
        for recorder in self.streams.values():
            recorder.stop(stop_t)
        for recorder in self.streams.values():
            recorder.join()
        try:
            if self.error is None:
                for recorder in self.streams.values():
                    recorder.footer()
        except EiferError as exc:
            self._on_error(exc)
        finally:
            try:
                self.writer.close()
            except OSError as exc:
                self._on_error(SessionFileError(f"cannot close {self.writer.path}: {exc}"))
            self.info = self.info.model_copy(
                update={
                    "stopped": datetime.now(UTC).isoformat(),
                    "stop_reason": reason if self.error is None else str(self.error),
                    "streams": [r.stats.summary() for r in self.streams.values()],
                    "quality": self._quality_summaries(),
                }
            )
            try:
                write_session_info(self.folder, self.info, self._info_name)
            except EiferError as exc:
                log.warning("record: %s", exc)
            finally:
                (self.folder / (self._info_name + ".reserve")).unlink(missing_ok=True)

"""Record LSL streams into a session folder, as LabRecorder does, plus lossless video files.

One thread per stream pulls numpy chunks with the raw LSL stamps (no online clock correction:
offsets are recorded as ClockOffset chunks every ~5 s and applied at load time, the LSL
recommendation). Video and depth streams go to ``<stream>.mkv`` (bit-exact lossless), and the XDF
keeps a frame-index stream in their place: one sample per frame, the frame number, at the frame's
original time, with the camera's metadata and ``desc/video/file`` in its header. Streams that
appear late are picked up by a discovery loop; streams that drop out and return (same source id)
are resumed by liblsl's recovery, without losing what the sender buffered meanwhile.

At a stop, every stream is drained before the files close: everything its inlet holds, and what
is still in flight up to the stop time (bounded by ``drain_timeout_s``), so a recorder that fell
behind (say, video encoding on a loaded machine) still saves the end of the session.
"""

from __future__ import annotations

import errno
import logging
import shutil
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field, PositiveFloat

from streaming.camera.frames import decode_frame, frame_shape
from streaming.config import Config
from streaming.errors import EiferError, SessionFileError, StreamNotFoundError
from streaming.lsl_io import (
    ChunkInlet,
    StreamSelector,
    channel_format,
    list_streams,
    with_full_desc,
)
from streaming.session import (
    RESERVE_FILE,
    SessionInfo,
    create_session_folder,
    reserve_session_info,
    video_file_name,
    write_session_info,
)
from streaming.video_file import VideoWriter
from streaming.xdf.writer import DiskFullError, XdfWriter

__all__ = ["Recorder", "RecorderConfig", "SelectorConfig"]

log = logging.getLogger(__name__)
VIDEO_TYPES = ("Video", "Depth")


class SelectorConfig(Config):
    name: str | None = None
    type: str | None = None
    source_id: str | None = None

    def selector(self) -> StreamSelector:
        return StreamSelector(self.name, self.type, self.source_id)


class RecorderConfig(Config):
    root: str = "sessions"
    session: str = ""  # "" -> the start time, e.g. 20261125-143000
    streams: list[SelectorConfig] = Field(default_factory=list)  # [] = every visible stream
    participant: str = ""
    electrode_scheme: str = "fridlund"
    protocol: str = ""
    notes: str = ""
    flush_interval_s: PositiveFloat = 0.5  # data reach disk within about this long
    clock_offset_interval_s: PositiveFloat = 5.0  # as LabRecorder
    boundary_interval_s: PositiveFloat = 10.0
    discover_interval_s: PositiveFloat = 2.0
    status_interval_s: PositiveFloat = 1.0
    video_codec: str | None = None  # None: x264 lossless RGB / FFV1 depth (bit-exact)
    drain_timeout_s: PositiveFloat = 30.0  # at a stop: longest wait to save what is pending
    drain_quiet_s: PositiveFloat = 0.5  # at a stop: a stream silent this long has no more


@dataclass
class StreamStats:
    name: str
    kind: str
    samples: int = 0
    first_t: float | None = None
    last_t: float | None = None
    offsets: list[tuple[float, float]] = field(default_factory=list)
    lost: bool = False


def frame_index_header(info: Any, video_file: str) -> str:
    """The XDF header of a video stream's frame-index stream (1 channel, the frame number)."""
    root = ET.fromstring(info.as_xml())
    original = {k: root.findtext(k) for k in ("channel_count", "channel_format")}
    root.find("channel_count").text = "1"  # type: ignore[union-attr]
    root.find("channel_format").text = "double64"  # type: ignore[union-attr]
    desc = root.find("desc")
    if desc is None:
        desc = ET.SubElement(root, "desc")
    video = ET.SubElement(desc, "video")
    for key, value in (
        ("file", video_file),
        ("stream_name", info.name()),
        ("stream_type", info.type()),
        ("channel_count", original["channel_count"]),
        ("channel_format", original["channel_format"]),
    ):
        ET.SubElement(video, key).text = str(value)
    return '<?xml version="1.0"?>' + ET.tostring(root, encoding="unicode")


class StreamRecorder:
    """Pulls one stream into the XDF (and its video file) in a thread."""

    def __init__(
        self, info: Any, stream_id: int, writer: XdfWriter, folder: Path, config: RecorderConfig,
        on_error: Callable[[Exception], None],
    ) -> None:  # fmt: skip
        self.info, self.stream_id, self.writer, self.config = info, stream_id, writer, config
        self.on_error = on_error
        self.uid = info.uid()
        self.fmt = channel_format(info)
        self.is_video = info.type() in VIDEO_TYPES and self.fmt in ("int8", "int16")
        self.stats = StreamStats(info.name(), "video" if self.is_video else "samples")
        self.video: VideoWriter | None = None
        if self.is_video:
            self.video_file = video_file_name(info.name())
            height, width = frame_shape(info) if info.type() == "Video" else _depth_shape(info)
            self.shape = (height, width)
            self.video = VideoWriter(
                folder / self.video_file, width, height, info.nominal_srate() or 30.0,
                pixel_format="rgb24" if info.type() == "Video" else "gray16le",
                codec=config.video_codec,
            )  # fmt: skip
            writer.stream_header(stream_id, frame_index_header(info, self.video_file))
        else:
            writer.stream_header(stream_id, info.as_xml())
        self._stop = threading.Event()
        self._stop_t = float("inf")  # set by stop(): drain up to this LSL time
        self._write_failed = False
        self._thread = threading.Thread(target=self._run, name=f"rec-{info.name()}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, at_lsl_time: float | None = None) -> None:
        """Stop after draining what was sent up to ``at_lsl_time`` (default: now)."""
        import pylsl

        self._stop_t = pylsl.local_clock() if at_lsl_time is None else at_lsl_time
        self._stop.set()

    def discard(self) -> None:
        """A recorder never started (the session closed meanwhile): release its video file."""
        self._stop.set()
        self._close_video()

    def join(self) -> None:
        self._thread.join(self.config.drain_timeout_s + 10)

    def _run(self) -> None:
        import pylsl

        max_chunk = 8 if self.is_video else 8192
        try:
            with ChunkInlet(
                self.info, max_buflen_s=30 if self.is_video else 360, clock_sync=False,
                max_chunk=max_chunk,
            ) as inlet:  # fmt: skip
                inlet.open(5.0)
                next_offset = next_flush = 0.0
                while not self._stop.is_set():
                    if time.monotonic() >= next_offset:
                        next_offset = time.monotonic() + self.config.clock_offset_interval_s
                        self._clock_offset(inlet, pylsl.local_clock())
                    if self.video is not None and time.monotonic() >= next_flush:
                        # video reaches the disk like the XDF: a kill loses about the last second
                        next_flush = time.monotonic() + self.config.flush_interval_s
                        self.video.flush()
                    data, stamps = inlet.pull(timeout_s=0.2)
                    if len(stamps):
                        self._write(data, stamps)
                self._drain(inlet)
        except StreamNotFoundError as exc:
            self.stats.lost = True
            log.warning("record: %s", exc)
        except Exception as exc:  # disk full, video errors: stop the recording, say why
            self._write_failed = True
            self.on_error(self._as_session_error(exc))
        finally:
            self._close_video()

    def _drain(self, inlet: ChunkInlet) -> None:
        """Save everything pending after a stop: what the inlet holds, and what is in flight up
        to the stop time; ends at the first sample at or after the stop time, after
        ``drain_quiet_s`` without data, or at ``drain_timeout_s``."""
        # the stop time on the sender's clock (stamps are recorded raw; offset = local - remote)
        stop_t = self._stop_t - (self.stats.offsets[-1][1] if self.stats.offsets else 0.0)
        deadline = time.monotonic() + self.config.drain_timeout_s
        while True:
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                log.warning(
                    "record: %r: stopped draining after %.0f s; later data are not saved",
                    self.stats.name, self.config.drain_timeout_s,
                )  # fmt: skip
                return
            data, stamps = inlet.pull(timeout_s=min(self.config.drain_quiet_s, left_s))
            if not len(stamps):
                return  # quiet: nothing more was sent before the stop
            self._write(data, stamps)
            if stamps[-1] >= stop_t:
                return

    def _close_video(self) -> None:
        if self.video is None:
            return
        try:
            if self._write_failed or _free_bytes(self.writer.path.parent) < 1_000_000:
                self.video.abandon()  # draining the encoder would only fail again (full disk)
            else:
                self.video.close()
        except Exception as exc:  # the disk filled: the frames written so far stay readable
            error = self._as_session_error(exc)
            self.on_error(error)
            log.debug("record: closing %s: %s", self.video_file, error)

    def _as_session_error(self, exc: Exception) -> EiferError:
        """One clear line for the user: a disk-full error names the file, others say what."""
        if isinstance(exc, EiferError):
            return exc
        target = self.video_file if self.video is not None else self.writer.path.name
        disk_full = isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS
        if disk_full or _free_bytes(self.writer.path.parent) < 1_000_000:
            return DiskFullError(
                f"disk full while writing {target}; recording stopped, "
                "what was written before is kept"
            )
        return SessionFileError(f"recording {self.stats.name!r} into {target} failed: {exc}")

    def _clock_offset(self, inlet: ChunkInlet, now: float) -> None:
        try:
            offset = inlet.time_correction(timeout_s=2.0)
        except StreamNotFoundError:
            return
        self.writer.clock_offset(self.stream_id, now - offset, offset)
        self.stats.offsets.append((now - offset, offset))

    def _write(self, data: Any, stamps: Any) -> None:
        import numpy as np

        if self.video is not None:
            indices = []
            for row in data:
                frame = (
                    decode_frame(row, *self.shape)
                    if self.info.type() == "Video"
                    else row.reshape(self.shape)
                )
                indices.append(self.video.write(frame))
            data = np.asarray(indices, dtype=np.float64)[:, None]
            fmt = "double64"
        else:
            fmt = self.fmt
        self.writer.samples(self.stream_id, stamps, data, fmt)
        self.stats.samples += len(stamps)
        self.stats.first_t = float(stamps[0]) if self.stats.first_t is None else self.stats.first_t
        self.stats.last_t = float(stamps[-1])

    def footer(self) -> None:
        s = self.stats
        self.writer.stream_footer(
            self.stream_id, s.first_t or 0.0, s.last_t or 0.0, s.samples, s.offsets
        )


_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def _depth_shape(info: Any) -> tuple[int, int]:
    from streaming.lsl_io import desc_to_dict

    desc = desc_to_dict(info)
    return int(desc["height"]), int(desc["width"])


class Recorder:
    """A session being recorded: ``start()``, ``poll()`` in a loop, ``close()``."""

    def __init__(self, config: RecorderConfig) -> None:
        self.config = config
        name = config.session or datetime.now().strftime("%Y%m%d-%H%M%S")
        self.folder = create_session_folder(config.root, name)
        self.writer = XdfWriter(self.folder / "session.xdf")
        self.info = SessionInfo(
            participant=config.participant,
            electrode_scheme=config.electrode_scheme,
            protocol=config.protocol,
            notes=config.notes,
        )
        write_session_info(self.folder, self.info)
        reserve_session_info(self.folder)  # the final session.json is written even on a full disk
        self.streams: dict[str, StreamRecorder] = {}
        self.error: Exception | None = None
        self._lock = threading.Lock()
        self._next = {"flush": 0.0, "boundary": 0.0}
        self._closing = threading.Event()
        # discovery waits on the network (a short resolve misses streams): its own thread
        self._discovery = threading.Thread(
            target=self._discover_loop, name="rec-discover", daemon=True
        )
        self._discovery.start()

    def _discover_loop(self) -> None:
        while not self._closing.is_set():
            try:
                self.discover(timeout_s=1.0)
            except Exception as exc:  # never let discovery kill the recording
                log.warning("record: discovery failed: %s", exc)
            self._closing.wait(self.config.discover_interval_s)

    def _on_error(self, exc: Exception) -> None:
        with self._lock:
            if self.error is None:
                self.error = exc

    def _wanted(self, info: Any) -> bool:
        selectors = [s.selector() for s in self.config.streams]
        return not selectors or any(s.matches(info) for s in selectors)

    def discover(self, timeout_s: float = 1.0) -> list[str]:
        """Start recording every wanted stream not yet recorded; returns the new names."""
        added = []
        if self._closing.is_set():
            return added
        known_sources = {(r.info.source_id(), r.info.name()) for r in self.streams.values()}
        for resolved in list_streams(timeout_s):
            if resolved.uid() in self.streams or not self._wanted(resolved):
                continue
            if resolved.source_id() and (resolved.source_id(), resolved.name()) in known_sources:
                continue  # the same source came back: liblsl's recovery resumes its recorder
            try:
                info = with_full_desc(resolved)
                recorder = StreamRecorder(
                    info,
                    len(self.streams) + 1,
                    self.writer,
                    self.folder,
                    self.config,
                    self._on_error,
                )
            except EiferError as exc:
                log.warning("record: cannot record %r: %s", resolved.name(), exc)
                continue
            with self._lock:
                if self._closing.is_set():
                    recorder.discard()
                    break
                self.streams[resolved.uid()] = recorder
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
        size_mb = sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file()) / 1e6
        return f"{self.folder.name}: {'; '.join(parts) or 'no streams yet'} | {size_mb:.1f} MB | {free_gb:.1f} GB free"

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
                    "streams": [
                        {"name": r.stats.name, "kind": r.stats.kind, "samples": r.stats.samples}
                        for r in self.streams.values()
                    ],
                }
            )
            try:
                write_session_info(self.folder, self.info)
            except EiferError as exc:
                log.warning("record: %s", exc)
            finally:
                (self.folder / RESERVE_FILE).unlink(missing_ok=True)

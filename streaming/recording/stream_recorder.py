"""One stream's recording: a thread pulling its chunks into the session's XDF (and, for video
and depth, into its lossless video file), with the stream's statistics for the XDF footer.

Split from :mod:`streaming.recording.recorder` (the session: discovery, start, stop, drain), whose
docstring describes the recording as a whole.
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
from pathlib import Path
from typing import Any

from streaming.acquisition.camera_frames import decode_frame, frame_shape
from streaming.acquisition.lsl_io import (
    ChunkInlet,
    channel_format,
)
from streaming.dsp.quality_codes import STREAM_TYPE as QUALITY_TYPE
from streaming.errors import EiferError, SessionFileError, StreamNotFoundError
from streaming.recording.names import (
    SessionPaths,
)
from streaming.recording.recorder_config import RecorderConfig
from streaming.recording.video_file import VideoWriter
from streaming.recording.xdf_writer import DiskFullError, XdfWriter

__all__ = ["StreamRecorder", "StreamStats", "frame_index_header"]

# The recording's one logger: the session module's (recorder.py), as before the split.
log = logging.getLogger("streaming.recording.recorder")
VIDEO_TYPES = ("Video", "Depth")


@dataclass
class StreamStats:
    """What the XDF footer of one stream needs: sample count, first/last time, clock offsets."""

    name: str
    kind: str
    samples: int = 0
    first_t: float | None = None
    last_t: float | None = None
    offsets: list[tuple[float, float]] = field(default_factory=list)
    lost: bool = False
    # pauses of a regular stream (the session states them): nothing received for a while
    # ("no data received": a cable, a host, a stalled sender; LSL's recovery may still deliver
    # every sample afterwards) or a jump of the stamps ("gap in the data": samples never came)
    interruptions: list[dict[str, float | str]] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """This stream's entry in ``session.json``."""
        entry: dict[str, object] = {"name": self.name, "kind": self.kind, "samples": self.samples}
        if self.interruptions:
            entry["interruptions"] = self.interruptions
        return entry


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
        self, info: Any, stream_id: int, writer: XdfWriter, paths: SessionPaths,
        config: RecorderConfig, on_error: Callable[[Exception], None],
    ) -> None:  # fmt: skip
        self.info, self.stream_id, self.writer, self.config = info, stream_id, writer, config
        self.on_error = on_error
        self.uid = info.uid()
        self.fmt = channel_format(info)
        self.is_video = info.type() in VIDEO_TYPES and self.fmt in ("int8", "int16")
        self.stats = StreamStats(info.name(), "video" if self.is_video else "samples")
        self.video: VideoWriter | None = None
        # an electrode-quality timeline (2 samples a second) is also kept for session.json
        self.kept: list[tuple[Any, Any]] | None = (
            [] if info.type() == QUALITY_TYPE and self.fmt != "string" else None
        )
        if self.is_video:
            video_path = paths.video(info.name())
            self.video_file = video_path.name
            height, width = frame_shape(info) if info.type() == "Video" else _depth_shape(info)
            self.shape = (height, width)
            self.video = VideoWriter(
                video_path, width, height, info.nominal_srate() or 30.0,
                pixel_format="rgb24" if info.type() == "Video" else "gray16le",
                codec=config.video_codec,
            )  # fmt: skip
            writer.stream_header(stream_id, frame_index_header(info, self.video_file))
        else:
            writer.stream_header(stream_id, info.as_xml())
        self.regular = info.nominal_srate() > 0  # irregular streams (markers) may be silent
        self._silent_since: float | None = None  # LSL time of the first empty pull of a pause
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
                        self._note_pauses(stamps, pylsl.local_clock())
                        self._write(data, stamps)
                    elif self._silent_since is None:
                        self._silent_since = pylsl.local_clock()
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

    def _note_pauses(self, stamps: Any, now: float) -> None:
        """State a pause of a regular stream: nothing received for ``gap_threshold_s`` (timed
        from this recorder's first empty pull, so a recorder busy writing is no pause), or its
        stamps jumping by more than that (times in this recorder's clock); a slow stream's
        threshold is at least three of its sample periods."""
        import numpy as np

        silent_since, self._silent_since = self._silent_since, None
        if not self.regular:
            return
        threshold = max(self.config.gap_threshold_s, 3.0 / self.info.nominal_srate())
        offset = self.stats.offsets[-1][1] if self.stats.offsets else 0.0
        if silent_since is not None and now - silent_since >= threshold:
            self._interruption("no data received", silent_since, now)
        previous = [self.stats.last_t] if self.stats.last_t is not None else []
        times = np.concatenate([previous, np.asarray(stamps, dtype=np.float64)])
        for i in np.flatnonzero(np.diff(times) > threshold):
            self._interruption("gap in the data", times[i] + offset, times[i + 1] + offset)

    def _interruption(self, what: str, start: float, end: float) -> None:
        self.stats.interruptions.append(
            {"what": what, "from": round(start, 4), "to": round(end, 4),
             "seconds": round(end - start, 3)}
        )  # fmt: skip
        log.warning("record: %r: %s for %.1f s, then resumed", self.stats.name, what, end - start)

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
        if self.kept is not None:
            self.kept.append((np.array(stamps, dtype=np.float64), np.array(data, dtype=np.float64)))
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
    from streaming.acquisition.lsl_io import desc_to_dict

    desc = desc_to_dict(info)
    return int(desc["height"]), int(desc["width"])

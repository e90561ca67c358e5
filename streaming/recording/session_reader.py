"""The session reader: a session folder (``session.xdf`` + video files) or any XDF file, read
into one time base, for replay (:mod:`streaming.recording.replay`) and export
(:mod:`streaming.recording.export`).

Reading is pyxdf for samples and clock synchronisation, plus the project's chunk walker
(:mod:`streaming.recording.xdf_reader`) for the header XML as recorded and for explaining damage;
this is the one place to swap for the project's own XDF reader.

Video: the XDF holds the frame-index stream (channel 0 = frame number in the video file,
``desc/video/file`` = that file, relative to the session folder; its other ``desc`` children are
the camera stream's own), the pixels are in the video file. A recorder killed mid-session
(SIGKILL, power loss) leaves an index that lists frames the video file never received: the
reader keeps the frames that decode, trims the index to them and says so, so that what was saved
plays and exports.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streaming.errors import SessionFileError
from streaming.recording.xdf_reader import describe, scan_xdf

__all__ = [
    "SESSION_XDF",
    "RecordedStream",
    "Recording",
    "VideoSource",
    "load_recording",
    "read_stream_headers",
]

log = logging.getLogger(__name__)

SESSION_XDF = "session.xdf"
_NUMERIC_FORMATS = {"float32", "double64", "int8", "int16", "int32", "int64"}


@dataclass(frozen=True)
class VideoSource:
    """Where a frame-index stream's pixels are: the video file and the layout to stream them in."""

    path: Path
    name: str
    type: str
    width: int
    height: int
    depth: bool  # int16 depth (gray16le) instead of rgb24

    @property
    def channel_count(self) -> int:
        return self.width * self.height * (1 if self.depth else 3)

    @property
    def channel_format(self) -> str:
        return "int16" if self.depth else "int8"


@dataclass
class RecordedStream:
    """One recorded stream: its header as recorded and its samples in the recording's clock."""

    stream_id: int
    header_xml: str
    name: str
    type: str
    channel_count: int
    rate_hz: float
    channel_format: str
    source_id: str
    timestamps: np.ndarray  # (n,) float64
    data: Any  # (n, channel_count) ndarray, or list of string rows
    video: VideoSource | None = None  # set for the frame-index stream of a video file

    @property
    def n_samples(self) -> int:
        return len(self.timestamps)

    @property
    def out_name(self) -> str:
        return self.video.name if self.video else self.name

    @property
    def out_type(self) -> str:
        return self.video.type if self.video else self.type

    def matches(self, selectors: Sequence[str]) -> bool:
        """Chosen by name or type (for video: the original camera stream's name or type too)."""
        if not selectors:
            return True
        keys = {self.name, self.type, self.out_name, self.out_type}
        return any(s in keys for s in selectors)


@dataclass
class Recording:
    """The streams of one session folder or XDF file."""

    path: Path
    streams: list[RecordedStream]
    file_header: dict[str, Any] = field(default_factory=dict)

    def stream(self, name: str) -> RecordedStream:
        for s in self.streams:
            if name in (s.name, s.out_name):
                return s
        raise SessionFileError(
            f"{self.path}: no stream named {name!r}; streams: {[s.out_name for s in self.streams]}"
        )


def _xdf_path(path: Path) -> Path:
    if path.is_dir():
        session = path / SESSION_XDF
        if session.is_file():
            return session
        candidates = sorted(path.glob("*.xdf"))
        if len(candidates) == 1:
            return candidates[0]
        raise SessionFileError(
            f"{path}: a session folder needs {SESSION_XDF} (found {[c.name for c in candidates]})"
        )
    if not path.is_file():
        raise SessionFileError(f"recording not found: {path}")
    return path


def read_stream_headers(path: str | Path) -> dict[int, str]:
    """The StreamHeader XML of every stream, by stream id, as recorded (pyxdf keeps headers only
    as parsed dicts; replay needs the XML itself to copy ``desc`` exactly). Damage found on the
    way (truncation, corruption, unknown tags) is logged with its byte offset."""
    scan = scan_xdf(path)
    for problem in scan.problems:
        log.warning("%s: %s", path, problem)
    return scan.headers


def _text(root: ET.Element, key: str, default: str = "") -> str:
    value = root.findtext(key)
    return value.strip() if value is not None and value.strip() else default


def _video_source(root: ET.Element, name: str, folder: Path) -> VideoSource | None:
    """The video file a frame-index stream refers to, if any.

    Convention (shared with the recorder): the frame-index stream's ``desc/video/file`` names the
    video file relative to the session folder; ``desc/video/stream_name`` / ``stream_type`` give
    the camera stream to re-create (defaults: the index stream's name, ``Video``/``Depth``). A
    stream without that element counts as a frame index when ``<folder>/<name>.mkv`` exists.
    """
    video = root.find("./desc/video")
    file_name = _text(video, "file") if video is not None else ""
    if not file_name:
        candidate = folder / f"{name}.mkv"
        if not candidate.is_file():
            return None
        file_name = candidate.name
    path = folder / file_name
    if not path.is_file():
        raise SessionFileError(
            f"stream {name!r} refers to video file {path}, which is missing; "
            "copy the whole session folder"
        )
    from streaming.recording.video_file import probe_video

    width, height, depth = probe_video(path)
    stream_name = _text(video, "stream_name", name) if video is not None else name
    default_type = "Depth" if depth else "Video"
    stream_type = _text(video, "stream_type", default_type) if video is not None else default_type
    return VideoSource(path, stream_name, stream_type, width, height, depth)


def _drop_segment_notice(record: logging.LogRecord) -> bool:
    """pyxdf warns "Segments and clock-segments differ" for every stream of a file without
    ClockOffset chunks (its dejitter segments vs. none from clock sync): noise, not a problem."""
    return "clock-segments differ" not in record.getMessage()


def load_recording(path: str | Path) -> Recording:
    """Read a session folder (``session.xdf`` + video files) or any XDF file.

    Samples come back in the recorder's clock (pyxdf clock synchronisation with clock-reset
    handling, no dejitter: replay must reproduce the stamps as recorded).
    """
    import pyxdf

    xdf = _xdf_path(Path(path))
    scan = scan_xdf(xdf)
    if not scan.headers and scan.problems:  # "XDF:" and then nothing readable
        raise SessionFileError(f"{xdf}: not a readable XDF file ({scan.problems[0]})")
    for problem in scan.problems:
        log.warning("%s: %s", xdf, problem)
    headers = scan.headers
    pyxdf_log = logging.getLogger("pyxdf.pyxdf")
    pyxdf_log.addFilter(_drop_segment_notice)
    try:
        raw_streams, file_header = pyxdf.load_xdf(
            str(xdf),
            synchronize_clocks=True,
            handle_clock_resets=True,
            dejitter_timestamps=False,
        )
    except Exception as exc:  # pyxdf raises plain Exceptions on corrupt files
        raise SessionFileError(f"cannot read XDF ({exc})\n{describe(scan_xdf(xdf))}") from None
    finally:
        pyxdf_log.removeFilter(_drop_segment_notice)
    if file_header is None:  # pyxdf found no chunk it could read
        why = scan.problems[0] if scan.problems else "no file header"
        raise SessionFileError(f"{xdf}: not a readable XDF file ({why})")
    streams = []
    for raw in raw_streams:
        info = raw["info"]
        stream_id = int(info["stream_id"])
        header = headers.get(stream_id)
        if header is None:
            raise SessionFileError(f"{xdf}: stream {stream_id} has samples but no header")
        root = ET.fromstring(header)
        name = _text(root, "name", f"stream{stream_id}")
        fmt = _text(root, "channel_format", "float32")
        n_ch = int(_text(root, "channel_count", "1"))
        timestamps = np.asarray(raw["time_stamps"], dtype=np.float64)
        series = raw["time_series"]
        if fmt == "string":
            data: Any = [[str(v) for v in row] for row in series]
        else:
            data = np.asarray(series).reshape(len(timestamps), n_ch)
        stream = RecordedStream(
            stream_id=stream_id,
            header_xml=header,
            name=name,
            type=_text(root, "type"),
            channel_count=n_ch,
            rate_hz=float(_text(root, "nominal_srate", "0")),
            channel_format=fmt,
            source_id=_text(root, "source_id"),
            timestamps=timestamps,
            data=data,
        )
        if fmt in _NUMERIC_FORMATS:
            stream.video = _video_source(root, name, xdf.parent)
            if stream.video is not None and stream_id not in scan.footers:
                _trim_to_saved_frames(stream)  # no footer: the recording was interrupted
        streams.append(stream)
    streams.sort(key=lambda s: s.stream_id)
    return Recording(xdf.parent if Path(path).is_dir() else xdf, streams, dict(file_header))


def _trim_to_saved_frames(stream: RecordedStream) -> None:
    """Drop the frame-index rows whose frames never reached the video file (a recorder killed
    mid-session indexes frames still in its encoder), with a warning; what was saved stays."""
    from streaming.recording.video_file import VideoReader

    assert stream.video is not None
    with VideoReader(stream.video.path) as reader:
        saved = len(reader)
    frames = np.asarray(stream.data)[:, 0] if stream.n_samples else np.zeros(0)
    keep = frames < saved
    if keep.all():
        return
    log.warning(
        "%s: the frame index lists %d frames but %s holds %d that decode (recording "
        "interrupted?): using the %d saved frames",
        stream.name, int(frames.max()) + 1, stream.video.path.name, saved, int(keep.sum()),
    )  # fmt: skip
    stream.timestamps = stream.timestamps[keep]
    stream.data = np.asarray(stream.data)[keep]

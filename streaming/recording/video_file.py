"""Lossless video files for recorded camera streams, with frame-accurate random access.

A session keeps camera frames in a Matroska file next to the XDF (DESIGN.md "Sessions on disk");
the XDF holds a frame-index stream saying which frame was captured at which LSL time. Frames must
come back bit for bit, because models are trained on them:

- ``x264-lossless``: ``libx264rgb`` with ``crf=0`` codes RGB directly (plain ``libx264`` goes
  through YUV 4:4:4, which is not bit-exact for RGB input; checked here); ``preset=ultrafast``,
  ``tune=zerolatency`` (no lookahead, so every frame is written as it comes), a keyframe every
  ``keyframe_interval`` frames (10: a random read decodes at most 10 frames; the file is ~2 %
  larger than with one keyframe a second, measured here). ~6 ms per 1280x720 frame on one core
  (DESIGN.md); 13-17 ms measured here with the 2 shared cores busy.
- ``ffv1``: intra-only FFV1 version 3 with per-slice CRCs (~27 ms per 1280x720 frame); the only
  codec here for 16-bit depth (``gray16le``: int16 millimetres stored as their uint16 pattern).

Matroska's muxer buffers a cluster in memory; clusters are closed at a keyframe once
``cluster_s`` has passed, so a killed recorder loses at most about ``cluster_s`` of frames.
:class:`VideoReader` builds its own index by demuxing (no decoding) on open, so a truncated file
(no Cues, no footer) still opens up to its last complete frame.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

from streaming.errors import SessionFileError

__all__ = ["CODECS", "PIXEL_FORMATS", "VideoReader", "VideoWriter", "probe_video"]

# codec name -> FFmpeg encoder
CODECS: dict[str, Literal["libx264rgb", "ffv1"]] = {"x264-lossless": "libx264rgb", "ffv1": "ffv1"}
# pixel format accepted by write() -> (FFmpeg frame format, numpy dtype, channels)
PIXEL_FORMATS = {"rgb24": ("rgb24", np.uint8, 3), "gray16le": ("gray16le", np.uint16, 1)}
# encoder pixel format per (codec, pixel format); a missing pair cannot be stored losslessly
_CODED_FORMATS = {
    ("x264-lossless", "rgb24"): "rgb24",
    ("ffv1", "rgb24"): "bgr0",
    ("ffv1", "gray16le"): "gray16le",
}


class VideoWriter:
    """Append frames of one camera stream to a lossless Matroska file.

    ``write(frame)`` returns the frame index (0, 1, ...), the number the recorder puts in the
    XDF frame-index stream. ``rgb24`` frames are ``(height, width, 3)`` uint8 (int8 accepted:
    the bit pattern LSL ``Video`` streams carry); ``gray16le`` frames ``(height, width)`` int16 or
    uint16 (depth in mm; FFV1 only). ``codec`` None picks ``x264-lossless`` for RGB (fast) and
    ``ffv1`` for depth.

    Parameters
    ----------
    path : str | Path
        The ``.mkv`` file to create.
    width, height : int
        Frame size in pixels (even for ``x264-lossless``).
    rate_hz : float
        Nominal frame rate (the container's time base; the XDF keeps the true capture times).
    pixel_format : str
        ``"rgb24"`` or ``"gray16le"`` (depth).
    codec : str | None
        ``"x264-lossless"``, ``"ffv1"`` or None (chosen from ``pixel_format``).
    cluster_s : float
        Longest Matroska cluster in seconds: about what a killed recorder can lose.
    keyframe_interval : int
        x264 keyframe distance in frames (the most frames a random read decodes).
    bitexact : bool
        No random segment id or date in the file: the same frames give the same bytes.
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        rate_hz: float,
        *,
        pixel_format: str = "rgb24",
        codec: str | None = None,
        cluster_s: float = 1.0,
        keyframe_interval: int = 10,
        bitexact: bool = False,  # no random segment id or date: same frames, same bytes
    ) -> None:
        if pixel_format not in PIXEL_FORMATS:
            raise ValueError(
                f"pixel_format {pixel_format!r} not supported; use {list(PIXEL_FORMATS)}"
            )
        codec = codec or ("x264-lossless" if pixel_format == "rgb24" else "ffv1")
        if codec not in CODECS:
            raise ValueError(f"codec {codec!r} not supported; use {list(CODECS)}")
        coded = _CODED_FORMATS.get((codec, pixel_format))
        if coded is None:
            raise ValueError(f"codec {codec!r} cannot store {pixel_format!r} losslessly; use ffv1")
        if width <= 0 or height <= 0 or rate_hz <= 0:
            raise ValueError(f"bad video geometry {width}x{height} at {rate_hz} Hz")
        if codec == "x264-lossless" and (width % 2 or height % 2):
            raise ValueError(f"x264 needs even width and height, got {width}x{height}; use ffv1")
        self.path = Path(path)
        self.width, self.height, self.rate_hz = int(width), int(height), float(rate_hz)
        self.pixel_format, self.codec = pixel_format, codec
        self._frame_format, self._dtype, self._channels = PIXEL_FORMATS[pixel_format]
        self._file = self.path.open("wb")
        options = {"cluster_time_limit": str(int(cluster_s * 1000)), "flush_packets": "1"}
        if bitexact:
            options["fflags"] = "+bitexact"
        self._container = av.open(self._file, "w", format="matroska", options=options)
        rate = _rate_fraction(self.rate_hz)
        self._stream = self._container.add_stream(CODECS[codec], rate=rate)
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, coded
        self._stream.codec_context.time_base = 1 / rate
        if codec == "x264-lossless":
            self._stream.options = {
                "crf": "0",
                "preset": "ultrafast",
                "tune": "zerolatency",
                "g": str(max(1, keyframe_interval)),
            }
        else:
            self._stream.options = {"level": "3", "slicecrc": "1", "g": "1"}
        self.frames_written = 0
        self._closed = False

    def write(self, frame: np.ndarray) -> int:
        """Encode one frame; returns its index."""
        if self._closed:
            raise ValueError(f"video file {self.path} is closed")
        array = np.asarray(frame)
        shape = (self.height, self.width) + ((3,) if self._channels == 3 else ())
        if array.shape != shape:
            raise ValueError(f"{self.path.name}: frame shape {array.shape}, expected {shape}")
        if self._channels == 1:
            if array.dtype not in (np.int16, np.uint16):
                raise ValueError(f"depth frames must be int16 or uint16, got {array.dtype}")
            array = array.view(np.uint16)
        elif array.dtype == np.int8:  # as LSL Video streams carry it (DESIGN.md)
            array = array.view(np.uint8)
        elif array.dtype != np.uint8:
            raise ValueError(f"RGB frames must be uint8 (or int8 bit patterns), got {array.dtype}")
        video_frame = av.VideoFrame.from_ndarray(
            np.ascontiguousarray(array), format=self._frame_format
        )
        video_frame.pts = self.frames_written
        self._container.mux(self._stream.encode(video_frame))
        index = self.frames_written
        self.frames_written += 1
        return index

    def flush(self) -> None:
        """Push what the muxer has written to the disk (the open cluster follows at its close)."""
        if not self._closed:
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Drain the encoder, write the Matroska index (Cues) and close the file."""
        if self._closed:
            return
        self._closed = True
        try:
            self._container.mux(self._stream.encode(None))
            self._container.close()
        finally:
            self._file.close()

    def abandon(self) -> None:
        """Close without draining the encoder or writing the index, e.g. on a full disk where
        every further write fails: the frames already written stay readable."""
        if not self._closed:
            self._closed = True
            self._file.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rate_fraction(rate_hz: float) -> Fraction:
    return Fraction(rate_hz).limit_denominator(1001)


def probe_video(path: str | Path) -> tuple[int, int, bool]:
    """``(width, height, depth)`` of a video file from its header, without indexing frames."""
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SessionFileError(f"{path}: no video stream in the file")
            context = container.streams.video[0].codec_context
            return context.width, context.height, context.pix_fmt in ("gray16le", "gray16be")
    except av.FFmpegError as exc:
        raise SessionFileError(f"{path}: not a readable video file ({exc})") from None


class VideoReader:
    """Random access to the frames of a file written by :class:`VideoWriter`.

    ``read(i)`` returns exactly the ``i``-th frame written: ``(H, W, 3)`` uint8 for RGB,
    ``(H, W)`` int16 for depth. ``expected_frames`` (from the XDF frame-index stream) turns a
    video shorter than its index into a :class:`SessionFileError`.
    """

    def __init__(self, path: str | Path, *, expected_frames: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SessionFileError(f"video file not found: {self.path}")
        try:
            self._container = av.open(str(self.path))
        except av.FFmpegError as exc:
            raise SessionFileError(f"{self.path}: not a readable video file ({exc})") from None
        if not self._container.streams.video:
            self._container.close()
            raise SessionFileError(f"{self.path}: no video stream in the file")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self.width: int = self._stream.codec_context.width
        self.height: int = self._stream.codec_context.height
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.rate_hz: float = float(rate) if rate else 0.0
        self.depth = self._stream.codec_context.pix_fmt in ("gray16le", "gray16be")
        self._pts, self._keyframe = self._build_index()
        self._next_index = -1  # index of the frame the decoder will give next
        self._decoder: Iterator[av.VideoFrame] | None = None
        if expected_frames is not None:
            self.check_frames(expected_frames)

    def _build_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Presentation times and keyframe flags of every complete frame (demux only)."""
        pts: list[int] = []
        keys: list[bool] = []
        try:
            for packet in self._container.demux(self._stream):
                if packet.size == 0 or packet.pts is None:
                    continue
                if packet.is_corrupt:
                    break
                pts.append(packet.pts)
                keys.append(bool(packet.is_keyframe))
        except av.FFmpegError:
            pass  # truncated file: keep what demuxed completely
        order = np.argsort(pts, kind="stable")
        pts_array = np.asarray(pts, dtype=np.int64)[order]
        keys_array = np.asarray(keys, dtype=bool)[order]
        # The last packet of a killed recording may be cut short: keep it only if it decodes.
        while len(pts_array) and not self._decodes(int(pts_array[-1]), pts_array, keys_array):
            pts_array, keys_array = pts_array[:-1], keys_array[:-1]
        return pts_array, keys_array

    def _decodes(self, target_pts: int, pts: np.ndarray, keys: np.ndarray) -> bool:
        index = len(pts) - 1
        key = int(np.flatnonzero(keys[: index + 1])[-1]) if keys[: index + 1].any() else 0
        try:
            self._container.seek(int(pts[key]), stream=self._stream, backward=True)
            for frame in self._container.decode(self._stream):
                if frame.pts == target_pts:
                    return True
                if frame.pts is not None and frame.pts > target_pts:
                    return False
        except av.FFmpegError:
            return False
        return False

    def __len__(self) -> int:
        return len(self._pts)

    def check_frames(self, expected: int) -> None:
        """Raise :class:`SessionFileError` when the file has fewer frames than ``expected``."""
        if len(self) < expected:
            raise SessionFileError(
                f"{self.path}: the frame index expects {expected} frames but the video has "
                f"{len(self)} (file truncated or from another recording?)"
            )

    def read(self, index: int) -> np.ndarray:
        """The ``index``-th frame written (negative counts from the end)."""
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"{self.path.name}: frame {index} out of range (0..{n - 1})")
        if index != self._next_index or self._decoder is None:
            self._seek(index)
        target = int(self._pts[index])
        assert self._decoder is not None
        try:
            for frame in self._decoder:
                if frame.pts is None or frame.pts < target:
                    continue
                if frame.pts > target:
                    break
                self._next_index = index + 1
                return self._to_array(frame)
        except av.FFmpegError as exc:
            self._decoder = None
            raise SessionFileError(f"{self.path}: frame {index} does not decode ({exc})") from None
        self._decoder = None
        raise SessionFileError(f"{self.path}: frame {index} (pts {target}) not found in the file")

    def _seek(self, index: int) -> None:
        keys = np.flatnonzero(self._keyframe[: index + 1])
        key = int(keys[-1]) if len(keys) else 0
        self._container.seek(int(self._pts[key]), stream=self._stream, backward=True)
        self._decoder = self._container.decode(self._stream)
        self._next_index = key

    def _to_array(self, frame: av.VideoFrame) -> np.ndarray:
        if self.depth:
            return frame.to_ndarray(format="gray16le").view(np.int16)
        return frame.to_ndarray(format="rgb24")

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(len(self)):
            yield self.read(index)

    def close(self) -> None:
        self._decoder = None
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""A streaming XDF 1.0 writer (the format LabRecorder writes and pyxdf reads).

File = ``XDF:`` + chunks; a chunk is ``[NumLengthBytes][Length][Tag u16][StreamId u32 for tags
2, 3, 4, 6][content]``, little-endian (XDF 1.0 specification; byte layout checked against
LabRecorder's xdfwriter and pyxdf in streaming_anchors.md section 3). Samples are written
vectorised from numpy chunks through a packed structured dtype.

Crash safety: every chunk is assembled in memory and written with one ``write`` call, so a killed
process leaves only whole chunks; :meth:`XdfWriter.sync` flushes and fsyncs (the recorder calls
it about every 0.5 s). When the disk is full, the file is cut back to its last whole chunk and
:class:`DiskFullError` says so: the file stays loadable.
"""

from __future__ import annotations

import errno
import os
import struct
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from streaming.errors import SessionFileError

__all__ = ["BOUNDARY_UUID", "DiskFullError", "XdfWriter"]

BOUNDARY_UUID = bytes.fromhex("43A546DCCBF5410FB30ED5467383CBE4")
TAG_FILE_HEADER, TAG_STREAM_HEADER, TAG_SAMPLES = 1, 2, 3
TAG_CLOCK_OFFSET, TAG_BOUNDARY, TAG_STREAM_FOOTER = 4, 5, 6
_WITH_STREAM_ID = {TAG_STREAM_HEADER, TAG_SAMPLES, TAG_CLOCK_OFFSET, TAG_STREAM_FOOTER}
_NUMERIC = {
    "float32": "<f4",
    "double64": "<f8",
    "int8": "i1",
    "int16": "<i2",
    "int32": "<i4",
    "int64": "<i8",
}


class DiskFullError(SessionFileError):
    """The disk (or the file size limit) is full; the file was cut back to whole chunks."""


def _varlen(n: int) -> bytes:
    """XDF variable-length integer: 1, 4 or 8 bytes, prefixed by their count."""
    if n < 256:
        return struct.pack("<BB", 1, n)
    if n < 2**32:
        return struct.pack("<BI", 4, n)
    return struct.pack("<BQ", 8, n)


def _chunk(tag: int, content: bytes, stream_id: int | None = None) -> bytes:
    head = struct.pack("<H", tag) + (b"" if stream_id is None else struct.pack("<I", stream_id))
    return _varlen(len(head) + len(content)) + head + content


def samples_content(
    timestamps: np.ndarray, data: np.ndarray | Sequence[Sequence[str]], fmt: str
) -> bytes:
    """The content of a Samples chunk: ``[4][n]`` then per sample ``[8][f64 t][values]``."""
    stamps = np.asarray(timestamps, dtype="<f8")
    n = len(stamps)
    head = struct.pack("<BI", 4, n)
    if fmt == "string":
        parts = [head]
        for t, row in zip(stamps, data, strict=True):
            parts.append(b"\x08" + struct.pack("<d", t))
            for value in row:
                raw = str(value).encode()
                parts.append(_varlen(len(raw)) + raw)
        return b"".join(parts)
    values = np.asarray(data)
    n_ch = values.shape[1]
    record = np.dtype([("n", "u1"), ("t", "<f8"), ("v", _NUMERIC[fmt], (n_ch,))])
    packed = np.empty(n, dtype=record)
    packed["n"], packed["t"], packed["v"] = 8, stamps, values
    return head + packed.tobytes()


class XdfWriter:
    """Append-only XDF file; thread-safe. Refuses to overwrite an existing file."""

    def __init__(self, path: str | Path, *, created: str | None = None) -> None:
        self.path = Path(path)
        try:
            # x: never overwrite; unbuffered, so nothing is left pending after a failed write
            self._file = self.path.open("xb", buffering=0)
        except FileExistsError:
            raise SessionFileError(
                f"{self.path} exists; a recording is never overwritten"
            ) from None
        self._lock = threading.Lock()
        self._good_size = 0
        self.bytes_written = 0
        header = (
            '<?xml version="1.0"?><info><version>1.0</version>'
            f"<datetime>{created or datetime.now(UTC).isoformat()}</datetime>"
            "<writer>eifer-live</writer></info>"
        )
        self._write(b"XDF:" + _chunk(TAG_FILE_HEADER, header.encode()))

    def _write(self, data: bytes) -> None:
        with self._lock:
            if self._file.closed:
                raise SessionFileError(f"{self.path} is closed")
            try:
                view = memoryview(data)
                while view:  # a raw write may stop short at the size limit
                    view = view[self._file.write(view) :]
            except OSError as exc:
                self._cut_back()
                if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                    raise DiskFullError(
                        f"disk full while writing {self.path} ({exc.strerror}); recording stopped, "
                        f"the file keeps the {self._good_size} bytes written before and loads"
                    ) from None
                raise SessionFileError(f"cannot write {self.path}: {exc}") from None
            self._good_size += len(data)
            self.bytes_written = self._good_size

    def _cut_back(self) -> None:
        """Drop a partly written chunk so the file ends on a whole chunk."""
        try:
            self._file.seek(self._good_size)
            self._file.truncate(self._good_size)
        except OSError:
            pass

    def stream_header(self, stream_id: int, info_xml: str) -> None:
        self._write(_chunk(TAG_STREAM_HEADER, info_xml.encode(), stream_id))

    def samples(self, stream_id: int, timestamps: np.ndarray, data: object, fmt: str) -> None:
        if len(timestamps):
            self._write(_chunk(TAG_SAMPLES, samples_content(timestamps, data, fmt), stream_id))  # type: ignore[arg-type]

    def clock_offset(self, stream_id: int, collection_time: float, offset: float) -> None:
        self._write(
            _chunk(TAG_CLOCK_OFFSET, struct.pack("<dd", collection_time, offset), stream_id)
        )

    def boundary(self) -> None:
        self._write(_chunk(TAG_BOUNDARY, BOUNDARY_UUID))

    def stream_footer(
        self,
        stream_id: int,
        first_timestamp: float,
        last_timestamp: float,
        sample_count: int,
        offsets: Sequence[tuple[float, float]] = (),
    ) -> None:
        offset_xml = "".join(
            f"<offset><time>{t!r}</time><value>{v!r}</value></offset>" for t, v in offsets
        )
        xml = (
            '<?xml version="1.0"?><info>'
            f"<first_timestamp>{first_timestamp!r}</first_timestamp>"
            f"<last_timestamp>{last_timestamp!r}</last_timestamp>"
            f"<sample_count>{sample_count}</sample_count>"
            f"<clock_offsets>{offset_xml}</clock_offsets></info>"
        )
        self._write(_chunk(TAG_STREAM_FOOTER, xml.encode(), stream_id))

    def sync(self) -> None:
        """Flush to the OS and to the disk (data reach disk within the recorder's flush period)."""
        with self._lock:
            if not self._file.closed:
                os.fsync(self._file.fileno())

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                try:
                    os.fsync(self._file.fileno())
                finally:
                    self._file.close()

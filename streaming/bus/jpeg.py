"""JPEG images on the bus: encode (OpenCV, libjpeg-turbo) and check without decoding.

A bus consumer must not hand an arbitrary byte string to an image decoder: a few hundred bytes
can claim 65535 x 65535 pixels (a "decompression bomb") or be no JPEG at all. :func:`jpeg_size`
reads only the marker segments up to the frame header (ITU-T T.81, B.1.1.3 and B.2.2: SOI, then
segments ``FF xx <length>``, the SOFn header holding height and width), so the size a message
claims is checked against the picture's own header in microseconds, before anything decodes it.
"""

from __future__ import annotations

import numpy as np

from streaming.errors import PayloadError

__all__ = ["JpegError", "encode_jpeg", "jpeg_size"]

_SOI = b"\xff\xd8"
_EOI = b"\xff\xd9"
# SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC), which share the range (T.81 Table B.1)
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0..7: no length field


class JpegError(PayloadError):
    """Bytes that are not a complete baseline/progressive JPEG with a frame header."""


def jpeg_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from a JPEG's frame header; :class:`JpegError` says what is wrong.

    Also requires the end-of-image marker at the end, so a truncated picture is refused too.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise JpegError(f"a JPEG must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data.startswith(_SOI):
        raise JpegError("not a JPEG (no start-of-image marker FF D8)")
    if not data.endswith(_EOI):
        raise JpegError("truncated JPEG (no end-of-image marker FF D9)")
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise JpegError(f"corrupt JPEG: no marker at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            break
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if length < 2 or i + 2 + length > n:
            raise JpegError(f"corrupt JPEG: segment FF {marker:02X} at byte {i} overruns the data")
        if marker in _SOF_MARKERS:
            if length < 8:
                raise JpegError("corrupt JPEG: frame header too short")
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            if width == 0 or height == 0:
                raise JpegError(f"JPEG frame header gives {width} x {height} pixels")
            return width, height
        i += 2 + length
    raise JpegError("JPEG has no frame header (SOF) before its image data")


def encode_jpeg(rgb: np.ndarray, quality: int = 80) -> bytes:
    """An (H, W, 3) uint8 RGB image as JPEG bytes (4:2:0, baseline)."""
    import cv2

    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {rgb.shape} {rgb.dtype} image as JPEG")
    return buffer.tobytes()

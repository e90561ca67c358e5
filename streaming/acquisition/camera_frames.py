"""The ``Video`` LSL stream contract: one frame per sample, ``width*height*3`` int8 channels.

Frames travel as uint8 RGB bit patterns in an int8 stream (LSL has no uint8 format), one 2-D
chunk per frame (``push_chunk(frame.reshape(1, -1))``: ~1.5 ms for 1280x720 vs ~400 ms through
``push_sample``, DESIGN.md). Layout and capture details live in ``desc``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from streaming.acquisition.lsl_io import desc_to_dict, stream_info
from streaming.errors import StreamFormatError

__all__ = ["decode_frame", "encode_frame", "frame_shape", "video_stream_info"]


def video_stream_info(
    name: str,
    width: int,
    height: int,
    rate_hz: float,
    source_id: str,
    *,
    stype: str = "Video",
    extra: Mapping[str, Any] | None = None,
) -> Any:
    """StreamInfo of a camera stream; frames may be dropped, so pyxdf must not dejitter it."""
    desc = {
        "width": width,
        "height": height,
        "pixel_format": "rgb24",
        "synchronization": {"can_drop_samples": True},
        **(extra or {}),
    }
    return stream_info(name, stype, width * height * 3, rate_hz, "int8", source_id, desc=desc)


def encode_frame(rgb: np.ndarray) -> np.ndarray:
    """An (H, W, 3) uint8 frame as a (1, H*W*3) int8 chunk (a view, no copy)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise StreamFormatError(f"frames must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    return np.ascontiguousarray(rgb).reshape(1, -1).view(np.int8)


def frame_shape(info: Any) -> tuple[int, int]:
    """(height, width) of a ``Video`` stream from its desc; clear error if inconsistent."""
    desc = desc_to_dict(info)
    try:
        width, height = int(desc["width"]), int(desc["height"])
    except (KeyError, TypeError, ValueError):
        raise StreamFormatError(
            f"video stream {info.name()!r} has no width/height in its desc"
        ) from None
    if width * height * 3 != info.channel_count():
        raise StreamFormatError(
            f"video stream {info.name()!r}: {width}x{height}x3 != {info.channel_count()} channels"
        )
    if str(desc.get("pixel_format", "rgb24")) != "rgb24":
        raise StreamFormatError(f"video stream {info.name()!r}: only rgb24 pixels are supported")
    return height, width


def decode_frame(sample: np.ndarray, height: int, width: int) -> np.ndarray:
    """One pulled int8 sample back to an (H, W, 3) uint8 frame (a view, no copy)."""
    return sample.view(np.uint8).reshape(height, width, 3)

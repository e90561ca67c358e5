"""The camera's capture loop: frames of a :class:`FrameSource` as the ``Video`` LSL stream.

Each frame is pushed stamped with its capture time (LSL clock); a RealSense's aligned depth goes
out as a ``Depth`` stream beside it when asked. Frames the camera skipped (gaps in
:attr:`CapturedFrame.index`) are counted, and the capture->push latency logged every
``status_interval_s``. The node (``eifer node camera``) picks the source; this loop is the same
for all of them.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import numpy as np
from pydantic import PositiveFloat

from streaming.acquisition.camera import FrameSource, OpenCVSource, RealSenseSource
from streaming.acquisition.camera_frames import encode_frame, video_stream_info
from streaming.acquisition.lsl_io import ChunkOutlet, stream_info
from streaming.config import Config

__all__ = ["CameraStreamConfig", "stream_frames"]

log = logging.getLogger("eifer.node.camera")


class CameraStreamConfig(Config):
    """The ``Video`` outlet: its name, type, source id and backlog, and the depth stream's name."""

    name: str = "Camera"
    type: str = "Video"
    source_id: str = ""  # "" -> eifer-camera-<source>-<name>-<host>
    depth_name: str = "Depth"
    max_buffered_s: PositiveFloat = 2.0  # frames are big: keep the outlet's backlog short

    def stream_source_id(self, source: str) -> str:
        """``source_id``, or one derived from the source kind, the stream name and the host (as
        the EMG outlet's: two cameras on one host get two source ids)."""
        return self.source_id or f"eifer-camera-{source}-{self.name}-{socket.gethostname()}"


def stream_frames(
    source: FrameSource,
    stream: CameraStreamConfig,
    stop: threading.Event,
    *,
    kind: str,
    depth: bool = False,
    status_interval_s: float = 5.0,
    duration_s: float | None = None,
) -> int:
    """Open ``source`` and push its frames until ``stop`` is set, ``duration_s`` has passed or
    a video file ends; returns frames pushed. ``kind`` names the source (``synthetic``,
    ``opencv``, ...) in the log and the default source id; ``depth`` also streams a
    :class:`RealSenseSource`'s depth. The source and outlets are closed on the way out."""
    source.open()
    source_id = stream.stream_source_id(kind)
    desc = {"camera": source.description}
    info = video_stream_info(
        stream.name, source.width, source.height, source.rate_hz, source_id,
        stype=stream.type, extra=desc,
    )  # fmt: skip
    outlet = ChunkOutlet(info, max_buffered_s=stream.max_buffered_s)
    depth_outlet = None
    if depth and isinstance(source, RealSenseSource):
        depth_info = stream_info(
            stream.depth_name, "Depth", source.width * source.height, source.rate_hz, "int16",
            source_id + "-depth", desc={"width": source.width, "height": source.height, "unit": "mm"},
        )  # fmt: skip
        depth_outlet = ChunkOutlet(depth_info, max_buffered_s=stream.max_buffered_s)
    log.info(
        "camera %s: %dx%d at %g fps as %r (source_id %r)",
        kind, source.width, source.height, source.rate_hz, stream.name, source_id,
    )  # fmt: skip
    pushed, dropped, last_index = 0, 0, None
    push_latency_ms: list[float] = []
    t_end = None if duration_s is None else time.monotonic() + duration_s
    next_status = time.monotonic() + status_interval_s
    import pylsl

    try:
        while not stop.is_set() and (t_end is None or time.monotonic() < t_end):
            frame = source.read()
            if frame is None:
                if isinstance(source, OpenCVSource) and source.is_file:
                    log.info("camera: end of %s", source.device)
                    break
                continue
            if last_index is not None and frame.index > last_index + 1:
                dropped += frame.index - last_index - 1
            last_index = frame.index
            outlet.push(encode_frame(frame.rgb), frame.t_capture_lsl)
            if depth_outlet is not None and frame.depth is not None:
                depth_outlet.push(frame.depth.reshape(1, -1), frame.t_capture_lsl)
            push_latency_ms.append(1e3 * (pylsl.local_clock() - frame.t_capture_lsl))
            pushed += 1
            if time.monotonic() >= next_status:
                next_status += status_interval_s
                lat = np.percentile(push_latency_ms, [50, 99]) if push_latency_ms else [np.nan] * 2
                log.info(
                    "camera: %d frames, %d dropped by the camera, capture->push p50 %.1f ms p99 %.1f ms",
                    pushed, dropped, lat[0], lat[1],
                )  # fmt: skip
                if isinstance(source, RealSenseSource):
                    log.info("camera: capture stamps from %s", source.timestamp_method)
                push_latency_ms.clear()
    finally:
        source.close()
        outlet.close()
        if depth_outlet is not None:
            depth_outlet.close()
    log.info("camera: stopped after %d frames (%d dropped by the camera)", pushed, dropped)
    return pushed

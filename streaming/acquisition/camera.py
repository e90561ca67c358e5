"""Frame sources: every frame with its capture time in LSL time (``pylsl.local_clock`` base).

A frame is stamped when it was captured, never when it is pushed (DESIGN.md): the RealSense source
maps the camera's mid-exposure time into LSL time; the OpenCV and synthetic sources stamp the time
the frame becomes available (a webcam gives no better), paced at the source's rate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from streaming.errors import EiferError
from streaming.optional import require

__all__ = [
    "CapturedFrame",
    "FrameSource",
    "OpenCVSource",
    "RealSenseSource",
    "SyntheticFaceSource",
    "system_to_lsl_offset_s",
]

log = logging.getLogger(__name__)


def _local_clock() -> float:
    import pylsl

    return pylsl.local_clock()


class CameraError(EiferError):
    """A camera cannot be opened or stopped delivering frames."""


@dataclass(frozen=True)
class CapturedFrame:
    """One camera frame with its capture time in LSL time and the camera's frame number."""

    rgb: np.ndarray  # (H, W, 3) uint8
    t_capture_lsl: float
    index: int  # the camera's own frame number (gaps = frames it dropped)
    depth: np.ndarray | None = None  # (H, W) int16 millimetres, aligned to rgb


class FrameSource(Protocol):
    """What the camera node reads frames from; ``read()`` gives None when no frame came (a
    video file: its end)."""

    width: int
    height: int
    rate_hz: float
    description: dict[str, Any]

    def open(self) -> None: ...
    def read(self) -> CapturedFrame | None: ...
    def close(self) -> None: ...


class _Pacer:
    """Real-time pacing against the LSL clock, without drift (each deadline from the first)."""

    def __init__(self, rate_hz: float) -> None:
        self.period_s = 1.0 / rate_hz
        self._t0: float | None = None
        self._n = 0

    def wait(self) -> float:
        now = _local_clock()
        if self._t0 is None:
            self._t0 = now
        due = self._t0 + self._n * self.period_s
        if due < now - 1.0:  # far behind (suspended, debugger): restart the schedule
            self._t0, self._n, due = now, 0, now
        if due > now:
            time.sleep(due - now)
        self._n += 1
        return due


class SyntheticFaceSource:
    """A real face photograph (``skimage.data.astronaut``) moving gently, paced in real time.

    Small head motion (a few pixels of translation, slight zoom) and slow brightness changes give
    tracking and the pipeline something real to see, deterministically.
    """

    def __init__(self, width: int = 640, height: int = 480, rate_hz: float = 30.0) -> None:
        self.width, self.height, self.rate_hz = width, height, rate_hz
        self.description: dict[str, Any] = {"source": "synthetic", "model": "skimage astronaut"}
        self._pacer = _Pacer(rate_hz)
        self._index = 0
        self._base: np.ndarray | None = None

    def open(self) -> None:
        import cv2
        from skimage import data

        # 512x512 RGB; the face (Haar box ~(177, 66, 95, 95)) sits near the top: frame a 4:3
        # portrait around it, as a camera facing a seated participant would
        photo = data.astronaut()[0:270, 44:404]
        margin = 1.15  # room for the motion
        scale = max(self.width / photo.shape[1], self.height / photo.shape[0]) * margin
        self._base = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)

    def _frame(self, k: int) -> np.ndarray:
        import cv2

        assert self._base is not None
        t = k / self.rate_hz
        dx = 0.02 * self.width * np.sin(2 * np.pi * 0.13 * t)
        dy = 0.015 * self.height * np.sin(2 * np.pi * 0.07 * t + 1.0)
        zoom = 1.0 + 0.02 * np.sin(2 * np.pi * 0.05 * t)
        h, w = self._base.shape[:2]
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 2.0 * np.sin(2 * np.pi * 0.1 * t), zoom)
        matrix[:, 2] += [dx - (w - self.width) / 2, dy - (h - self.height) / 2]
        frame = cv2.warpAffine(
            self._base, matrix, (self.width, self.height), borderMode=cv2.BORDER_REFLECT
        )
        gain = 1.0 + 0.05 * np.sin(2 * np.pi * 0.03 * t)
        return cv2.convertScaleAbs(frame, alpha=gain)

    def read(self) -> CapturedFrame | None:
        if self._base is None:
            raise CameraError("synthetic source read before open()")
        t = self._pacer.wait()
        frame = CapturedFrame(self._frame(self._index), t, self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        self._base = None


class OpenCVSource:
    """A webcam (by index) or a video file through ``cv2.VideoCapture``; files are paced in
    real time at their own frame rate and can loop."""

    def __init__(
        self,
        device: int | str,
        *,
        width: int | None = None,
        height: int | None = None,
        rate_hz: float | None = None,
        loop: bool = False,
    ) -> None:
        self.device = device
        self.is_file = isinstance(device, str) and not device.isdigit()
        self.loop = loop
        self._requested = (width, height, rate_hz)
        self.width = width or 0
        self.height = height or 0
        self.rate_hz = rate_hz or 30.0
        self.description: dict[str, Any] = {"source": "opencv", "device": str(device)}
        self._capture: Any = None
        self._pacer: _Pacer | None = None
        self._index = 0

    def open(self) -> None:
        import cv2

        if self.is_file and not Path(str(self.device)).is_file():
            raise CameraError(f"video file not found: {self.device}")
        target = (
            int(self.device)
            if isinstance(self.device, str) and self.device.isdigit()
            else self.device
        )
        capture = cv2.VideoCapture(target)
        if not capture.isOpened():
            raise CameraError(
                f"OpenCV cannot open {'file' if self.is_file else 'camera'} {self.device!r}"
            )
        width, height, rate = self._requested
        if not self.is_file:
            if width:
                capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            if height:
                capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if rate:
                capture.set(cv2.CAP_PROP_FPS, rate)
        self.width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.rate_hz = float(rate or (fps if fps and fps > 0 else 30.0))
        self._capture = capture
        self._pacer = _Pacer(self.rate_hz) if self.is_file else None

    def read(self) -> CapturedFrame | None:
        import cv2

        if self._capture is None:
            raise CameraError("OpenCV source read before open()")
        ok, bgr = self._capture.read()
        if not ok and self.is_file and self.loop:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._capture.read()
        if not ok:
            return None
        t = self._pacer.wait() if self._pacer is not None else _local_clock()
        if bgr.shape[1] != self.width or bgr.shape[0] != self.height:
            bgr = cv2.resize(bgr, (self.width, self.height))
        frame = CapturedFrame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), t, self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def apply_sensor_options(sensors: Sequence[Any], options: Mapping[str, float]) -> dict[str, float]:
    """Set RealSense hardware options (``rs.option`` names, e.g. ``enable_auto_exposure = 0``,
    ``exposure = 166``) on every sensor that supports them; returns what was set.

    A name no sensor supports or a value outside the sensor's range is a :class:`CameraError`
    naming the option, the sensors and the valid range.
    """
    import pyrealsense2 as rs

    applied: dict[str, float] = {}
    for name, value in options.items():
        option = getattr(rs.option, name, None)
        if not isinstance(option, rs.option):
            raise CameraError(f"unknown RealSense option {name!r} (see pyrealsense2.option)")
        targets = [sensor for sensor in sensors if sensor.supports(option)]
        if not targets:
            names = [sensor.get_info(rs.camera_info.name) for sensor in sensors]
            raise CameraError(f"RealSense option {name!r} is supported by none of {names}")
        for sensor in targets:
            valid = sensor.get_option_range(option)
            try:
                sensor.set_option(option, float(value))
            except RuntimeError as exc:
                raise CameraError(
                    f"RealSense option {name}={value} rejected by "
                    f"{sensor.get_info(rs.camera_info.name)} ({exc}); valid: {valid.min:g}.."
                    f"{valid.max:g} step {valid.step:g}"
                ) from None
        applied[name] = float(value)
    return applied


def system_to_lsl_offset_s(samples: int = 9) -> float:
    """``time.time() - local_clock()``, from back-to-back reads (the tightest of ``samples``)."""
    best: tuple[float, float] | None = None
    for _ in range(samples):
        a = _local_clock()
        wall = time.time()
        b = _local_clock()
        if best is None or b - a < best[0]:
            best = (b - a, wall - (a + b) / 2)
    assert best is not None
    return best[1]


class RealSenseSource:
    """Intel RealSense colour (default 1280x720 @ 30 fps, D415) with optional aligned depth.

    Capture time: with global time enabled the frame timestamp is in the host's system clock;
    where the firmware gives both metadata values, ``sensor_timestamp - frame_timestamp`` (camera
    clock, microseconds) moves it from the start of the USB transfer to mid-exposure
    (librealsense frame metadata docs). The system time is mapped to LSL time with an offset
    measured back to back (:func:`system_to_lsl_offset_s`). Frames whose timestamp is in the
    camera's hardware clock fall back to the host arrival time; ``timestamp_method`` says which
    was used and the node logs it.
    """

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        rate_hz: float = 30.0,
        *,
        depth: bool = False,
        serial: str = "",
        options: Mapping[str, float] | None = None,
    ) -> None:
        self.width, self.height, self.rate_hz = width, height, rate_hz
        self.depth_enabled = depth
        self.serial = serial
        self.options = dict(options or {})
        self.description: dict[str, Any] = {"source": "realsense"}
        self._pipeline: Any = None
        self._align: Any = None
        self._offset_s = 0.0
        self.timestamp_method = "unknown"

    def open(self) -> None:
        rs = require("pyrealsense2", "realsense", "the RealSense camera source")
        devices = list(rs.context().query_devices())
        if not devices:
            raise CameraError(
                "no RealSense camera connected (rs.context().query_devices() is empty)"
            )
        found = {d.get_info(rs.camera_info.serial_number): d for d in devices}
        if self.serial and self.serial not in found:
            raise CameraError(f"RealSense {self.serial} not connected; connected: {sorted(found)}")
        serial = self.serial or next(iter(found))
        device = found[serial]
        for sensor in device.query_sensors():
            if sensor.supports(rs.option.global_time_enabled):
                sensor.set_option(rs.option.global_time_enabled, 1)
        applied = apply_sensor_options(device.query_sensors(), self.options)
        config = rs.config()
        config.enable_device(serial)
        config.enable_stream(
            rs.stream.color, self.width, self.height, rs.format.rgb8, int(self.rate_hz)
        )
        if self.depth_enabled:
            config.enable_stream(
                rs.stream.depth, self.width, self.height, rs.format.z16, int(self.rate_hz)
            )
            self._align = rs.align(rs.stream.color)
        self._pipeline = rs.pipeline()
        try:
            self._pipeline.start(config)
        except RuntimeError as exc:
            raise CameraError(
                f"RealSense {serial}: cannot stream {self.width}x{self.height}@{self.rate_hz:g} "
                f"({exc}); the D415 gives 60 fps colour only at 960x540 or less"
            ) from None
        self._offset_s = system_to_lsl_offset_s()
        self.description = {
            "source": "realsense",
            "serial": serial,
            "model": device.get_info(rs.camera_info.name),
            "firmware": device.get_info(rs.camera_info.firmware_version),
            "options": applied,
        }

    def capture_time_lsl(self, frame: Any, arrival_lsl: float) -> float:
        """Mid-exposure time of a colour frame in LSL time (see the class docstring)."""
        import pyrealsense2 as rs

        domain = frame.get_frame_timestamp_domain()
        if domain == rs.timestamp_domain.hardware_clock:
            self.timestamp_method = "arrival"
            return arrival_lsl
        t_system = frame.get_timestamp() / 1e3
        sensor, start = (
            rs.frame_metadata_value.sensor_timestamp,
            rs.frame_metadata_value.frame_timestamp,
        )
        if frame.supports_frame_metadata(sensor) and frame.supports_frame_metadata(start):
            t_system += (frame.get_frame_metadata(sensor) - frame.get_frame_metadata(start)) / 1e6
            self.timestamp_method = "mid-exposure"
        else:
            self.timestamp_method = "frame-timestamp"
        return t_system - self._offset_s

    def to_captured(self, color: Any, depth: Any | None, arrival_lsl: float) -> CapturedFrame:
        rgb = np.asanyarray(color.get_data()).copy()
        depth_mm = None
        if depth is not None:
            units_mm = depth.get_units() * 1000 if hasattr(depth, "get_units") else 1.0
            raw = np.asanyarray(depth.get_data()).astype(np.float32) * units_mm
            depth_mm = np.clip(raw, 0, np.iinfo(np.int16).max).astype(np.int16)
        return CapturedFrame(
            rgb, self.capture_time_lsl(color, arrival_lsl), int(color.get_frame_number()), depth_mm
        )

    def read(self) -> CapturedFrame | None:
        if self._pipeline is None:
            raise CameraError("RealSense source read before open()")
        try:
            frames = self._pipeline.wait_for_frames(timeout_ms=2000)
        except RuntimeError as exc:
            raise CameraError(f"RealSense stopped delivering frames ({exc})") from None
        arrival = _local_clock()
        if self._align is not None:
            frames = self._align.process(frames)
        color = frames.get_color_frame()
        if not color:
            return None
        depth = frames.get_depth_frame() if self.depth_enabled else None
        return self.to_captured(color, depth, arrival)

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.stop()
            self._pipeline = None

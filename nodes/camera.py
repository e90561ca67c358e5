"""``eifer node camera``: frames from a RealSense, a webcam/video file or a synthetic face, as the
``Video`` LSL stream, each stamped with its capture time."""

from __future__ import annotations

import argparse
import logging
import socket
import threading
import time
from typing import Literal

import numpy as np
from pydantic import Field, PositiveFloat, PositiveInt

from configs import config_path
from nodes.common import add_config_arguments, load_node_config, seconds, stop_on_signals
from simulation.participant.camera_source import ParticipantSource, ParticipantSourceConfig
from streaming.acquisition.camera import (
    FrameSource,
    OpenCVSource,
    RealSenseSource,
    SyntheticFaceSource,
)
from streaming.acquisition.camera_frames import encode_frame, video_stream_info
from streaming.acquisition.lsl_io import ChunkOutlet, configure_lsl, stream_info
from streaming.config import Config, ConfigError

log = logging.getLogger("eifer.node.camera")


class CameraStreamConfig(Config):
    name: str = "Camera"
    type: str = "Video"
    source_id: str = ""  # "" -> eifer-camera-<source>-<host>
    depth_name: str = "Depth"
    max_buffered_s: PositiveFloat = 2.0  # frames are big: keep the outlet's backlog short


class CameraNodeConfig(Config):
    source: Literal["synthetic", "opencv", "realsense", "participant"] = "synthetic"
    width: PositiveInt = 1280  # RealSense D415 colour: 1280x720 at up to 30 fps (DESIGN.md)
    height: PositiveInt = 720
    rate_hz: PositiveFloat = 30.0
    device: str = "0"  # opencv: camera index or video file path
    loop: bool = False  # opencv file: start again at the end
    depth: bool = False  # realsense: also stream aligned depth (int16 mm) as `Depth`
    serial: str = ""  # realsense: which camera ("" = the first)
    options: dict[str, float] = Field(default_factory=dict)  # realsense: rs.option name -> value
    stream: CameraStreamConfig = Field(default_factory=CameraStreamConfig)
    participant: ParticipantSourceConfig = Field(default_factory=ParticipantSourceConfig)
    occlusion: str = "none"  # participant: draw a scheme's electrodes ("fridlund", "kuramoto")
    status_interval_s: PositiveFloat = 5.0


def make_source(config: CameraNodeConfig) -> FrameSource:
    if config.source == "participant":  # + its truth stream, <name>-truth
        return ParticipantSource(
            config.participant, config.width, config.height, config.rate_hz,
            occlusion=config.occlusion, truth_name=f"{config.stream.name}-truth",
            of_stream=config.stream.name,
        )  # fmt: skip
    if config.source == "synthetic":
        return SyntheticFaceSource(config.width, config.height, config.rate_hz)
    if config.source == "opencv":
        return OpenCVSource(
            config.device,
            width=config.width,
            height=config.height,
            rate_hz=config.rate_hz,
            loop=config.loop,
        )
    return RealSenseSource(
        config.width, config.height, config.rate_hz, depth=config.depth, serial=config.serial,
        options=config.options,
    )  # fmt: skip


def run_camera(
    config: CameraNodeConfig, stop: threading.Event, duration_s: float | None = None
) -> int:
    """Stream frames until ``stop`` is set (or ``duration_s``); returns frames pushed."""
    source = make_source(config)
    source.open()
    source_id = config.stream.source_id or f"eifer-camera-{config.source}-{socket.gethostname()}"
    desc = {"camera": source.description}
    info = video_stream_info(
        config.stream.name, source.width, source.height, source.rate_hz, source_id,
        stype=config.stream.type, extra=desc,
    )  # fmt: skip
    outlet = ChunkOutlet(info, max_buffered_s=config.stream.max_buffered_s)
    depth_outlet = None
    if config.depth and config.source == "realsense":
        depth_info = stream_info(
            config.stream.depth_name, "Depth", source.width * source.height, source.rate_hz, "int16",
            source_id + "-depth", desc={"width": source.width, "height": source.height, "unit": "mm"},
        )  # fmt: skip
        depth_outlet = ChunkOutlet(depth_info, max_buffered_s=config.stream.max_buffered_s)
    log.info(
        "camera %s: %dx%d at %g fps as %r (source_id %r)",
        config.source, source.width, source.height, source.rate_hz, config.stream.name, source_id,
    )  # fmt: skip
    pushed, dropped, last_index = 0, 0, None
    push_latency_ms: list[float] = []
    t_end = None if duration_s is None else time.monotonic() + duration_s
    next_status = time.monotonic() + config.status_interval_s
    import pylsl

    try:
        while not stop.is_set() and (t_end is None or time.monotonic() < t_end):
            frame = source.read()
            if frame is None:
                if isinstance(source, OpenCVSource) and source.is_file:
                    log.info("camera: end of %s", config.device)
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
                next_status += config.status_interval_s
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, example="rate_hz=60", default="configs/nodes/camera.toml")
    parser.add_argument(
        "--source",
        choices=["synthetic", "opencv", "realsense", "participant"],
        help="override `source`",
    )
    parser.add_argument("--name", help="output stream name (default Camera)")
    parser.add_argument("--device", help="opencv: camera index or video file")
    parser.add_argument("--size", help="WIDTHxHEIGHT, e.g. 640x480")
    parser.add_argument("--duration", type=seconds, help="stop after this many seconds")


def parse_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` (e.g. ``640x480``) as two positive integers."""
    width, sep, height = text.lower().partition("x")
    if not (sep and width.strip().isdigit() and height.strip().isdigit()) or not (
        int(width) > 0 and int(height) > 0
    ):
        raise ConfigError(f"--size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 640x480")
    return int(width), int(height)


def config_from_args(args: argparse.Namespace) -> CameraNodeConfig:
    """The shipped file (or ``--config``), ``--set``, then the typed flags."""
    width, height = parse_size(args.size) if args.size else (None, None)
    flags = {
        "source": ("--source", args.source),
        "stream.name": ("--name", args.name),
        "device": ("--device", args.device),
        "width": ("--size", width),
        "height": ("--size", height),
    }
    return load_node_config(
        CameraNodeConfig, args, default=config_path("nodes", "camera.toml"), flags=flags
    )


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    configure_lsl()
    stop = threading.Event()
    stop_on_signals(stop.set)
    run_camera(config, stop, args.duration)
    return 0

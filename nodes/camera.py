"""``eifer node camera``: frames from a RealSense, a webcam/video file or a synthetic face, as the
``Video`` LSL stream, each stamped with its capture time.

A thin shell over the library: the node picks the source; the capture loop is
:func:`streaming.acquisition.camera_stream.stream_frames`.
"""

from __future__ import annotations

import argparse
import threading
from typing import Literal

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
from streaming.acquisition.camera_stream import CameraStreamConfig, stream_frames
from streaming.acquisition.lsl_io import configure_lsl
from streaming.config import Config, ConfigError


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
    return stream_frames(
        make_source(config), config.stream, stop, kind=config.source,
        depth=config.depth and config.source == "realsense",
        status_interval_s=config.status_interval_s, duration_s=duration_s,
    )  # fmt: skip


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

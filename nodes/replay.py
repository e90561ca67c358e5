"""``eifer replay PATH``: a session folder or any XDF file played back as LSL streams.

A thin shell over :mod:`streaming.recording.replay`: loads the recording, prints what it will play,
then plays it with a progress line until the end (or Ctrl-C).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from configs import config_path
from nodes.common import add_config_arguments, load_node_config, offset_seconds, stop_on_signals
from streaming.acquisition.lsl_io import configure_lsl
from streaming.config import ConfigError
from streaming.recording.replay import Player, ReplayConfig, print_progress
from streaming.recording.session_reader import load_recording

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="session folder (session.xdf + videos) or an XDF file")
    add_config_arguments(parser, example="chunk_ms=5", default="configs/nodes/replay.toml")
    parser.add_argument("--speed", help='speed factor (e.g. 0.5, 2, 10) or "max"')
    parser.add_argument("--loop", action="store_true", help="loop until stopped")
    parser.add_argument(
        "--start", type=offset_seconds, metavar="S", help="start S seconds into the file"
    )
    parser.add_argument(
        "--stop", type=offset_seconds, metavar="S", help="stop S seconds into the file"
    )
    parser.add_argument(
        "--stream",
        action="append",
        default=[],
        metavar="NAME_OR_TYPE",
        help="replay only this stream (name or type; repeatable)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def _speed(text: str | None) -> float | str | None:
    if text is None or text == "max":
        return text
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f'--speed {text!r}: expected a factor (e.g. 0.5, 2) or "max"') from None


def load_replay_config(args: argparse.Namespace) -> ReplayConfig:
    """Config file (default: the shipped one), then ``--set``, then the short options."""
    flags = {
        "speed": ("--speed", _speed(args.speed)),
        "repeat": ("--loop", 0 if args.loop else None),
        "start_s": ("--start", args.start),
        "stop_s": ("--stop", args.stop),
        "streams": ("--stream", list(args.stream) or None),
    }
    default = config_path("nodes", "replay.toml")
    return load_node_config(ReplayConfig, args, default=default, flags=flags)


def run(args: argparse.Namespace) -> int:
    config = load_replay_config(args)
    configure_lsl()
    recording = load_recording(args.path)
    player = Player(recording, config, on_progress=None if args.quiet else _progress)
    for track in player.timeline.tracks:
        s = track.stream
        what = (
            f"video {s.video.path.name}" if s.video else f"{s.channel_count} ch {s.channel_format}"
        )
        log.info(
            "replaying %r (type %r, %s, %g Hz): %d samples",
            s.out_name + config.name_suffix,
            s.out_type,
            what,
            s.rate_hz,
            len(track.times),
        )
    stop_on_signals(player.stop)
    player.run()
    return 0


def _progress(progress: Any) -> None:
    print_progress(progress)

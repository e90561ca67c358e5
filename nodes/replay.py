"""``eifer replay PATH``: a session folder or any XDF file played back as LSL streams.

A thin shell over :mod:`streaming.replay`: loads the recording, prints what it will play, then
plays it with a progress line until the end (or Ctrl-C).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from configs import config_path
from nodes.common import add_config_arguments, stop_on_signals
from streaming.config import load_config
from streaming.lsl_io import configure_lsl
from streaming.replay import Player, ReplayConfig, load_recording, print_progress

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="session folder (session.xdf + videos) or an XDF file")
    add_config_arguments(parser)
    parser.add_argument("--speed", help='speed factor (e.g. 0.5, 2, 10) or "max"')
    parser.add_argument("--loop", action="store_true", help="loop until stopped")
    parser.add_argument("--start", type=float, metavar="S", help="start S seconds into the file")
    parser.add_argument("--stop", type=float, metavar="S", help="stop S seconds into the file")
    parser.add_argument(
        "--stream",
        action="append",
        default=[],
        metavar="NAME_OR_TYPE",
        help="replay only this stream (name or type; repeatable)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def load_replay_config(args: argparse.Namespace) -> ReplayConfig:
    """Config file (default: the shipped one), then ``--set``, then the short options."""
    path = args.config if args.config is not None else config_path("nodes", "replay.toml")
    overrides = list(args.overrides)
    if args.speed is not None:
        overrides.append(f"speed={args.speed}" if args.speed != "max" else 'speed="max"')
    if args.loop:
        overrides.append("repeat=0")
    if args.start is not None:
        overrides.append(f"start_s={args.start}")
    if args.stop is not None:
        overrides.append(f"stop_s={args.stop}")
    if args.stream:
        overrides.append("streams=[" + ", ".join(f'"{s}"' for s in args.stream) + "]")
    return load_config(ReplayConfig, path, overrides)


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

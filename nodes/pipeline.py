"""``eifer pipeline``: synchronise EMG and video, run the models, publish on the bus."""

from __future__ import annotations

import argparse
import logging

from nodes.common import add_config_arguments, count, load_node_config, stop_on_signals
from streaming.acquisition.lsl_io import configure_lsl
from streaming.pipeline.pipeline import FrameModels, Pipeline, PipelineConfig

log = logging.getLogger("eifer.pipeline")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, example="emg.mains_hz=60")
    parser.add_argument("--bundle", help="model bundle folder (overrides models.bundle)")
    parser.add_argument("--profile", help="participant profile JSON (overrides profile)")
    parser.add_argument("--frames", type=count, help="stop after this many frames")
    parser.add_argument(
        "--quality",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="publish the electrode-quality topic (overrides quality.enabled; default: on)",
    )


def build_models(config: PipelineConfig) -> FrameModels | None:
    """The model stage for ``config.models`` (None without a bundle)."""
    if not config.models.bundle:
        return None
    from eifer_models.live import FramePredictor

    return FramePredictor.from_config(config.models)


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.bundle:
        overrides.append(f'models.bundle="{args.bundle}"')
    if args.profile:
        overrides.append(f'profile="{args.profile}"')
    if args.quality is not None:
        overrides.append(f"quality.enabled={str(args.quality).lower()}")
    args.overrides = overrides
    config = load_node_config(PipelineConfig, args)
    configure_lsl()
    pipeline = Pipeline(config, models=build_models(config))
    stop_on_signals(pipeline.stop)
    log.info("publishing on %s", pipeline.publisher.address)
    pipeline.run(max_frames=args.frames)
    return 0

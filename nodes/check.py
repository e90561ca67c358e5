"""``eifer check``: watch the live system for a fixed time and judge it (README "Checking a
setup"); exit status 1 when a threshold fails, so a lab can put it in a pre-session checklist."""

from __future__ import annotations

import argparse
import json
from typing import Any

from nodes.common import add_config_arguments, load_node_config, seconds
from streaming.acquisition.lsl_io import configure_lsl
from streaming.check.collect import observe
from streaming.check.config import CheckConfig
from streaming.check.report import as_json, evaluate, format_table, passed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, example="thresholds.min_published_fraction=0.9")
    parser.add_argument("--seconds", type=seconds, help="how long to watch (default 10)")
    parser.add_argument("--bus", help="the pipeline's bus address (bus_address)")
    parser.add_argument(
        "--secret-key", help="CURVE: this subscriber's NAME.key_secret (bus_curve.secret_key)"
    )
    parser.add_argument(
        "--server-key", help="CURVE: the pipeline's public NAME.key (bus_curve.server_key)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument(
        "--bundle",
        help="the pipeline's model bundle: correlations of untrained models are reported, "
        "not judged (bundle)",
    )


def trained_parts(manifest: Any) -> tuple[bool, bool]:
    """``(encoders trained, MLPs trained)`` from a bundle manifest: the explicit
    ``training.encoders_trained`` / ``mlps_trained`` where given (the demo bundle), else the
    provenance strings the trainers write (``encoders = "UNTRAINED ..."``: phase 2 with random
    encoders; ``mlps = "untrained ..."``: a phase-1 bundle, ``trained = false`` for its MLPs),
    else ``trained`` for both."""
    training = manifest.training

    def said(key: str, text_key: str, untrained_prefix: str) -> bool | None:
        if isinstance(training.get(key), bool):
            return bool(training[key])
        text = training.get(text_key)
        if isinstance(text, str) and text.lower().startswith(untrained_prefix):
            return False
        return None

    mlps = said("mlps_trained", "mlps", "untrained")
    encoders = said("encoders_trained", "encoders", "untrained")
    if encoders is None:  # a phase-1 bundle: trained = false speaks for its MLPs only
        encoders = True if mlps is False else manifest.trained
    return encoders, manifest.trained if mlps is None else mlps


def judge_trained_models_only(config: CheckConfig) -> tuple[CheckConfig, list[str]]:
    """With ``bundle``: the correlations of models its manifest calls untrained are reported,
    not judged (the demo's encoders; a phase-1 bundle's MLPs; a random bundle). Returns the
    config and, as notes, what it decided."""
    if not config.bundle:
        return config, []
    from eifer_models.bundle import load_bundle

    manifest = load_bundle(config.bundle, verify=False).manifest
    encoders_trained, mlps_trained = trained_parts(manifest)
    limits = config.thresholds
    limits = limits.model_copy(
        update={
            "judge_video_models": limits.judge_video_models and encoders_trained,
            "judge_emg_models": limits.judge_emg_models and mlps_trained,
        }
    )
    notes = [f"bundle {config.bundle}: " + manifest.description]
    if not encoders_trained:
        notes.append("encoders untrained: emg_from_video and phi_video are reported, not judged")
    if not mlps_trained:
        notes.append("MLPs untrained: phi_emg and emg_from_video are reported, not judged")
    return config.model_copy(update={"thresholds": limits}), notes


def run(args: argparse.Namespace) -> int:
    config = load_node_config(
        CheckConfig,
        args,
        flags={
            "seconds": ("--seconds", args.seconds),
            "bus_address": ("--bus", args.bus),
            "bus_curve.secret_key": ("--secret-key", args.secret_key),
            "bus_curve.server_key": ("--server-key", args.server_key),
            "bundle": ("--bundle", args.bundle),
        },
    )
    config, notes = judge_trained_models_only(config)
    configure_lsl()
    observation = observe(config)
    rows = evaluate(observation, config.thresholds)
    observation.notes[:0] = notes
    if args.json:
        print(json.dumps(as_json(rows, observation), indent=2))
    else:
        print(format_table(rows))
        for note in observation.notes:
            print(f"note: {note}")
    return 0 if passed(rows) else 1

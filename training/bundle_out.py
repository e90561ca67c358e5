"""The bundle a phase-2 run writes: trained MLPs, given (or demo) encoders, provenance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from eifer_models.bundle import Bundle, load_bundle, save_bundle
from eifer_models.encoders import N_EXP, N_SHAPE, FaceEncoder, SmirkEncoder
from training.config import MlpConfig
from training.dataset import TrainingSet
from training.errors import RunError
from training.loop import FoldModels

__all__ = ["write_bundle"]


def _encoders(config: MlpConfig, dim: int) -> tuple[FaceEncoder, str, dict[str, Any] | None]:
    """The encoders, where they came from, and the crop they read (None: the default)."""
    crop = None
    if config.encoders_bundle:
        source = load_bundle(config.encoders_bundle)
        crop = source.manifest.crop.model_dump()
        graph = source.build_module("encoders")
        encoder = graph.encoder  # EncoderGraph wraps the FaceEncoder
        if not isinstance(encoder, FaceEncoder):
            raise RunError(f"{config.encoders_bundle}: the encoders graph holds no encoder")
        origin = f"encoders from bundle {config.encoders_bundle} ({source.summary()})"
    else:  # phase 1 (the encoders' trainer) is the next issue: seeded random encoders until then
        torch.manual_seed(config.seed)
        encoder = SmirkEncoder(N_EXP, N_SHAPE).eval()
        origin = "UNTRAINED random encoders (seeded); give encoders_bundle for trained ones"
    if encoder.expression_dim != dim:
        raise RunError(
            f"encoders give phi of {encoder.expression_dim}, the MLPs were trained on {dim}"
        )
    return encoder, origin, crop


def write_bundle(
    path: Path, models: FoldModels, config: MlpConfig, ts: TrainingSet,
    run_info: dict[str, Any], headline: dict[str, Any],
) -> Bundle:  # fmt: skip
    """A verified bundle with the final MLPs, the training set's EMG feature and channels, the
    run's normalisation method, and provenance (training-set hash, config, git commit, metrics).
    ``trained`` is true: the MLPs are trained (the encoders' origin is stated in the manifest)."""
    encoder, origin, crop = _encoders(config, models.emg2exp.n_out)
    return save_bundle(
        path, encoder, models.emg2exp, models.exp2emg,
        emg_channels=ts.channels, feature=ts.index["feature"], trained=True,
        producer=f"training.mlp (eifer train mlp), git {run_info['git_commit']}",
        description=f"phase-2 MLPs trained on {ts.path.name}; {origin}",
        fp16_onnx=config.fp16_onnx,
        crop=crop,
        training={
            "phase": 2,
            "dataset": run_info["dataset"],
            "config": run_info["config"],
            "git_commit": run_info["git_commit"],
            "folds": run_info["folds"],
            "metrics": headline,
            "encoders": origin,
        },
        emg_normalisation=config.normalisation,
    )  # fmt: skip

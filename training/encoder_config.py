"""Configs of the encoders' trainer (``configs/training/encoders*.toml``, ``phase1*.toml``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt

from streaming.config import Config
from training.augment import AugmentConfig

__all__ = ["EncodersConfig", "FaceDataConfig", "Phase1Config"]


class FaceDataConfig(Config):
    """Synthetic participants rendered as face pairs (training.face_pairs)."""

    train_participants: list[int] = [101, 102, 103, 104, 105, 106, 107, 108]
    heldout_participants: list[int] = [201, 202, 203]  # never trained on: the evaluation
    frames_per_participant: PositiveInt = 200
    crop_size: PositiveInt = 224  # the bundle's encoders take 224
    cache_dir: str = "training_sets/face_pairs"
    seed: int = 0
    # processes rendering participants in parallel (one cache file per participant); 0: one
    # per CPU core (a GPU machine's 16 cores render the 224 px protocol in about a minute)
    render_workers: int = Field(1, ge=0)


class EncodersConfig(Config):
    """``eifer train encoders --supervised``: regress pose (rotation + camera), shape and phi
    from the crop with the truth as targets, SMIRK's pre-training stand-in (SMIRK
    ``config_pretrain.yaml``: lr 2e-4, encoders at 0.25 lr; Adam, cosine)."""

    data: FaceDataConfig = FaceDataConfig()
    output: str = "runs"
    run_name: str = ""
    views: Literal["free", "occluded", "both"] = "free"  # (b) of the comparison: occlusion-free
    init_checkpoint: str = ""  # SMIRK_em1.pt: start from it (recorded in the provenance)
    epochs: PositiveInt = 30
    batch_size: PositiveInt = 16
    lr: PositiveFloat = 5e-5  # SMIRK: 0.25 x 2e-4 for the encoders
    weight_decay: float = Field(0.0, ge=0.0)
    # loss weights: phi (expression, eyelids, jaw), rotation, camera, shape (1e-2: 300 values)
    w_phi: float = 1.0
    w_rotation: float = 10.0
    w_cam: float = 1.0
    w_shape: float = 1e-2
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "auto"
    threads: int = Field(0, ge=0)  # torch CPU threads; 0 = torch's default
    untrained: bool = False  # zero epochs: the seeded untrained encoders ((a) of the comparison)


class Phase1Config(Config):
    """``eifer train phase1``: EIFER's two cycles (CSN, CNS), three stages (supplement: 10/5/5
    epochs; two AdamW lr 2e-4, weight decay 1e-3, cosine annealing; batch 1; 10 % of the
    frames for fine-tuning, split 80/20 train/validation)."""

    data: FaceDataConfig = FaceDataConfig()
    encoders: str = ""  # run folder of `eifer train encoders` (its encoders.pt) to start from
    output: str = "runs"
    run_name: str = ""
    stage_epochs: list[PositiveInt] = [10, 5, 5]
    # appearance-pixel fraction per stage (EIFER: many, then fewer; values are this project's)
    pixel_fractions: list[float] = [0.05, 0.05, 0.01]
    finetune_fraction: float = Field(0.1, gt=0.0, le=1.0)
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    lr: PositiveFloat = 2e-4
    weight_decay: float = Field(1e-3, ge=0.0)
    generator_features: PositiveInt = 64  # EIFER: ResNet, 9 blocks, 64 features
    generator_blocks: PositiveInt = 9
    discriminator_features: PositiveInt = 64
    # loss weights (EIFER's are not published): adversarial, parameter cycle, image cycle (L1)
    w_gan: float = 1.0
    w_param_cycle: float = 1.0
    w_image_cycle: float = 10.0
    augment: AugmentConfig = AugmentConfig()
    samples_per_epoch: int = Field(4, ge=0)  # sample images written each epoch
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "auto"
    threads: int = Field(0, ge=0)

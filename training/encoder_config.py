"""Configs of the encoders' trainer (``configs/training/encoders*.toml``, ``phase1*.toml``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PositiveFloat, PositiveInt, model_validator

from streaming.config import Config
from training.augment import AugmentConfig

__all__ = ["EncodersConfig", "FaceDataConfig", "Phase1Config"]


def _seeds(value: Any) -> Any:
    """Participant seeds: integers, or ``"first..last"`` strings for inclusive ranges."""
    if not isinstance(value, list):
        return value
    out: list[Any] = []
    for item in value:
        if isinstance(item, str) and ".." in item:
            first, _, last = item.partition("..")
            try:
                lo, hi = int(first), int(last)
            except ValueError:
                raise ValueError(f"{item!r}: a range is 'first..last' (integers)") from None
            if hi < lo:
                raise ValueError(f"{item!r}: empty range")
            out.extend(range(lo, hi + 1))
        else:
            out.append(item)
    return out


Seeds = Annotated[list[int], BeforeValidator(_seeds)]


class FaceDataConfig(Config):
    """Synthetic participants rendered as face pairs (training.face_pairs); participant lists
    take seeds and ``"first..last"`` ranges. Held-out seeds must not be training seeds."""

    train_participants: Seeds = [101, 102, 103, 104, 105, 106, 107, 108]
    heldout_participants: Seeds = [201, 202, 203]  # never trained on: the evaluation
    frames_per_participant: PositiveInt = 200
    crop_size: PositiveInt = 224  # the bundle's encoders take 224
    cache_dir: str = "training_sets/face_pairs"
    # the crop: a square of crop_scale x the face box's longer side; crop_jitter draws each
    # frame's scale and centre shift up to +-crop_jitter of that (0: the exact box), so an
    # encoder learns to read the boxes a live detector gives, not one exact framing
    crop_scale: float = Field(1.4, gt=0.5, le=4.0)
    crop_jitter: float = Field(0.0, ge=0.0, le=0.3)
    # box: the true face box, the face rasterised at crop_size (the bundle's margin is then
    # calibrated to BlazeFace's box, training.crop_calibration); detector: frames rendered at a
    # camera's size and cropped as the pipeline crops them, crop_scale x BlazeFace's box
    # (training.face_pairs); steady: as detector, around the box a live steady cropper holds
    # (the participant's mean detection about the head); participant p is filmed at
    # camera_sizes[p % len(camera_sizes)]
    framing: Literal["box", "detector", "steady"] = "box"
    camera_sizes: list[tuple[PositiveInt, PositiveInt]] = Field(
        default_factory=lambda: [(640, 360)], min_length=1
    )  # the demo camera's
    # held-out participants also shown in the protocol's functional movements (this many frames
    # each, the movements in turn) for r per movement; 0: none
    movement_frames_per_participant: int = Field(0, ge=0)
    seed: int = 0
    # processes rendering participants in parallel (one cache file per participant); 0: one
    # per CPU core (a GPU machine's 16 cores render the 224 px protocol in about a minute)
    render_workers: int = Field(1, ge=0)

    @model_validator(mode="after")
    def _held_out_is_held_out(self) -> FaceDataConfig:
        both = sorted(set(self.train_participants) & set(self.heldout_participants))
        if both:
            raise ValueError(f"held-out participants {both[:5]} are also training participants")
        return self


class EncodersConfig(Config):
    """``eifer train encoders --supervised``: regress pose (rotation + camera), shape and phi
    from the crop with the truth as targets, SMIRK's pre-training stand-in (SMIRK
    ``config_pretrain.yaml``: lr 2e-4, encoders at 0.25 lr; Adam, cosine)."""

    data: FaceDataConfig = FaceDataConfig()
    output: str = "runs"
    run_name: str = ""
    views: Literal["free", "occluded", "both"] = "free"  # (b) of the comparison: occlusion-free
    # smirk: SMIRK's three MobileNetV3 (needs SMIRK's weights to learn well: from scratch it
    # stalls, README); compact: eifer_models.compact_encoder, learns from nothing on a CPU
    architecture: Literal["smirk", "compact"] = "smirk"
    width: PositiveInt = 32  # compact only: channels of its first stage
    init_checkpoint: str = ""  # SMIRK_em1.pt: start from it (recorded in the provenance)
    epochs: PositiveInt = 30
    batch_size: PositiveInt = 16
    lr: PositiveFloat = 5e-5  # SMIRK: 0.25 x 2e-4 for the encoders
    # steps of linear warm-up from lr/100 before the cosine decay (Goyal et al. 2017): a high
    # lr from the first step kills a randomly initialised network's ReLUs (measured, issue 23)
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0.0)
    # loss weights: phi (expression, eyelids, jaw), rotation, camera, shape (1e-2: 300 values)
    w_phi: float = 1.0
    w_rotation: float = 10.0
    w_cam: float = 1.0
    w_shape: float = 1e-2
    # photometric augmentation: brightness, contrast and colour gains drawn per crop up to
    # +-photometric (no flips: a mirrored face swaps the one-sided components)
    photometric: float = Field(0.0, ge=0.0, le=0.5)
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
    # a phase-1 run folder whose networks (its last.pt: both encoders, generators and
    # discriminators) this run starts from, the optimisers and the cosine schedule anew: a
    # longer schedule after a run has ended (a resume keeps the run's own config); "" = none
    init_phase1: str = ""
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
    # SMIRK's reconstruction loss (Retsinas et al., CVPR 2024), not in EIFER's seed: each
    # generator redraws its own view from that view's render (E_s's or E_n's parameters) and
    # appearance pixels, L1; 0 = the paper's losses only
    w_self_reconstruction: float = Field(0.0, ge=0.0)
    # the CSN parameter cycle's target, E_s's phi of the face under electrodes: trained through
    # both sides (False, the paper) or a constant (True: E_s is not pulled towards E_n's reading
    # of G_n's drawing; its phi target is then only CNS's, E_n's reading of a real free face)
    fixed_csn_target: bool = False
    # the face G_s draws in CNS, as E_s reads it: trained through (False, the paper: G_s also
    # learns to draw what E_s reads, and the two can agree on a code real faces do not carry) or
    # a constant there (True: G_s learns from the discriminator and the image cycle only)
    fixed_cns_face: bool = False
    # what of the occluded-face encoder stages 2-3 train: its expression part (pose, camera and
    # shape stay pre-trained: with them free it moves the face out of the crop, training.phase1)
    # or all of it (the paper, whose regularisers are not published)
    finetune: Literal["expression", "all"] = "expression"
    augment: AugmentConfig = AugmentConfig()
    samples_per_epoch: int = Field(4, ge=0)  # sample images written each epoch
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "auto"
    threads: int = Field(0, ge=0)

"""``eifer train encoders --supervised``: the encoders regress the truth of the synthetic
participant (pose = rotation + camera, shape, phi) from the face crop.

A stand-in for SMIRK's pre-training (Retsinas et al., CVPR 2024: landmark and MICA losses on
real faces), which needs data and assets this project cannot download; when SMIRK's checkpoint
(``SMIRK_em1.pt``) is given as ``init_checkpoint`` the run starts from it and says so. The
encoders train in BatchNorm train mode with Adam and a cosine schedule over all steps (SMIRK:
2e-4 x 0.25 for the encoders); ``views = "free"`` trains on occlusion-free crops only (the
baseline (b) that phase 1 must beat on occluded faces). Evaluation: Pearson r per driven phi
component on the held-out participants' occluded and occlusion-free crops, and on the training
crops (``train``: how well the trainer fits what it saw; a fit without transfer shows there).

Data parallel under ``torchrun --nproc-per-node N``: every rank draws the same global batch of
``batch_size`` crops and takes the slice ``batch[rank::N]``; its loss is scaled so that the
all-reduced mean gradient is the gradient of the whole batch, and BatchNorm statistics are those
of the whole batch (:func:`training.distributed.sync_batchnorm`), so N processes train the same
model as one (equal up to float summation order; measured in the tests). Rank 0 writes the run
folder (log, checkpoints, encoders, evaluation); every rank resumes from its checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eifer_models.compact_encoder import CompactEncoder
from eifer_models.encoders import FaceEncoder, SmirkEncoder
from training.augment import photometric
from training.distributed import DistContext, sync_batchnorm
from training.encoder_config import EncodersConfig
from training.encoder_runs import (
    HOW_RENDERED,
    crop_images,
    encoder_phi,
    movement_scores,
    phi_scores,
    save_encoders,
    write_run_info,
)
from training.errors import RunError
from training.face_pairs import FacePairs, load_or_render_pairs
from training.metrics import DRIVEN_STD
from training.runs import config_hash, open_run

__all__ = [
    "TargetStatistics",
    "evaluate_encoders",
    "load_movement_pairs",
    "load_pairs",
    "load_pairs_on_ranks",
    "make_encoder",
    "run_encoders",
    "supervised_loss",
]

log = logging.getLogger(__name__)


def load_pairs_on_ranks(
    ctx: DistContext, data: Any, progress: bool = False
) -> tuple[FacePairs, FacePairs]:
    """:func:`load_pairs` on every rank: rank 0 renders (and caches) the face pairs first, the
    others then read its cache (one render, not one per rank)."""
    if ctx.is_main:
        pairs = load_pairs(data, progress=progress)
    ctx.barrier()
    return pairs if ctx.is_main else load_pairs(data)


def pair_options(data: Any, pid: int) -> dict[str, Any]:
    """:func:`~training.face_pairs.load_or_render_pairs`' options of a FaceDataConfig for
    participant ``pid`` (detector framing: its camera is ``camera_sizes[pid % len]``)."""
    return {
        "crop_scale": data.crop_scale, "crop_jitter": data.crop_jitter, "seed": data.seed,
        "framing": data.framing,
        "camera_size": tuple(data.camera_sizes[pid % len(data.camera_sizes)]),
    }  # fmt: skip


def load_pairs(data: Any, progress: bool = False) -> tuple[FacePairs, FacePairs]:
    """(training participants, held-out participants) face pairs of a FaceDataConfig: each
    participant rendered (or read from its cache file) on its own, ``data.render_workers``
    at a time; a participant's frames do not depend on the others (seeded per participant)."""
    args = (data.frames_per_participant, data.crop_size)
    seeds = [*data.train_participants, *data.heldout_participants]
    workers = data.render_workers or os.cpu_count() or 1
    if workers > 1 and len(seeds) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        spawn = multiprocessing.get_context("spawn")  # no fork of a process holding torch
        with ProcessPoolExecutor(min(workers, len(seeds)), mp_context=spawn) as pool:
            futures = {
                pool.submit(
                    load_or_render_pairs, data.cache_dir, [pid], *args, **pair_options(data, pid)
                ): pid
                for pid in seeds
            }
            done = as_completed(futures)
            if progress:
                from tqdm import tqdm

                done = tqdm(done, total=len(seeds), desc="face pairs", unit="participant")
            parts = {futures[f]: f.result() for f in done}
    else:
        parts = {}
        for pid in seeds:
            if progress:
                log.info("face pairs of participant %d", pid)
            parts[pid] = load_or_render_pairs(
                data.cache_dir, [pid], *args, **pair_options(data, pid), progress=progress
            )
    join = lambda ids: _concat([parts[i] for i in ids])  # noqa: E731
    return join(data.train_participants), join(data.heldout_participants)


def _concat(parts: list[FacePairs]) -> FacePairs:
    return FacePairs(
        *(np.concatenate([getattr(p, k) for p in parts]) for k in FacePairs.__dataclass_fields__)
    )


def load_movement_pairs(data: Any) -> FacePairs | None:
    """The held-out participants in the protocol's functional movements (None when
    ``data.movement_frames_per_participant`` is 0): r per movement."""
    if not data.movement_frames_per_participant:
        return None
    return _concat([
        load_or_render_pairs(
            data.cache_dir, [pid], data.movement_frames_per_participant, data.crop_size,
            script="movements", **pair_options(data, pid),
        )
        for pid in data.heldout_participants
    ])  # fmt: skip


def evaluate_encoders(
    encoder: FaceEncoder, held: FacePairs, device: torch.device,
    movements: FacePairs | None = None,
) -> dict[str, Any]:  # fmt: skip
    """r per driven component on held-out participants, occluded and occlusion-free crops;
    with ``movements``, also r within each protocol movement (``per_movement``)."""
    scores: dict[str, Any] = {}
    for view in ("occluded", "free"):
        scores[view] = phi_scores(encoder_phi(encoder, getattr(held, view), device), held.phi)
        if movements is not None:
            pred = encoder_phi(encoder, getattr(movements, view), device)
            scores[view]["per_movement"] = movement_scores(pred, movements.phi, movements.movement)
    return scores


def training_fit(
    encoder: FaceEncoder, train: FacePairs, views: str, device: torch.device
) -> dict[str, Any]:
    """r per driven component on the training crops of ``views`` (eval mode)."""
    crops = {"free": train.free, "occluded": train.occluded}
    return {
        view: phi_scores(encoder_phi(encoder, crops[view], device), train.phi)
        for view in (("free", "occluded") if views == "both" else (views,))
    }


def _targets(pairs: FacePairs, rows: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
    t = lambda a: torch.as_tensor(a[rows], device=device)  # noqa: E731
    return {"pose": t(np.concatenate([pairs.rotation, pairs.cam], 1)), "shape": t(pairs.shape), "phi": t(pairs.phi)}  # fmt: skip


@dataclass(frozen=True)
class TargetStatistics:
    """Per-component mean and scale of the training targets (pose 6, shape, phi): the loss
    compares standardised values, so a component that varies little (jaw_x: ~1/100 of a
    brow's variance) weighs as much as one that varies a lot. A component that does not vary
    in the training set (std <= DRIVEN_STD: most of phi's 55) keeps scale 1."""

    mean: dict[str, torch.Tensor]
    scale: dict[str, torch.Tensor]

    @classmethod
    def of(cls, pairs: FacePairs) -> TargetStatistics:
        target = _targets(pairs, np.arange(len(pairs)), torch.device("cpu"))
        mean = {k: v.double().mean(0).float() for k, v in target.items()}
        ddof = 1 if len(pairs) > 1 else 0  # one frame: no spread, scale 1 below
        std = {k: v.double().std(0, correction=ddof).float() for k, v in target.items()}
        scale = {k: torch.where(s > DRIVEN_STD, s, torch.ones_like(s)) for k, s in std.items()}
        return cls(mean, scale)

    def head_order(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, scale) concatenated in the heads' order: pose, shape, phi."""
        keys = ("pose", "shape", "phi")
        return torch.cat([self.mean[k] for k in keys]), torch.cat([self.scale[k] for k in keys])

    def to(self, device: torch.device) -> TargetStatistics:
        move = lambda d: {k: v.to(device) for k, v in d.items()}  # noqa: E731
        return TargetStatistics(move(self.mean), move(self.scale))


def supervised_loss(
    encoder: FaceEncoder, image: torch.Tensor, target: dict[str, torch.Tensor],
    config: EncodersConfig, stats: TargetStatistics,
) -> torch.Tensor:  # fmt: skip
    """Per-crop loss (n,): weighted mean squared standardised errors of phi, rotation, camera
    and shape on the encoder's raw outputs (the eyelid and jaw clamps apply at inference only:
    clamped before the loss, an output below 0 gets no gradient and stays dead), the batch loss
    is their mean; a rank sums its slice and divides by the global batch."""
    pose, shape, phi = encoder.raw(image)

    def se(key: str, pred: torch.Tensor, cols: slice = slice(None)) -> torch.Tensor:
        scale = stats.scale[key][cols]
        return (((pred - target[key][:, cols]) / scale) ** 2).mean(dim=1)

    return (
        config.w_phi * se("phi", phi)
        + config.w_rotation * se("pose", pose[:, :3], slice(0, 3))
        + config.w_cam * se("pose", pose[:, 3:], slice(3, 6))
        + config.w_shape * se("shape", shape)
    )


def warmup_cosine(
    opt: torch.optim.Optimizer, total_steps: int, warmup_steps: int, floor: float = 0.01
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from ``floor`` x lr over ``warmup_steps``, then cosine decay to ``floor``
    x lr at ``total_steps`` (SGDR without restarts, Loshchilov & Hutter 2017)."""
    total, warm = max(1, total_steps), min(warmup_steps, max(0, total_steps - 1))

    def factor(step: int) -> float:
        if step < warm:
            return floor + (1.0 - floor) * step / warm
        progress = min(1.0, (step - warm) / max(1, total - warm))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def make_encoder(config: EncodersConfig) -> FaceEncoder:
    """The config's architecture at its crop size, seeded by ``config.seed``."""
    torch.manual_seed(config.seed)
    size = config.data.crop_size
    if config.architecture == "compact":
        return CompactEncoder(input_size=size, width=config.width)
    return SmirkEncoder(input_size=size)


def run_encoders(
    config: EncodersConfig | None = None,
    *,
    resume: str | Path | None = None,
    stop_after_epoch: int | None = None,
    progress: bool = True,
) -> Path:
    """Train (or, ``untrained``, only evaluate the seeded encoders); returns the run folder.
    Under ``torchrun`` every rank calls this and trains its slice of each batch (module doc)."""
    with open_run(config, resume, EncodersConfig, "encoders") as run:
        config, ctx, device, folder = run.config, run.ctx, run.device, run.folder
        chash = config_hash(config, ignore=HOW_RENDERED)
        encoder = make_encoder(config)
        provenance = f"{config.architecture} encoder, seeded random initialisation" + (
            " (no SMIRK checkpoint given)" if config.architecture == "smirk" else ""
        )
        if config.init_checkpoint:
            if not isinstance(encoder, SmirkEncoder):
                raise RunError("init_checkpoint is a SMIRK checkpoint: set architecture = smirk")
            from eifer_models.checkpoints import load_smirk_encoder

            report = load_smirk_encoder(encoder, config.init_checkpoint)
            provenance = f"started from SMIRK checkpoint {config.init_checkpoint} ({report})"
        if config.untrained:
            provenance = "UNTRAINED: " + provenance
        else:
            provenance = (
                f"supervised on synthetic participants ({config.views} views); " + provenance
            )
        if not run.resumed:
            write_run_info(run, "encoders", provenance)
        train, held = load_pairs_on_ranks(ctx, config.data, progress)
        crops = {
            "free": [train.free],
            "occluded": [train.occluded],
            "both": [train.free, train.occluded],
        }
        x_all = np.concatenate(crops[config.views])
        rows_all = np.concatenate([np.arange(len(train))] * len(crops[config.views]))
        stats = TargetStatistics.of(train)
        if isinstance(encoder, CompactEncoder):
            encoder.set_output_statistics(*stats.head_order())
        stats = stats.to(device)
        epochs = 0 if config.untrained else config.epochs
        epoch, losses = 0, []
        state = run.load_checkpoint(chash)
        if state is not None:
            encoder.load_state_dict(state["encoder"])
        model: torch.nn.Module = encoder
        if ctx.enabled:
            model = sync_batchnorm(encoder, device)
            assert model is encoder  # converted in place: its raw() runs the synced layers
        model.to(device)
        steps_per_epoch = -(-len(x_all) // config.batch_size)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        sched = warmup_cosine(opt, epochs * steps_per_epoch, config.warmup_steps)
        if state is not None:
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            epoch, losses = int(state["epoch"]), list(state["losses"].tolist())
            log.info("resumed at epoch %d from %s", epoch, run.checkpoint)
        bar = run.progress(progress and epochs > 0, total=epochs, initial=epoch,
                           desc="encoders (supervised)", unit="epoch")  # fmt: skip
        rank, world = ctx.rank, ctx.world_size
        while epoch < epochs:
            model.train()
            g = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
            order = torch.randperm(len(x_all), generator=g).numpy()
            total = 0.0
            for start in range(0, len(order), config.batch_size):
                batch = order[start : start + config.batch_size]
                mine = batch[rank::world]
                images = crop_images(x_all[mine], device)
                if config.photometric:
                    images = photometric(images, config.photometric, g)
                per_crop = supervised_loss(
                    encoder, images, _targets(train, rows_all[mine], device), config, stats
                )  # model is encoder itself, its BatchNorms made cross-rank in place
                loss = per_crop.sum() * (world / len(batch))  # mean over ranks = batch mean
                opt.zero_grad(set_to_none=True)
                loss.backward()
                ctx.average_gradients(model.parameters())
                opt.step()
                sched.step()
                total += float(per_crop.detach().sum())
            epoch += 1
            losses.append(ctx.mean({"loss": total})["loss"] * world / len(order))
            log.info("epoch %d: loss %.5f", epoch, losses[-1])
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
            if run.end_epoch({
                "epoch": epoch, "config_hash": chash, "encoder": encoder.state_dict(),
                "opt": opt.state_dict(), "sched": sched.state_dict(),
                "losses": torch.tensor(losses, dtype=torch.float64),
            }, stop_after_epoch):  # fmt: skip
                return folder
        bar.close()
        if run.main:
            encoder = save_encoders(encoder, folder)
            scores = evaluate_encoders(
                encoder, held, torch.device("cpu"), load_movement_pairs(config.data)
            )
            scores["train"] = training_fit(encoder, train, config.views, torch.device("cpu"))
            scores["losses"] = losses
            (folder / "eval.json").write_text(json.dumps(scores, indent=2))
            log.info("held-out occluded mean r %s", scores["occluded"]["mean_r"])
        ctx.barrier()
        return folder

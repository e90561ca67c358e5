"""``eifer train encoders --supervised``: the encoders regress the truth of the synthetic
participant (pose = rotation + camera, shape, phi) from the face crop.

A stand-in for SMIRK's pre-training (Retsinas et al., CVPR 2024: landmark and MICA losses on
real faces), which needs data and assets this project cannot download; when SMIRK's checkpoint
(``SMIRK_em1.pt``) is given as ``init_checkpoint`` the run starts from it and says so. The
encoders train in BatchNorm train mode with Adam and a cosine schedule over all steps (SMIRK:
2e-4 x 0.25 for the encoders); ``views = "free"`` trains on occlusion-free crops only (the
baseline (b) that phase 1 must beat on occluded faces). Evaluation: Pearson r per driven phi
component on the held-out participants' occluded and occlusion-free crops.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eifer_models.encoders import SmirkEncoder
from training.encoder_config import EncodersConfig
from training.encoder_runs import (
    CHECKPOINT,
    config_hash,
    encoder_phi,
    load_checkpoint,
    open_run,
    phi_scores,
    pick_device,
    run_log,
    save_checkpoint,
    save_encoders,
    write_run_info,
)
from training.face_pairs import FacePairs, load_or_render_pairs

__all__ = ["evaluate_encoders", "load_pairs", "run_encoders"]

log = logging.getLogger(__name__)


def load_pairs(data: Any, progress: bool = False) -> tuple[FacePairs, FacePairs]:
    """(training participants, held-out participants) face pairs of a FaceDataConfig."""
    args = (data.frames_per_participant, data.crop_size)
    train = load_or_render_pairs(
        data.cache_dir, list(data.train_participants), *args, seed=data.seed, progress=progress
    )
    held = load_or_render_pairs(
        data.cache_dir, list(data.heldout_participants), *args, seed=data.seed, progress=progress
    )
    return train, held


def evaluate_encoders(
    encoder: SmirkEncoder, held: FacePairs, device: torch.device
) -> dict[str, Any]:
    """r per driven component on held-out participants, occluded and occlusion-free crops."""
    return {
        "occluded": phi_scores(encoder_phi(encoder, held.occluded, device), held.phi),
        "free": phi_scores(encoder_phi(encoder, held.free, device), held.phi),
    }


def _targets(pairs: FacePairs, rows: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
    t = lambda a: torch.as_tensor(a[rows], device=device)  # noqa: E731
    return {"phi": t(pairs.phi), "rotation": t(pairs.rotation), "cam": t(pairs.cam), "shape": t(pairs.shape)}  # fmt: skip


def supervised_loss(
    encoder: SmirkEncoder, image: torch.Tensor, target: dict[str, torch.Tensor], config: EncodersConfig
) -> torch.Tensor:  # fmt: skip
    p = encoder(image)
    mse = torch.nn.functional.mse_loss
    return (
        config.w_phi * mse(p.phi, target["phi"])
        + config.w_rotation * mse(p.pose_params, target["rotation"])
        + config.w_cam * mse(p.cam, target["cam"])
        + config.w_shape * mse(p.shape_params, target["shape"])
    )


def _images(crops: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(crops), device=device).permute(0, 3, 1, 2).float() / 255.0


def run_encoders(
    config: EncodersConfig | None = None,
    *,
    resume: str | Path | None = None,
    stop_after_epoch: int | None = None,
    progress: bool = True,
) -> Path:
    """Train (or, ``untrained``, only evaluate the seeded encoders); returns the run folder."""
    folder, config = open_run(config, resume, EncodersConfig, "encoders")
    with run_log(folder):
        if config.threads:
            torch.set_num_threads(config.threads)
        device = pick_device(config.device)
        chash = config_hash(config)
        torch.manual_seed(config.seed)
        encoder = SmirkEncoder()
        provenance = "seeded random initialisation (no SMIRK checkpoint given)"
        if config.init_checkpoint:
            from eifer_models.checkpoints import load_smirk_encoder

            report = load_smirk_encoder(encoder, config.init_checkpoint)
            provenance = f"started from SMIRK checkpoint {config.init_checkpoint} ({report})"
        if config.untrained:
            provenance = "UNTRAINED: " + provenance
        else:
            provenance = (
                f"supervised on synthetic participants ({config.views} views); " + provenance
            )
        if resume is None:
            write_run_info(folder, "encoders", config, provenance)
        train, held = load_pairs(config.data, progress=progress)
        crops = {
            "free": [train.free],
            "occluded": [train.occluded],
            "both": [train.free, train.occluded],
        }
        x_all = np.concatenate(crops[config.views])
        rows_all = np.concatenate([np.arange(len(train))] * len(crops[config.views]))
        encoder.to(device)
        epochs = 0 if config.untrained else config.epochs
        steps_per_epoch = -(-len(x_all) // config.batch_size)
        opt = torch.optim.Adam(encoder.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=max(1, epochs * steps_per_epoch), eta_min=config.lr * 0.01
        )
        epoch, losses = 0, []
        checkpoint = folder / CHECKPOINT
        if checkpoint.is_file():
            state = load_checkpoint(checkpoint, chash)
            encoder.load_state_dict(state["encoder"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            epoch, losses = int(state["epoch"]), list(state["losses"].tolist())
            log.info("resumed at epoch %d from %s", epoch, checkpoint)
        bar = None
        if progress and epochs:
            from tqdm import tqdm

            bar = tqdm(total=epochs, initial=epoch, desc="encoders (supervised)", unit="epoch")
        while epoch < epochs:
            encoder.train()
            g = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
            order = torch.randperm(len(x_all), generator=g).numpy()
            total = 0.0
            for start in range(0, len(order), config.batch_size):
                batch = order[start : start + config.batch_size]
                loss = supervised_loss(
                    encoder, _images(x_all[batch], device), _targets(train, rows_all[batch], device), config
                )  # fmt: skip
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(batch)
            epoch += 1
            losses.append(total / len(order))
            log.info("epoch %d: loss %.5f", epoch, losses[-1])
            save_checkpoint(checkpoint, {
                "epoch": epoch, "config_hash": chash, "encoder": encoder.state_dict(),
                "opt": opt.state_dict(), "sched": sched.state_dict(),
                "losses": torch.tensor(losses, dtype=torch.float64),
            })  # fmt: skip
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
            if epoch == stop_after_epoch:
                return folder
        if bar is not None:
            bar.close()
        encoder = save_encoders(encoder, folder)
        scores = evaluate_encoders(encoder, held, torch.device("cpu"))
        scores["losses"] = losses
        (folder / "eval.json").write_text(json.dumps(scores, indent=2))
        log.info("held-out occluded mean r %s", scores["occluded"]["mean_r"])
        return folder

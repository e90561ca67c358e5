"""``eifer train phase1``: EIFER's occlusion cycles (Buechner et al., CVPR 2025, section 3 and
supplement; ``../shared/EIFER.md``).

Two encoder-generator cycles on unpaired images, batch 1 (instance normalisation):

- CSN (occluded -> occlusion-free): ``E_s(x_s)`` -> FLAME -> render ``R``; the generator input
  is ``R`` plus the image outside the dilated rendered face plus sparse appearance pixels
  sampled inside it (:func:`eifer_models.masking.generator_pixels`); ``G_n`` draws the face
  without electrodes, judged by ``D_n`` against unpaired occlusion-free references;
  ``E_n`` re-encodes it (parameter cycle: phi back to ``E_s``'s), and ``G_s`` draws the
  electrodes back from that (image cycle: L1 to ``x_s``).
- CNS (occlusion-free -> occluded) the other way round: ``E_n(x_n)`` -> ``G_s`` (electrodes
  applied, ``D_s`` vs unpaired occluded references) -> ``E_s`` must recover ``E_n``'s phi from
  the occluded image: the signal that teaches the occluded-face encoder to see past electrodes.
- Optional, not in EIFER's seed (``w_self_reconstruction``, 0 by default): SMIRK's reconstruction
  loss, ``G_s`` redrawing ``x_s`` from ``E_s``'s render and ``G_n`` redrawing ``x_n`` from
  ``E_n``'s (L1). On the CPU recipe (issue 23), with every face pixel given, 2,880 steps left
  ``E_s`` where it started under electrodes, 6,912 lifted it from 0.087 to 0.167, 16,128 to
  0.224 and 26,496 (that run continued by ``init_phase1``) to 0.286 (README).
- Optional gradient stops, not in the paper (both off by default): ``fixed_csn_target`` makes
  ``E_s``'s phi a constant target of the CSN parameter cycle (``E_s`` is then not pulled towards
  ``E_n``'s reading of ``G_n``'s drawing while ``G_n`` cannot yet remove electrodes);
  ``fixed_cns_face`` keeps the CNS parameter cycle out of ``G_s`` (``E_s`` and ``G_s`` cannot
  agree on a code of their own; ``G_s`` learns from the discriminator and the image cycle).
  Measured at 6,912 steps of the CPU recipe (README): the first +0.027 under electrodes (one
  seed), both together no gain.

``init_phase1`` starts a run from another phase-1 run's networks (a longer schedule after a run
has ended; the optimisers and the cosine schedule start anew, so it is not the same run).

Stages (default 10/5/5 epochs): 1 both encoders frozen, many appearance pixels (the generators
learn to fool the discriminators); 2 the occluded-face encoder ``E_s`` unfrozen; 3 fewer pixels,
forcing the generators to rely on the geometry. ``E_n`` stays frozen. By default only ``E_s``'s
expression part is unfrozen (``finetune = "expression"``): with its pose and camera free, ``E_s``
learnt to turn and shift the face out of the crop (render coverage 0.39 -> 0.00, measured on the
CPU recipe, issue 23), so the mask passed the whole input to the generators and the image cycle
was won by copying; phi got no signal (held-out r -0.02). The paper fine-tunes the whole encoder
with regularisers it does not publish; ``finetune = "all"`` is that, without them. Each epoch
logs ``render_coverage`` to show the shortcut. Two AdamW optimisers
(generators + ``E_s``; discriminators), lr 2e-4, weight decay 1e-3, cosine annealing over all
steps. Encoders run in eval mode (BatchNorm statistics frozen: batch 1). The fine-tuning frames
are ``finetune_fraction`` of the training participants' frames, split 80/20 train/validation;
the evaluation uses held-out participants (``E_s``'s held-out mean r, under electrodes and on
free faces, is also logged each epoch as ``heldout_r`` to watch a long run; nothing selects on
it). Deterministic: every epoch's order comes from a generator seeded by (seed, epoch) and each
rank's augmentations and pixel draws from one seeded by (seed, epoch, rank), so a resumed run
ends with the same weights as an uninterrupted one.

Several processes (``torchrun --nproc-per-node N``): the paper's batch is 1, and a rank count N
means a global batch of N: at each step every rank takes its own sample (sample ``k * N + rank``
of the epoch's order, wrapping round at the end) and the gradients of the generators, of ``E_s``
and of the discriminators are averaged over the ranks (one all-reduce each, as DDP does; the DDP
wrapper is not used because each generator runs twice per step and ``E_s`` is unfrozen between
stages). An epoch then has ceil(frames / N) steps, and the cosine schedule spans those. With
N = 1 this is the paper's protocol; N > 1 is a larger batch (the same learning rate), not the
same run. Rank 0 validates, writes samples, checkpoints and the evaluation.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from eifer_models.discriminator import (
    EiferDiscriminator,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from eifer_models.encoders import FaceEncoder, FlameParams
from eifer_models.generator import EiferGenerator, generator_input
from eifer_models.masking import dilation_px, generator_pixels
from eifer_models.renderer import RenderOutput
from training.augment import augment
from training.distributed import DistContext
from training.encoder_config import Phase1Config
from training.encoder_runs import (
    HOW_RENDERED,
    crop_images,
    encoder_phi,
    load_encoders,
    phi_scores,
    save_encoders,
    write_run_info,
)
from training.encoders import evaluate_encoders, load_movement_pairs, load_pairs_on_ranks
from training.errors import RunError
from training.face_model import FaceModel
from training.phase1_diagnostics import generator_transfer
from training.runs import config_hash, open_run, read_checkpoint

__all__ = ["CycleModels", "run_phase1", "split_finetune", "stage_of_epoch"]

log = logging.getLogger(__name__)


def stage_of_epoch(epoch: int, stage_epochs: list[int]) -> int:
    """0-based stage of 0-based ``epoch``."""
    bounds = np.cumsum(stage_epochs)
    return min(int(np.searchsorted(bounds, epoch, side="right")), len(stage_epochs) - 1)


def split_finetune(n: int, fraction: float, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(train rows, validation rows): ``fraction`` of ``n`` frames, split (1-val)/val."""
    rng = np.random.default_rng([seed, 31337])
    chosen = rng.permutation(n)[: max(2, round(fraction * n))]
    n_val = max(1, round(val_fraction * len(chosen)))
    return np.sort(chosen[n_val:]), np.sort(chosen[:n_val])


@dataclass
class CycleModels:
    """The phase-1 networks and their two optimisers."""

    e_s: FaceEncoder  # occluded-face encoder (trained from stage 2)
    e_n: FaceEncoder  # occlusion-free encoder (frozen)
    g_n: EiferGenerator  # -> occlusion-free face
    g_s: EiferGenerator  # -> sEMG-occluded face
    d_n: EiferDiscriminator
    d_s: EiferDiscriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sched_g: Any
    sched_d: Any

    @classmethod
    def build(cls, config: Phase1Config, encoder: FaceEncoder, total_steps: int) -> CycleModels:
        torch.manual_seed(config.seed)
        gen = lambda: EiferGenerator(  # noqa: E731
            features=config.generator_features, res_blocks=config.generator_blocks
        )
        disc = lambda: EiferDiscriminator(features=config.discriminator_features)  # noqa: E731
        e_s, e_n = copy.deepcopy(encoder), copy.deepcopy(encoder)
        e_n.requires_grad_(False)
        g_n, g_s, d_n, d_s = gen(), gen(), disc(), disc()
        opt_g = torch.optim.AdamW(
            [*g_n.parameters(), *g_s.parameters(), *e_s.parameters()],
            lr=config.lr, weight_decay=config.weight_decay,
        )  # fmt: skip
        opt_d = torch.optim.AdamW(
            [*d_n.parameters(), *d_s.parameters()], lr=config.lr, weight_decay=config.weight_decay
        )
        T = max(1, total_steps)
        sched_g = torch.optim.lr_scheduler.CosineAnnealingLR(opt_g, T_max=T)
        sched_d = torch.optim.lr_scheduler.CosineAnnealingLR(opt_d, T_max=T)
        return cls(e_s, e_n, g_n, g_s, d_n, d_s, opt_g, opt_d, sched_g, sched_d)

    NETS = ("e_s", "e_n", "g_n", "g_s", "d_n", "d_s")
    OPTS = ("opt_g", "opt_d", "sched_g", "sched_d")

    def state(self) -> dict[str, Any]:
        return {k: getattr(self, k).state_dict() for k in (*self.NETS, *self.OPTS)}

    def load(self, state: dict[str, Any], parts: tuple[str, ...] = (*NETS, *OPTS)) -> None:
        """Load ``parts`` of a :meth:`state` (default all; :attr:`NETS`: the networks only)."""
        for k in parts:
            try:
                getattr(self, k).load_state_dict(state[k])
            except (KeyError, RuntimeError, ValueError) as exc:
                first = str(exc).strip().splitlines()[0]
                raise RunError(
                    f"checkpoint part {k!r} does not fit this config ({first})"
                ) from None

    def to(self, device: torch.device) -> CycleModels:
        for k in self.NETS:
            getattr(self, k).to(device)
        return self


def _params_detached(p: FlameParams) -> FlameParams:
    return FlameParams(*(getattr(p, f).detach() for f in FlameParams.__dataclass_fields__))


def cycle_step(
    m: CycleModels, face: FaceModel, x_s: Tensor, x_n: Tensor, ref_s: Tensor, ref_n: Tensor,
    config: Phase1Config, fraction: float, generator: torch.Generator, *, train: bool = True,
    ctx: DistContext | None = None,
) -> dict[str, float]:  # fmt: skip
    """One step of both cycles (and of the discriminators when ``train``); losses as floats.
    ``ctx``: gradients averaged over its ranks before each optimiser step."""
    size = x_s.shape[-1]
    radius = dilation_px(size)
    mse, l1 = nn.functional.mse_loss, nn.functional.l1_loss

    def draw(r: RenderOutput, image: Tensor, g: EiferGenerator) -> Tensor:
        px = generator_pixels(
            image, r.coverage, fraction=fraction, dilation_radius_px=radius, generator=generator
        )
        return g(generator_input(r.image, px.appearance, px.sample_mask))

    # CSN: occluded -> occlusion-free -> occluded
    p_s = m.e_s(x_s)
    r_s = face.render(p_s)
    y_n = draw(r_s, x_s, m.g_n)
    p_sn = m.e_n(y_n)
    rec_s = draw(face.render(p_sn), y_n, m.g_s)
    # CNS: occlusion-free -> occluded -> occlusion-free
    with torch.no_grad():
        p_n = m.e_n(x_n)
    r_n = face.render(p_n)
    y_s = draw(r_n, x_n, m.g_s)
    p_ns = m.e_s(y_s.detach() if config.fixed_cns_face else y_s)
    rec_n = draw(face.render(p_ns), y_s, m.g_n)
    gan = lsgan_generator_loss(m.d_n(y_n)) + lsgan_generator_loss(m.d_s(y_s))
    csn_target = p_s.phi.detach() if config.fixed_csn_target else p_s.phi
    param_cycle = mse(p_sn.phi, csn_target) + mse(p_ns.phi, p_n.phi)
    image_cycle = l1(rec_s, x_s) + l1(rec_n, x_n)
    loss_g = (
        config.w_gan * gan + config.w_param_cycle * param_cycle + config.w_image_cycle * image_cycle
    )
    terms = {"gan": gan, "param_cycle": param_cycle, "image_cycle": image_cycle}
    if config.w_self_reconstruction > 0:  # SMIRK's reconstruction: each redraws its own input
        terms["self_reconstruction"] = l1(draw(r_s, x_s, m.g_s), x_s) + l1(
            draw(r_n, x_n, m.g_n), x_n
        )  # the cycles' own renders of p_s and p_n
        loss_g = loss_g + config.w_self_reconstruction * terms["self_reconstruction"]
    out = {k: float(v.detach()) for k, v in terms.items()}
    # the fraction of the crop E_s's render covers: near 0 means E_s has moved the face out of
    # the crop, and the generators then see the whole input (the shortcut, module doc)
    out["render_coverage"] = float(r_s.coverage.float().mean())
    if not train:
        return out
    m.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    if ctx is not None:
        ctx.average_gradients(p for group in m.opt_g.param_groups for p in group["params"])
    m.opt_g.step()
    loss_d = lsgan_discriminator_loss(m.d_n(ref_n), m.d_n(y_n.detach())) + lsgan_discriminator_loss(
        m.d_s(ref_s), m.d_s(y_s.detach())
    )
    m.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    if ctx is not None:
        ctx.average_gradients(p for group in m.opt_d.param_groups for p in group["params"])
    m.opt_d.step()
    m.sched_g.step()
    m.sched_d.step()
    out["disc"] = float(loss_d.detach())
    return out


def _save_samples(folder: Path, epoch: int, m: CycleModels, face: FaceModel, x_s: Tensor,
                  x_n: Tensor, config: Phase1Config, fraction: float) -> None:  # fmt: skip
    """One row per sample: occluded input, its render, G_n's occlusion-free face; free input,
    G_s's occluded face."""
    import cv2

    g = torch.Generator().manual_seed(epoch)
    radius = dilation_px(x_s.shape[-1])
    with torch.no_grad():
        rows = []
        for xs, xn in zip(x_s, x_n, strict=True):
            xs, xn = xs[None], xn[None]
            tiles = [xs]
            for x, enc, gen in ((xs, m.e_s, m.g_n), (xn, m.e_n, m.g_s)):
                r = face.render(enc(x))
                px = generator_pixels(
                    x, r.coverage, fraction=fraction, dilation_radius_px=radius, generator=g
                )
                y = gen(generator_input(r.image, px.appearance, px.sample_mask))
                tiles += [r.rgb(), px.appearance, y] if x is xs else [xn, y]
            rows.append(torch.cat(tiles, -1))
        grid = (torch.cat(rows, -2)[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255).astype(
            np.uint8
        )
    out = folder / "samples" / f"epoch_{epoch:03d}.png"
    out.parent.mkdir(exist_ok=True)
    cv2.imwrite(str(out), grid[:, :, ::-1])


def phase1_networks(folder: Path) -> dict[str, Any]:
    """The networks' state dicts in a phase-1 run's ``last.pt`` (``init_phase1``; read as a
    resume reads it, whatever config made it); a missing, unreadable or foreign file is a
    RunError."""
    file = folder / "last.pt"
    if not file.is_file():
        raise RunError(f"init_phase1: {file} missing; give the folder of a phase-1 run")
    models = read_checkpoint(file, "phase1").get("models")
    if not isinstance(models, dict) or not set(CycleModels.NETS) <= set(models):
        raise RunError(f"init_phase1: {file} is not a checkpoint of `eifer train phase1`")
    return models


def _steps(n: int, world: int) -> int:
    """Steps per epoch: every rank one sample per step, all samples seen (ceil(n / world))."""
    return -(-n // world)


def _check(config: Phase1Config) -> None:
    """A new run's config errors, before its folder is made."""
    if len(config.stage_epochs) != len(config.pixel_fractions):
        raise RunError("stage_epochs and pixel_fractions need one entry per stage")
    if not config.encoders:
        raise RunError("phase 1 starts from trained encoders: set encoders = <run folder>")


def run_phase1(
    config: Phase1Config | None = None,
    *,
    resume: str | Path | None = None,
    stop_after_epoch: int | None = None,
    progress: bool = True,
) -> Path:
    """Run (or continue) phase 1; writes encoders.pt (the occluded-face encoder) and eval.json.
    Under ``torchrun`` every rank calls this (module doc: a rank count is a global batch)."""
    with open_run(config, resume, Phase1Config, "phase1", check=_check) as run:
        config, ctx, device, folder = run.config, run.ctx, run.device, run.folder
        if run.resumed:
            started = int(run.info.get("world_size", 1))
            if started != ctx.world_size:
                raise RunError(
                    f"{folder}: started on {started} rank(s), a global batch of {started}; "
                    f"resume it with the same count (torchrun --nproc-per-node {started})"
                )
        encoder, origin = load_encoders(config.encoders)
        if not run.resumed:
            provenance = f"phase 1 (EIFER cycles) from encoders {origin}"
            if config.init_phase1:
                provenance += f", networks from phase-1 run {config.init_phase1}"
            write_run_info(run, "phase1", provenance)
        train, held = load_pairs_on_ranks(ctx, config.data, progress)
        rows, val_rows = split_finetune(
            len(train), config.finetune_fraction, config.val_fraction, config.seed
        )
        total_epochs = sum(config.stage_epochs)
        rank, world = ctx.rank, ctx.world_size
        steps = _steps(len(rows), world)
        models = CycleModels.build(config, encoder, total_epochs * steps).to(device)
        face = FaceModel(config.data.crop_size).to(device)
        chash = config_hash(config, ignore=HOW_RENDERED)
        epoch, history = 0, []
        state = run.load_checkpoint(chash)
        if state is None and config.init_phase1:
            models.load(phase1_networks(Path(config.init_phase1)), CycleModels.NETS)
        if state is not None:
            models.load(state["models"])
            epoch, history = int(state["epoch"]), json.loads(state["history"])
            log.info("resumed at epoch %d", epoch)
        bar = run.progress(
            progress, total=total_epochs * steps, initial=epoch * steps, desc="phase 1", unit="step"
        )
        for net in (models.e_s, models.e_n):
            net.eval()  # batch 1: BatchNorm statistics stay those of pre-training
        while epoch < total_epochs:
            stage = stage_of_epoch(epoch, config.stage_epochs)
            fraction = config.pixel_fractions[stage]
            models.e_s.requires_grad_(False)
            if stage >= 1:
                expression_only = config.finetune == "expression"
                tuned = models.e_s.expression_modules() if expression_only else [models.e_s]
                for module in tuned:
                    module.requires_grad_(True)
            g = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
            order = torch.randperm(len(rows), generator=g).numpy()
            partner = torch.randint(0, len(rows), (len(rows), 3), generator=g).numpy()
            g_rank = torch.Generator().manual_seed(
                int(np.random.SeedSequence([config.seed, epoch, rank]).generate_state(1)[0])
            )
            sums: dict[str, float] = {}
            for k in range(steps):
                at = (k * world + rank) % len(rows)  # this rank's sample of the global batch
                i = order[at]
                j, rs, rn = (rows[q] for q in partner[at])
                x_s, x_n, ref_s, ref_n = (  # x_n unpaired with x_s; unpaired references
                    augment(crop_images(crops[row : row + 1], device), config.augment, g_rank)
                    for crops, row in (
                        (train.occluded, rows[i]),
                        (train.free, j),
                        (train.occluded, rs),
                        (train.free, rn),
                    )
                )
                losses = cycle_step(
                    models, face, x_s, x_n, ref_s, ref_n, config, fraction, g_rank, ctx=ctx
                )
                for key, v in losses.items():
                    sums[key] = sums.get(key, 0.0) + v / steps
                bar.update(1)
            sums = ctx.mean(sums)
            val: dict[str, float] = {}
            heldout: dict[str, float | None] = {}
            if run.main:
                gv = torch.Generator().manual_seed(config.seed)
                with torch.no_grad():
                    for i in val_rows:
                        x_s, x_n = (
                            crop_images(v[i : i + 1], device) for v in (train.occluded, train.free)
                        )
                        for key, v in cycle_step(models, face, x_s, x_n, x_s, x_n, config, fraction, gv, train=False).items():  # fmt: skip
                            val[key] = val.get(key, 0.0) + v / len(val_rows)
                    heldout = {  # watched, never selected on: the figure is the final eval
                        view: phi_scores(encoder_phi(models.e_s, getattr(held, view), device),
                                         held.phi)["mean_r"]
                        for view in ("occluded", "free")
                    }  # fmt: skip
            epoch += 1
            history.append({"epoch": epoch, "stage": stage + 1, "pixels": fraction, "train": sums,
                            "val": val, "heldout_r": heldout})  # fmt: skip
            log.info("epoch %d (stage %d): train %s val %s; E_s held-out r %s",
                     epoch, stage + 1, sums, val, heldout)  # fmt: skip
            if run.main and config.samples_per_epoch:
                pick = val_rows[: config.samples_per_epoch]
                _save_samples(folder, epoch, models, face,
                              crop_images(train.occluded[pick], device),
                              crop_images(train.free[pick], device), config, fraction)  # fmt: skip
            if run.end_epoch({
                "epoch": epoch, "config_hash": chash, "models": models.state(),
                "history": json.dumps(history),
            }, stop_after_epoch):  # fmt: skip
                return folder
        bar.close()
        if run.main:
            e_s = save_encoders(models.e_s, folder)
            scores = evaluate_encoders(
                e_s, held, torch.device("cpu"), load_movement_pairs(config.data)
            )
            scores["generators"] = generator_transfer(
                models.g_n, models.g_s, models.e_n, models.e_s, face, held,
                config.pixel_fractions[-1], seed=config.seed,
            )  # fmt: skip
            log.info("generators on held-out true renders: %s", scores["generators"])
            scores["history"] = history
            scores["finetune_frames"] = {"train": len(rows), "validation": len(val_rows)}
            scores["world_size"] = world
            (folder / "eval.json").write_text(json.dumps(scores, indent=2))
            log.info("held-out occluded mean r %s", scores["occluded"]["mean_r"])
        ctx.barrier()
        return folder

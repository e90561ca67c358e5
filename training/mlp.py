"""``eifer train mlp``: phase 2 with participant-grouped cross-validation, a report and a bundle.

A run folder (``<output>/<run_name>``, never overwritten; ``resume`` continues one)::

    run.json                 config, training-set path and hash, git commit, folds, status
    train.log                the run's log
    checkpoints/<fold>/last.pt   weights + Adam state + epoch (every ``checkpoint_every``)
    folds/<fold>.npz         held-out predictions of a finished fold (a resume skips it)
    predictions.npz          every fold's held-out predictions together
    metrics.json             Pearson r and RMSE (training.metrics.evaluate)
    report/                  report.md + PNG figures + report.json (training.report)
    bundle/                  model bundle: the MLPs trained on every participant, the encoders
                             of ``encoders_bundle`` (random demo encoders when none is given)

Normalisation: each participant's EMG is divided by that participant's reference
(``config.normalisation``, a declared :class:`~streaming.pipeline.profile.Normalisation`) computed
over all of the participant's frames in the training set, as EIFER divides by "the participant's
maximum measured activity"; the bundle declares the same method, and the pipeline refuses a
profile made with another. Folds: participants are shuffled with the seed and split into
``folds`` groups; each fold trains on the others and predicts its held-out participants.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streaming.pipeline.profile import Normalisation
from training.config import DatasetConfig, MlpConfig
from training.dataset import TrainingSet, load_dataset
from training.distributed import DistContext
from training.errors import RunError
from training.loop import train_fold
from training.metrics import driven_columns, evaluate
from training.runs import config_hash, git_commit, open_run

__all__ = ["PhaseTwoData", "assign_folds", "prepare", "run_mlp"]

log = logging.getLogger(__name__)


@dataclass
class PhaseTwoData:
    """The frames used by phase 2 (EMG and phi both present), EMG normalised per participant."""

    x_emg: np.ndarray  # (n, channels) float32, normalised
    phi: np.ndarray  # (n, dim) float32
    participant: np.ndarray  # (n,) str
    movement: np.ndarray  # (n,) str
    emg_truth: np.ndarray  # (n, channels) true activation under each channel, NaN where none
    reference_uv: dict[str, list[float]]  # per participant: the divisor per channel (µV)


def normalise_by_participant(
    emg_uv: np.ndarray, participant: np.ndarray, method: Normalisation
) -> tuple[np.ndarray, dict[str, list[float]]]:
    out = np.empty_like(emg_uv, dtype=np.float32)
    refs: dict[str, list[float]] = {}
    for pid in sorted(set(participant.tolist())):
        rows = participant == pid
        ref = method.reference(emg_uv[rows])
        if not np.all(np.isfinite(ref) & (ref > 0)):
            raise RunError(f"participant {pid!r}: a channel has no positive EMG reference ({ref})")
        out[rows] = emg_uv[rows] / ref
        refs[pid] = [float(v) for v in ref]
    return out, refs


def _plain(value: Any) -> Any:
    """A config value as a training set's index stores it (JSON: a tuple is a list)."""
    return list(value) if isinstance(value, tuple) else value


def _toml(value: Any) -> str:
    """``value`` as a ``--set`` writes it."""
    return json.dumps(value) if isinstance(value, str | list) else str(value)


def _phi_from_encoders(ts: TrainingSet, bundle_dir: str) -> np.ndarray:
    """phi of every frame from a bundle's encoders run over the stored face crops."""
    from eifer_models.bundle import load_bundle

    if not bundle_dir:
        raise RunError("phi_source = 'encoders' needs encoders_bundle (a model bundle folder)")
    bundle = load_bundle(bundle_dir)
    built = ts.index.get("config", {})
    defaults = DatasetConfig()  # a set built before a key existed had its default
    keys = ("crop_size", "crop_margin", "crop_box", "crop_offset")
    made = tuple(_plain(built.get(key, getattr(defaults, key))) for key in keys)
    crop = bundle.manifest.crop
    wanted = (crop.size, crop.scale, crop.box, list(crop.offset))
    if crop.mode != "eifer" or made != wanted:
        sets = " ".join(f"--set {k}={_toml(v)}" for k, v in zip(keys, wanted, strict=True))
        raise RunError(
            f"{ts.path}: crops of {made[0]} px at {made[1]} x the {made[2]} box moved by "
            f"{made[3]}, but the encoders of {bundle_dir} read {crop.mode} crops of {wanted[0]} "
            f"px at {wanted[1]} x the {wanted[2]} box moved by {wanted[3]}: build the training "
            f"set with {sets}"
        )
    graph = bundle.build_module("encoders")
    parts = []
    for k, meta in enumerate(ts.index["parts"]):
        crops = ts.crops(k)
        out = np.full((meta["n_frames"], int(ts.index["expression_dim"])), np.nan, np.float32)
        with torch.no_grad():
            for lo in range(0, len(crops), 64):
                image = torch.from_numpy(np.array(crops[lo : lo + 64])).permute(0, 3, 1, 2)
                out[lo : lo + 64] = graph(image.float() / 255.0)[2].numpy()
        parts.append(out)
    return np.concatenate(parts)


def prepare(ts: TrainingSet, config: MlpConfig) -> PhaseTwoData:
    emg = ts.arrays["emg_uv"].astype(np.float64)
    phi = (
        ts.arrays["phi"]
        if config.phi_source == "truth"
        else _phi_from_encoders(ts, config.encoders_bundle)
    )
    keep = np.isfinite(emg).all(axis=1) & np.isfinite(phi).all(axis=1)
    if not keep.any():
        raise RunError(
            f"{ts.path}: no frame has both EMG and phi (phi_source = {config.phi_source!r}: "
            "sessions without a truth stream need phi_source = 'encoders')"
        )
    x, refs = normalise_by_participant(emg[keep], ts.participant[keep], config.normalisation)
    truth = ts.arrays.get("emg_truth", np.zeros((len(emg), 0)))
    if truth.shape[1] != emg.shape[1]:
        truth = np.full(emg.shape, np.nan, np.float32)
    return PhaseTwoData(
        x, phi[keep].astype(np.float32), ts.participant[keep], ts.arrays["movement"][keep],
        truth[keep].astype(np.float32), refs,
    )  # fmt: skip


def assign_folds(participants: list[str], folds: int, seed: int) -> list[list[str]]:
    """Participants shuffled with ``seed`` and split into ``folds`` near-equal groups."""
    unique = sorted(set(participants))
    if len(unique) < folds:
        raise RunError(
            f"{folds}-fold cross-validation grouped by participant needs at least {folds} "
            f"participants; the training set has {len(unique)} ({unique}): set folds lower"
        )
    order = np.random.default_rng(seed).permutation(len(unique))
    return [sorted(unique[i] for i in group) for group in np.array_split(order, folds)]


def _check(config: MlpConfig) -> None:
    """A new run's config errors, before its folder is made."""
    if not config.dataset:
        raise RunError("no training set given: --dataset FOLDER (from `eifer train dataset`)")
    load_dataset(config.dataset)  # a bad training set fails before a run folder is made


def run_mlp(
    config: MlpConfig | None = None,
    *,
    resume: str | Path | None = None,
    stop_after_epoch: int | None = None,
    report: bool = True,
    bundle: bool = True,
) -> Path:
    """Cross-validate, evaluate, report and write the bundle; returns the run folder.

    ``resume``: a run folder to continue (its own config is used). ``stop_after_epoch``: stop
    every fold after that epoch (tests of resume)."""
    with open_run(config, resume, MlpConfig, "mlp", check=_check) as run:
        config, dist_ctx, folder = run.config, run.ctx, run.folder
        ts = load_dataset(config.dataset)
        data = prepare(ts, config)
        chash = config_hash(config, ts.sha256, ignore={"dataset": True})
        if run.resumed and run.info.get("config_hash") != chash:
            raise RunError(f"{folder}: its training set changed since the run started; not resumed")
        groups = assign_folds(data.participant.tolist(), config.folds, config.seed)
        run_info = {
            "config": config.model_dump(mode="json"),
            "config_hash": chash,
            "dataset": {"path": str(ts.path), "sha256": ts.sha256, "feature": ts.index["feature"],
                        "method": ts.index["method"], "channels": ts.channels},
            "git_commit": git_commit(),
            "torch": torch.__version__,
            "world_size": dist_ctx.world_size,
            "folds": {f"fold{k + 1}": held for k, held in enumerate(groups)},
            "reference_uv": data.reference_uv,
            "started": run.info.get("started", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
            "status": "running",
        }  # fmt: skip
        run.write_info(run_info)
        log.info("run %s: %d frames, %d participants, folds %s", folder, len(data.x_emg),
                 len(data.reference_uv), run_info["folds"])  # fmt: skip
        stopped = _cross_validate(config, data, groups, folder, dist_ctx, chash, stop_after_epoch)
        if stopped:
            return folder
        if config.final_model:
            final = train_fold(
                config, 0, data.x_emg, data.phi, folder / "checkpoints" / "final", dist_ctx,
                chash, on_epoch=_progress("final", config.epochs),
            )  # fmt: skip
        if dist_ctx.is_main:
            preds = _collect(folder, groups)
            driven = driven_columns(data.phi)
            metrics = evaluate(preds, ts.channels, driven)
            metrics["run"] = {k: run_info[k] for k in ("git_commit", "folds", "config")}
            (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
            if bundle and config.final_model:
                from training.bundle_out import write_bundle

                write_bundle(folder / "bundle", final, config, ts, run_info, metrics["headline"])
            if report:
                from training.report import write_report

                write_report(folder)
            run_info["status"] = "finished"
            run_info["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            run.write_info(run_info)
            log.info("run %s finished: %s", folder, json.dumps(metrics["headline"]))
        dist_ctx.barrier()
        return folder


def _progress(name: str, epochs: int) -> Any:
    def report(epoch: int, loss_e: float, loss_x: float) -> None:
        if epoch == 1 or epoch % max(1, epochs // 10) == 0 or epoch == epochs:
            log.info(
                "%s epoch %d/%d: EMG2Exp loss %.5f, Exp2EMG loss %.5f",
                name,
                epoch,
                epochs,
                loss_e,
                loss_x,
            )

    return report


def _cross_validate(
    config: MlpConfig, data: PhaseTwoData, groups: list[list[str]], folder: Path,
    dist_ctx: DistContext, config_hash: str, stop_after_epoch: int | None,
) -> bool:  # fmt: skip
    """Train and predict every fold; True when stopped early (``stop_after_epoch``)."""
    (folder / "folds").mkdir(exist_ok=True)
    for k, held in enumerate(groups, start=1):
        done = folder / "folds" / f"fold{k}.npz"
        if done.is_file():
            continue
        test = np.isin(data.participant, held)
        models = train_fold(
            config, k, data.x_emg[~test], data.phi[~test], folder / "checkpoints" / f"fold{k}",
            dist_ctx, config_hash, stop_after_epoch=stop_after_epoch,
            on_epoch=_progress(f"fold{k}", config.epochs),
        )  # fmt: skip
        if models.epoch < config.epochs:
            return True
        if dist_ctx.is_main:
            with torch.no_grad():
                phi_pred = models.emg2exp(torch.from_numpy(data.x_emg[test])).numpy()
                emg_pred = models.exp2emg(torch.from_numpy(data.phi[test])).numpy()
            tmp = done.with_suffix(".tmp.npz")
            np.savez(
                tmp, participant=data.participant[test], movement=data.movement[test],
                emg_true=data.x_emg[test], emg_pred=emg_pred, phi_true=data.phi[test],
                emg_truth=data.emg_truth[test],
                phi_pred=phi_pred,
            )  # fmt: skip
            tmp.replace(done)
        dist_ctx.barrier()
    return False


def _collect(folder: Path, groups: list[list[str]]) -> dict[str, np.ndarray]:
    columns: dict[str, list[np.ndarray]] = {}
    for k in range(1, len(groups) + 1):
        with np.load(folder / "folds" / f"fold{k}.npz", allow_pickle=False) as part:
            for name in part.files:
                columns.setdefault(name, []).append(part[name])
            columns.setdefault("fold", []).append(np.full(len(part["participant"]), f"fold{k}"))
    merged = {name: np.concatenate(v) for name, v in columns.items()}
    np.savez(folder / "predictions.npz", **merged)  # type: ignore[arg-type]  # numpy stub: **kwds as allow_pickle
    return merged

"""The demo's trained models: small committed folders, and the full bundle assembled from them.

A phase-2 run (``eifer train mlp``) writes a bundle of ONNX graphs and weights; the demo needs
only what was trained, with its provenance:

- ``models/demo-mlp``: the two MLPs (``emg2exp.safetensors``, ``exp2emg.safetensors``, ~100 kB
  each) and ``provenance.json`` (training set, participants and seeds, config, git commit,
  held-out metrics, feature, channels, normalisation); :func:`export_demo_weights` cuts it out
  of a run.
- ``models/demo-encoders``: the face encoders of an ``eifer train encoders`` / ``phase1`` run
  (``encoders.safetensors`` in float16, ``encoders.json`` their architecture, and
  ``provenance.json``: the method that trained them, training and held-out participant seeds,
  the held-out evaluation, the crop they read, the recipe);
  :func:`training.encoder_bundle.export_demo_encoders` (``eifer train encoders|phase1
  --demo-encoders DIR``) cuts it out of a run.

:func:`create_trained_demo_bundle` assembles a verified bundle from both at demo start
(without an encoders folder: seeded random encoders, and the manifest says so).

Regenerate the committed folders from runs::

    python -m eifer_models.demo_weights --run runs/<run> --out models/demo-mlp --overwrite \
        --recipe "eifer synth ...; eifer train dataset ...; eifer train mlp ..."
    eifer train encoders --resume runs/<run> --demo-encoders models/demo-encoders
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from eifer_models.bundle import Bundle, load_bundle, save_bundle
from eifer_models.encoders import N_EXP, N_SHAPE, FaceEncoder, SmirkEncoder, build_encoder
from eifer_models.mlp import MLP, EMG2Exp, Exp2EMG
from streaming.errors import BundleError

__all__ = [
    "DEMO_ENCODERS",
    "DEMO_WEIGHTS",
    "PROVENANCE",
    "create_trained_demo_bundle",
    "export_demo_exp2emg",
    "export_demo_weights",
    "read_encoders_provenance",
    "read_provenance",
]

DEMO_WEIGHTS = Path(__file__).resolve().parents[1] / "models" / "demo-mlp"
DEMO_ENCODERS = Path(__file__).resolve().parents[1] / "models" / "demo-encoders"
PROVENANCE = "provenance.json"
MLP_GRAPHS = ("emg2exp", "exp2emg")
_SEED = re.compile(r"(\d+)$")  # eifer synth names its participants synth-<seed>


def _seeds(participants: list[str]) -> list[int]:
    """Seeds of ``eifer synth`` participants (``synth-0200`` -> 200); [] if any is not one."""
    seeds = [_SEED.search(p) for p in participants]
    return [int(m[1]) for m in seeds if m] if all(seeds) else []


def export_demo_weights(
    run: str | Path, out: str | Path, *, overwrite: bool = False, recipe: str = ""
) -> Path:
    """Copy a phase-2 run's trained MLPs and their provenance into ``out``.

    Parameters
    ----------
    run : str | Path
        The run folder (``run.json``, ``metrics.json``, ``bundle/``).
    out : str | Path
        The weight folder to write (e.g. ``models/demo-mlp``).
    overwrite : bool
        Replace the files of an existing folder.
    recipe : str
        How the run was made (the commands), kept in the provenance.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    streaming.errors.BundleError
        The run is incomplete, its bundle does not verify, or ``out`` exists without
        ``overwrite``.
    """
    run, out = Path(run), Path(out)
    for name in ("run.json", "metrics.json", "bundle"):
        if not (run / name).exists():
            raise BundleError(f"{run}: not a finished phase-2 run ({name} missing)")
    bundle = load_bundle(run / "bundle")
    if not bundle.trained:
        raise BundleError(f"{run / 'bundle'}: manifest says trained = false")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise BundleError(f"{out}: folder exists and is not empty (pass --overwrite)")
    run_info = json.loads((run / "run.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    participants = sorted(metrics.get("participant", {}))
    manifest = bundle.manifest
    provenance = {
        "what": "phase-2 MLPs (EMG2Exp, Exp2EMG) of the demo; encoders are not included",
        "run": run.resolve().name,
        "recipe": recipe,
        "producer": manifest.producer,
        "git_commit": run_info.get("git_commit"),
        "dataset": {
            k: v for k, v in run_info["dataset"].items() if k not in ("feature", "channels")
        },
        "participants": participants,
        "participant_seeds": _seeds(participants),
        "folds": run_info.get("folds"),
        "config": run_info.get("config"),
        "held_out_metrics": metrics.get("headline", {}),
        "feature": manifest.feature,
        "emg_channels": list(manifest.emg_channels),
        "emg_normalisation": manifest.input_normalisation["emg"]["method"],
        "crop": manifest.crop.model_dump(),
        "graphs": {name: manifest.graphs[name].config for name in MLP_GRAPHS},
        "expression_dim": manifest.expression_dim,
    }
    out.mkdir(parents=True, exist_ok=True)
    for name in MLP_GRAPHS:
        shutil.copyfile(bundle.path / bundle.graph(name).weights, out / f"{name}.safetensors")
    (out / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n")
    return out


def export_demo_exp2emg(run: str | Path, out: str | Path = DEMO_WEIGHTS, recipe: str = "") -> Path:
    """Replace the Exp2EMG of the weight folder ``out`` with that of a phase-2 run trained on
    the phi of encoders (``phi_source = "encoders"``) of the same participants, so
    ``emg_from_video`` reads the encoders' phi as trained (EIFER: Exp2EMG maps the expression the
    video branch gives to muscle activity); EMG2Exp stays the one trained on the true phi. The
    provenance's ``exp2emg`` says which run, which encoders and its held-out r.

    Raises
    ------
    streaming.errors.BundleError
        The run is incomplete, was trained on the true phi, on other participants, or has an
        Exp2EMG of another shape, feature or normalisation than the folder's.
    """
    run, out = Path(run), Path(out)
    for name in ("run.json", "metrics.json", "bundle"):
        if not (run / name).exists():
            raise BundleError(f"{run}: not a finished phase-2 run ({name} missing)")
    provenance = read_provenance(out)
    run_info = json.loads((run / "run.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    config = run_info.get("config", {})
    if config.get("phi_source") != "encoders":
        raise BundleError(f"{run}: trained on the true phi, not on encoders' (use the full export)")
    seeds = _seeds(sorted(metrics.get("participant", {})))
    if seeds != provenance["participant_seeds"]:
        raise BundleError(
            f"{run}: participants {seeds} differ from {out}'s {provenance['participant_seeds']}"
        )
    manifest = load_bundle(run / "bundle").manifest
    mismatch = [
        what
        for what, mine, theirs in (
            ("graph", manifest.graphs["exp2emg"].config, provenance["graphs"]["exp2emg"]),
            ("feature", manifest.feature, provenance["feature"]),
            ("channels", list(manifest.emg_channels), provenance["emg_channels"]),
            ("normalisation", manifest.input_normalisation["emg"]["method"],
             provenance["emg_normalisation"]),
        )
        if mine != theirs
    ]  # fmt: skip
    if mismatch:
        raise BundleError(f"{run}: Exp2EMG differs from {out}'s in {', '.join(mismatch)}")
    encoders = config.get("encoders_bundle", "")
    encoders_run = ""
    if encoders and (Path(encoders) / "manifest.json").is_file():
        encoders_run = load_bundle(encoders).manifest.producer
    headline = metrics.get("headline", {})
    shutil.copyfile(
        run / "bundle" / manifest.graphs["exp2emg"].weights, out / "exp2emg.safetensors"
    )
    provenance["exp2emg"] = {
        "run": run.resolve().name,
        "recipe": recipe,
        "phi_source": "encoders",
        "encoders": encoders_run or encoders,
        "git_commit": run_info.get("git_commit"),
        "dataset": {k: v for k, v in run_info["dataset"].items() if k in ("path", "sha256")},
        "held_out_metrics": {k: v for k, v in headline.items() if k.startswith("exp2emg")},
    }
    (out / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n")
    return out


def read_provenance(weights: str | Path = DEMO_WEIGHTS) -> dict[str, Any]:
    """The weight folder's ``provenance.json`` (a clear error when the folder is incomplete)."""
    weights = Path(weights)
    try:
        provenance = json.loads((weights / PROVENANCE).read_text())
    except (OSError, ValueError) as exc:
        raise BundleError(f"{weights / PROVENANCE}: not readable ({exc})") from None
    for key in ("graphs", "feature", "emg_channels", "emg_normalisation", "participant_seeds"):
        if key not in provenance:
            raise BundleError(f"{weights / PROVENANCE}: no {key!r}")
    return provenance


def _mlp(weights: Path, name: str, config: dict[str, Any]) -> MLP:
    module: MLP = (EMG2Exp if name == "emg2exp" else Exp2EMG)(**config)
    path = weights / f"{name}.safetensors"
    try:
        module.load_state_dict(load_file(str(path)), strict=True)
    except (OSError, RuntimeError) as exc:
        raise BundleError(f"{path}: does not fit graph {name!r} {config}: {exc}") from None
    module.eval()
    return module


def read_encoders_provenance(folder: str | Path = DEMO_ENCODERS) -> dict[str, Any] | None:
    """The demo encoders' provenance (None: the folder has no encoders)."""
    file = Path(folder) / PROVENANCE
    if not file.is_file():
        return None
    try:
        return dict(json.loads(file.read_text()))
    except (OSError, ValueError) as exc:
        raise BundleError(f"{file}: unreadable ({exc})") from None


def _demo_encoders(folder: Path) -> tuple[FaceEncoder, dict[str, Any]]:
    provenance = read_encoders_provenance(folder)
    assert provenance is not None
    try:
        encoder = build_encoder(json.loads((folder / "encoders.json").read_text()))
        state = load_file(str(folder / "encoders.safetensors"))
        encoder.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        raise BundleError(f"{folder}: encoders do not load ({exc})") from None
    return encoder.eval(), provenance


def create_trained_demo_bundle(
    path: str | Path,
    *,
    weights: str | Path = DEMO_WEIGHTS,
    encoders: str | Path | None = DEMO_ENCODERS,
    encoder_seed: int = 0,
    overwrite: bool = False,
) -> Bundle:
    """A verified bundle: the trained MLPs of ``weights`` + the trained encoders of
    ``encoders`` (their crop in the manifest; ``training.encoders`` says the method that
    trained them), or, without an encoders folder, seeded random (untrained) encoders.

    The manifest says ``trained = true`` (the MLPs are) and, in its description and
    ``training.encoders_trained``, whether the encoders are (untrained: ``phi_video`` and
    ``emg_from_video`` are noise, ``phi_emg`` is the trained EMG2Exp).
    """
    from streaming.pipeline.profile import Normalisation

    weights = Path(weights)
    provenance = read_provenance(weights)
    mlps = {name: _mlp(weights, name, provenance["graphs"][name]) for name in MLP_GRAPHS}
    seeds = provenance["participant_seeds"]
    r = provenance.get("held_out_metrics", {}).get("emg2exp_mean_r_held_out")
    held_out_r = "unknown" if r is None else f"{r:.3f}"
    trained_on = f"synthetic participants {', '.join(map(str, seeds))}" if seeds else "a run"
    if "exp2emg" in provenance:  # Exp2EMG trained on the encoders' phi (export_demo_exp2emg)
        trained_on += f"; Exp2EMG on the phi of encoders (run {provenance['exp2emg']['run']})"
    crop = provenance.get("crop")
    if encoders is not None and read_encoders_provenance(encoders) is not None:
        encoder, enc = _demo_encoders(Path(encoders))
        r_occ = enc["evaluation_heldout"]["occluded"]["mean_r"]
        crop = enc["crop"]["spec"]
        encoder_note = (
            f"encoders TRAINED ({enc['method']}; run {enc['run']}; held-out participants "
            f"under electrodes r {r_occ})"
        )
        encoder_training: dict[str, Any] = {
            "encoders_trained": True,
            "encoders": enc["method"],
            "encoders_provenance": {k: v for k, v in enc.items() if k != "config"},
        }
    else:
        torch.manual_seed(encoder_seed)
        encoder = SmirkEncoder(N_EXP, N_SHAPE).eval()
        encoder_note = (
            f"encoders UNTRAINED (seeded random, seed {encoder_seed}): phi_video and "
            "emg_from_video are noise"
        )
        encoder_training = {
            "encoders_trained": False,
            "encoders": f"UNTRAINED random encoders (seed {encoder_seed})",
        }
    return save_bundle(
        path,
        encoder,
        mlps["emg2exp"],
        mlps["exp2emg"],
        emg_channels=provenance["emg_channels"],
        feature=provenance["feature"],
        trained=True,
        producer=f"eifer_models.demo_weights (run {provenance.get('run')})",
        description=(
            f"demo bundle: MLPs (EMG2Exp, Exp2EMG) trained on {trained_on} (held-out EMG2Exp r "
            f"{held_out_r}); {encoder_note}"
        ),
        fp16_onnx=False,
        overwrite=overwrite,
        training={
            "phase": 2,
            "weights": str(weights),
            **{k: v for k, v in provenance.items() if k not in ("graphs", "feature")},
            **encoder_training,
        },
        crop=crop,
        emg_normalisation=Normalisation.from_dict(provenance["emg_normalisation"], PROVENANCE),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eifer_models.demo_weights",
        description="cut the demo's weight folder (trained MLPs + provenance) out of a run",
    )
    parser.add_argument("--run", required=True, help="a finished `eifer train mlp` run folder")
    parser.add_argument("--out", default=str(DEMO_WEIGHTS), help="weight folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    parser.add_argument("--recipe", default="", help="how the run was made, kept in provenance")
    parser.add_argument(
        "--exp2emg-only",
        action="store_true",
        help="replace only Exp2EMG, with the run's trained on encoders' phi (phi_source = encoders)",
    )
    args = parser.parse_args(argv)
    try:
        if args.exp2emg_only:
            out = export_demo_exp2emg(args.run, args.out, recipe=args.recipe)
        else:
            out = export_demo_weights(
                args.run, args.out, overwrite=args.overwrite, recipe=args.recipe
            )
    except BundleError as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    provenance = read_provenance(out)
    size_kb = sum(p.stat().st_size for p in out.iterdir()) / 1024
    which = (
        f"Exp2EMG of run {provenance['exp2emg']['run']} (encoders' phi)"
        if args.exp2emg_only
        else f"MLPs of run {provenance['run']}"
    )
    print(f"{out}: {which} (participant seeds {provenance['participant_seeds']}), {size_kb:.0f} kB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

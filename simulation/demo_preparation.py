"""What the demo prepares before its nodes start: a held-out participant, the demo bundle and that
participant's calibration profile (``[prepare.demo]`` of ``configs/sessions/demo.toml``).

:func:`check_held_out` refuses a participant seed the demo's models were trained on;
:func:`prepare_demo` assembles the bundle from the committed weights
(:func:`eifer_models.demo_weights.create_trained_demo_bundle`) and simulates the participant's
calibration run for its profile, as a lab makes one (:func:`demo_profile`). It returns the files
as the session's ``{demo_bundle}`` / ``{demo_profile}`` placeholders. torch is imported only by
the functions that need it, so a session file naming this step loads fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import NonNegativeInt

from configs import config_path
from streaming.config import Config, load_toml
from streaming.errors import EiferError

__all__ = [
    "PLACEHOLDERS",
    "DemoError",
    "DemoPreparation",
    "check_held_out",
    "demo_profile",
    "prepare_demo",
    "training_seeds",
]

PLACEHOLDERS = ("demo_bundle", "demo_profile")  # what prepare_demo returns
CALIBRATION_S = 340.0  # the functional block of the protocol (11 movements x 3 x 10 s + lead-in)
CALIBRATION_STEPS = 10  # progress lines while the calibration run is simulated

Say = Callable[[str], None]


class DemoError(EiferError):
    """The demo cannot run as asked (e.g. a participant seed its models were trained on)."""


class DemoPreparation(Config):
    """``[prepare.demo]``: the participant and the weights the demo's models come from."""

    participant_seed: NonNegativeInt
    weights: str = ""  # the demo MLPs' folder; "" = models/demo-mlp
    models: bool = True  # False: no bundle ({demo_bundle} is ""), the pipeline runs EMG only


def _weights(folder: str = "") -> Path:
    from eifer_models.demo_weights import DEMO_WEIGHTS

    return Path(folder) if folder else DEMO_WEIGHTS


def training_seeds(weights: str = "") -> list[int]:
    """The participant seeds the demo's models were trained on: the MLPs' and the encoders'
    (their provenance)."""
    from eifer_models.demo_weights import read_encoders_provenance, read_provenance

    seeds = [int(s) for s in read_provenance(_weights(weights))["participant_seeds"]]
    encoders = read_encoders_provenance()
    if encoders is not None:
        seeds += [int(s) for s in encoders["train_participant_seeds"]]
    return sorted(set(seeds))


def check_held_out(seed: int, weights: str = "", what: str = "participant seed") -> None:
    """:class:`DemoError` (naming ``what``) when the demo's models were trained on ``seed``."""
    seeds = training_seeds(weights)
    if seed in seeds:
        raise DemoError(
            f"{what} {seed}: the demo's models were trained on this participant "
            f"({_weights(weights)}); choose a seed outside {_ranges(seeds)}"
        )


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``1-3, 7``."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def demo_bundle(directory: Path, weights: str = "") -> Path:
    """The demo bundle: the committed trained MLPs and encoders (``models/demo-mlp``,
    ``models/demo-encoders``; without the latter, seeded random encoders, and the manifest
    says so)."""
    from eifer_models.demo_weights import create_trained_demo_bundle

    return create_trained_demo_bundle(directory / "demo-bundle", weights=_weights(weights)).path


def demo_profile(
    directory: Path,
    seconds: float = CALIBRATION_S,
    *,
    seed: int,
    weights: str = "",
    say: Say | None = None,
) -> Path:
    """The participant's normalisation profile, as a lab makes it: a calibration recording of
    the protocol's functional movements (here simulated for the participant ``seed`` with the
    EMG node's shipped simulator), through the same online chain the pipeline runs, divided by
    the bundle's normalisation method (EIFER.md: per-participant max normalisation; the pipeline
    refuses a mismatch)."""
    import numpy as np

    from simulation import SimulatorConfig
    from simulation.emg import EmgSimulator
    from streaming.pipeline.profile import Normalisation, compute_profile

    try:
        from eifer_models.demo_weights import read_provenance

        provenance = read_provenance(_weights(weights))
        normalisation = Normalisation.from_dict(provenance["emg_normalisation"], "demo weights")
        feature = str(provenance["feature"]["name"])
    except ImportError:
        normalisation, feature = None, "low_latency"
    shipped = load_toml(config_path("nodes", "emg.toml")).get("simulator", {})
    config = SimulatorConfig.model_validate({**shipped, "seed": seed})
    simulator = EmgSimulator(config)
    total = int(seconds * simulator.rate_hz)
    parts = []
    for step in range(CALIBRATION_STEPS):
        n = total * (step + 1) // CALIBRATION_STEPS - total * step // CALIBRATION_STEPS
        parts.append(simulator.generate(n)[0])
        if say is not None:
            say(f"calibration: {100 * (step + 1) // CALIBRATION_STEPS:3d} % "
                f"of {seconds:.0f} s of functional movements simulated")  # fmt: skip
    profile = compute_profile(
        np.concatenate(parts), simulator.rate_hz, simulator.labels,
        participant=f"demo-seed{seed}", feature=feature, normalisation=normalisation,
    )  # fmt: skip
    return profile.save(directory / "demo-profile.json")


def prepare_demo(config: DemoPreparation, work: Path, say: Say) -> dict[str, str]:
    """The bundle (unless ``models`` is off) and the profile, made in ``work``; returns
    ``{"demo_bundle": path or "", "demo_profile": path}``. Call :func:`check_held_out` first
    (the session runner does, before any node starts)."""
    made = {"demo_bundle": ""}
    if config.models:
        say("models: assembling the demo bundle (trained MLPs and encoders) ...")
        bundle = demo_bundle(work, config.weights)
        from eifer_models.bundle import load_bundle

        manifest = load_bundle(bundle, verify=False).manifest
        say(f"models: {bundle}\n  {manifest.description}")
        made["demo_bundle"] = str(bundle)
    say("calibration: simulating the participant's calibration run for the profile ...")
    profile = demo_profile(work, seed=config.participant_seed, weights=config.weights, say=say)
    say(f"calibration: profile {profile.name} done")
    made["demo_profile"] = str(profile)
    return made

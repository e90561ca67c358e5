"""The synthetic participant: one activation source drives the EMG and the face.

Per muscle and side an activation ``a(t)`` in 0..1 comes from the EMG simulator
(:meth:`~simulation.emg.EmgSimulator.activation_at`: its movement script or the protocol
markers it follows, with its side gains), so the EMG and the face never disagree. The face is
``phi(t) = M(g * a(t - EMD))``: ``g`` the participant's per-muscle, per-side gains, ``EMD`` the
electromechanical delay, ``M`` the fixed muscle -> expression map of ``configs/muscle_map.toml``
(EIFER Table 1; sources there) with a mild saturation. ``phi`` is EIFER's 55-d expression vector
(50 expression + 2 eyelid + 3 jaw) in the synthetic head's components.

Participants differ by seed: head shape, skin tone and texture, hair, muscle gains and their
left/right asymmetry, small head motion, lighting, background, sensor noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import Field

from configs import config_path
from eifer_models.synthetic_head import EXPRESSION_NAMES, LATERAL_EXPRESSION_NAMES
from simulation.emg import EmgSimulator
from streaming.config import Config, ConfigError, load_toml, validate

__all__ = [
    "JAW_INDEX",
    "N_EXPRESSION",
    "PHI_DIM",
    "PHI_LABELS",
    "ExpressionMap",
    "FaceState",
    "MapLink",
    "MuscleMapConfig",
    "Participant",
    "ParticipantTraits",
    "load_muscle_map",
]

N_EXPRESSION = 50  # FLAME expression components in phi (SMIRK/EIFER)
PHI_DIM = N_EXPRESSION + 2 + 3  # + eyelid (left, right) + jaw (axis-angle)
EYELID_INDEX = {"l": N_EXPRESSION, "r": N_EXPRESSION + 1}
JAW_INDEX = N_EXPRESSION + 2  # jaw rotation about x (opens the mouth), then y, z
PHI_LABELS = [
    (list(EXPRESSION_NAMES) + list(LATERAL_EXPRESSION_NAMES))[i]
    if i < len(EXPRESSION_NAMES) + len(LATERAL_EXPRESSION_NAMES)
    else f"exp{i}"
    for i in range(N_EXPRESSION)
] + ["eyelid_l", "eyelid_r", "jaw_x", "jaw_y", "jaw_z"]


class MapLink(Config):
    """One muscle moving one face output, per side (see configs/muscle_map.toml)."""

    muscle: str
    action_units: list[int] = []
    target: str  # a synthetic-head movement name, "eyelid" or "jaw_open"
    weight: float = Field(gt=0)


class MuscleMapConfig(Config):
    """The muscle -> expression map (``configs/muscle_map.toml``): delay, saturation, links."""

    electromechanical_delay_ms: float = Field(50.0, ge=0, le=500)
    saturation: float = Field(1.25, gt=1.0)
    limits: dict[str, float] = {}
    links: list[MapLink] = Field(min_length=1)


def load_muscle_map(path: str | Path | None = None) -> MuscleMapConfig:
    """The muscle -> expression map (default: the shipped ``configs/muscle_map.toml``)."""
    path = Path(path) if path is not None else config_path("muscle_map.toml")
    return validate(MuscleMapConfig, load_toml(path), str(path))


def _target_index(target: str, side: str) -> int:
    if target == "eyelid":
        return EYELID_INDEX[side]
    if target == "jaw_open":
        return JAW_INDEX
    name = f"{target}_{side}"
    if name not in LATERAL_EXPRESSION_NAMES:
        raise ConfigError(
            f"muscle map: unknown target {target!r}; known: {list(EXPRESSION_NAMES)}, "
            "'eyelid', 'jaw_open'"
        )
    return len(EXPRESSION_NAMES) + LATERAL_EXPRESSION_NAMES.index(name)


class ExpressionMap:
    """Activations ``(n, M)`` (``<muscle>_l``, ``<muscle>_r`` order) -> ``phi`` ``(n, 55)``.

    Linear ``W a`` (sides kept apart; the jaw takes half of each side's masseter), then per output
    ``L tanh(x / L)`` with ``L`` = ``saturation`` x the output at full activation, or the
    configured limit (eyelid: 1 = closed).
    """

    def __init__(self, config: MuscleMapConfig, muscle_labels: list[str]) -> None:
        self.config = config
        self.muscle_labels = list(muscle_labels)
        weights = np.zeros((PHI_DIM, len(muscle_labels)))
        for link in config.links:
            for side in ("l", "r"):
                label = f"{link.muscle}_{side}"
                if label not in self.muscle_labels:
                    muscles = sorted({m[:-2] for m in self.muscle_labels})
                    raise ConfigError(
                        f"muscle map: unknown muscle {link.muscle!r}; known: {muscles}"
                    )
                share = 0.5 if link.target == "jaw_open" else 1.0
                weights[_target_index(link.target, side), self.muscle_labels.index(label)] += (
                    share * link.weight
                )
        self.weights = weights
        limit = config.saturation * weights.sum(axis=1)
        for target, value in config.limits.items():
            if value <= 0:
                raise ConfigError(f"muscle map: limit of {target!r} must be > 0, got {value}")
            for side in ("l", "r"):
                limit[_target_index(target, side)] = value
        self.limit = np.where(limit > 0, limit, 1.0)
        self.delay_s = config.electromechanical_delay_ms / 1e3

    def __call__(self, activation: np.ndarray) -> np.ndarray:
        linear = np.asarray(activation, dtype=np.float64) @ self.weights.T
        return self.limit * np.tanh(linear / self.limit)

    def outputs_of(self, muscle_label: str) -> list[str]:
        """The phi labels a muscle (``<muscle>_<side>``) moves."""
        column = self.weights[:, self.muscle_labels.index(muscle_label)]
        return [PHI_LABELS[i] for i in np.flatnonzero(column)]


@dataclass(frozen=True)
class ParticipantTraits:
    """What makes one synthetic participant look and move unlike another (all from a seed)."""

    seed: int
    shape: np.ndarray  # (300,) synthetic-head shape coefficients
    skin_rgb: np.ndarray  # (3,) 0..1 albedo
    hair_rgb: np.ndarray
    lip_rgb: np.ndarray
    iris_rgb: np.ndarray
    background_rgb: np.ndarray  # (2, 3) wall colour top and bottom
    shirt_rgb: np.ndarray
    face_gain: np.ndarray  # (M,) per muscle and side: how much the face moves per activation
    motion_amplitude: np.ndarray  # (6,) rotation x,y,z (rad), shift x,y (fraction of frame), zoom
    motion_hz: np.ndarray  # (6,)
    motion_phase: np.ndarray  # (6,)
    light_direction: np.ndarray  # (3,) unit, towards the light
    light_rgb: np.ndarray  # (3,) colour times intensity
    ambient: float
    head_height_frac: float  # head height (chin to crown) / frame height
    centre_frac: tuple[float, float]  # head centre in the frame, fractions of width and height
    noise_sd: float  # sensor noise, 8-bit levels

    @classmethod
    def from_seed(cls, seed: int, n_muscle_labels: int) -> ParticipantTraits:
        rng = np.random.default_rng([seed, 1017])
        shape = np.zeros(300)
        shape[:3] = rng.normal(0, 0.5, 3)  # width, height, depth (8 / 6 / 6 % per unit)
        shape[3:] = rng.normal(0, 0.8, 297)
        # skin: a light-to-dark albedo line (sRGB-ish reflectances of Fitzpatrick I..VI skin)
        tone = rng.uniform(0.0, 1.0)
        skin = (1 - tone) * np.array([0.93, 0.78, 0.68]) + tone * np.array([0.42, 0.28, 0.20])
        hair = rng.choice(
            [[0.10, 0.07, 0.05], [0.25, 0.16, 0.09], [0.55, 0.40, 0.22], [0.05, 0.05, 0.05]]
        )
        iris = rng.choice([[0.30, 0.18, 0.08], [0.25, 0.40, 0.55], [0.30, 0.35, 0.20]])
        wall = rng.uniform(0.45, 0.85, 3)
        background = np.stack([wall, wall * rng.uniform(0.75, 0.95)])
        # muscle gains ~10 % apart; one side a bit weaker (healthy faces are mildly asymmetric)
        gain = np.exp(rng.normal(0.0, 0.1, n_muscle_labels))
        weak_side = rng.integers(0, 2)
        gain[weak_side::2] *= 1.0 - rng.uniform(0.0, 0.15)
        amplitude = np.array(
            [
                rng.uniform(0.01, 0.03),  # nod (rad)
                rng.uniform(0.01, 0.04),  # turn
                rng.uniform(0.005, 0.02),  # tilt
                rng.uniform(0.002, 0.008),  # shift x (fraction of frame width)
                rng.uniform(0.002, 0.008),  # shift y
                rng.uniform(0.0, 0.01),  # zoom (leaning in)
            ]
        )
        light = np.array([rng.uniform(-0.6, 0.6), rng.uniform(0.1, 0.7), 1.0])
        return cls(
            seed=seed,
            shape=shape,
            skin_rgb=skin,
            hair_rgb=np.asarray(hair),
            lip_rgb=skin * np.array([0.85, 0.55, 0.55]),
            iris_rgb=np.asarray(iris),
            background_rgb=background,
            shirt_rgb=rng.uniform(0.1, 0.7, 3),
            face_gain=gain,
            motion_amplitude=amplitude,
            motion_hz=rng.uniform(0.05, 0.25, 6),
            motion_phase=rng.uniform(0, 2 * np.pi, 6),
            light_direction=light / np.linalg.norm(light),
            light_rgb=rng.uniform(0.55, 0.75) * np.array([1.0, rng.uniform(0.93, 1.0), 0.9]),
            ambient=float(rng.uniform(0.35, 0.5)),
            head_height_frac=float(rng.uniform(0.52, 0.62)),
            centre_frac=(float(rng.uniform(0.45, 0.55)), float(rng.uniform(0.40, 0.46))),
            noise_sd=float(rng.uniform(1.0, 2.5)),
        )


@dataclass(frozen=True)
class FaceState:
    """The face at times ``t_s``: ``phi`` (n, 55), head rotation (n, 3) axis-angle (FLAME
    global pose), head centre (n, 2) in frame fractions, zoom (n,) relative size, and the
    activation that drove it (n, M), sampled at ``t_s`` (not delayed)."""

    t_s: np.ndarray
    phi: np.ndarray
    rotation: np.ndarray
    centre_frac: np.ndarray
    zoom: np.ndarray
    activation: np.ndarray


class Participant:
    """A seeded participant whose face follows the activations of ``simulator``.

    ``state(t_s)`` at simulator times (seconds since the simulator's sample 0). ``rest`` gives an
    occlusion-free reference without movement changes (nothing here depends on it).
    """

    def __init__(
        self,
        seed: int,
        simulator: EmgSimulator,
        muscle_map: MuscleMapConfig | None = None,
    ) -> None:
        self.seed = seed
        self.simulator = simulator
        self.muscle_labels = simulator.muscle_labels
        self.map = ExpressionMap(muscle_map or load_muscle_map(), self.muscle_labels)
        self.traits = ParticipantTraits.from_seed(seed, len(self.muscle_labels))

    @property
    def delay_s(self) -> float:
        return self.map.delay_s

    def activation(self, t_s: np.ndarray) -> np.ndarray:
        """``(n, M)`` true activation (the EMG simulator's) at simulator times ``t_s``."""
        return self.simulator.activation_at(np.atleast_1d(np.asarray(t_s, dtype=np.float64)))

    def phi(self, t_s: np.ndarray) -> np.ndarray:
        """``(n, 55)`` expression: the map of the gained activation one EMD earlier."""
        t = np.atleast_1d(np.asarray(t_s, dtype=np.float64))
        return self.map(self.activation(t - self.delay_s) * self.traits.face_gain)

    def state(self, t_s: np.ndarray | float) -> FaceState:
        t = np.atleast_1d(np.asarray(t_s, dtype=np.float64))
        tr = self.traits
        wave = tr.motion_amplitude * np.sin(2 * np.pi * tr.motion_hz * t[:, None] + tr.motion_phase)
        centre = np.asarray(tr.centre_frac) + wave[:, 3:5]
        return FaceState(
            t_s=t,
            phi=self.phi(t),
            rotation=wave[:, 0:3],
            centre_frac=centre,
            zoom=1.0 + wave[:, 5],
            activation=self.activation(t),
        )

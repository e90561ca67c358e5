"""The participant model: one activation source, the muscle -> expression map on the right side,
the electromechanical delay, mild saturation, participants that differ by seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eifer_models.flame import FLAME
from eifer_models.synthetic_head import make_synthetic_head
from simulation import EmgSimulator, SimulatorConfig
from simulation.participant import (
    PHI_LABELS,
    ExpressionMap,
    MuscleMapConfig,
    Participant,
    load_muscle_map,
)
from simulation.participant.model import N_EXPRESSION
from streaming.config import ConfigError


@pytest.fixture(scope="module")
def flame() -> FLAME:
    return FLAME(make_synthetic_head(), n_shape=1, n_exp=N_EXPRESSION).eval()


@pytest.fixture(scope="module")
def simulator() -> EmgSimulator:
    return EmgSimulator(SimulatorConfig(seed=4))


def _activation(labels: list[str], **levels: float) -> np.ndarray:
    a = np.zeros((1, len(labels)))
    for label, level in levels.items():
        a[0, labels.index(label)] = level
    return a


def _landmarks(flame: FLAME, phi: np.ndarray) -> np.ndarray:
    p = torch.as_tensor(phi, dtype=torch.float32)
    with torch.no_grad():
        out = flame(
            expression=p[:, :N_EXPRESSION],
            eyelid=p[:, N_EXPRESSION : N_EXPRESSION + 2],
            jaw=p[:, N_EXPRESSION + 2 :],
        )
    return out.landmarks[0].numpy()


# iBUG-68 indices into the 51 static landmarks (17..67): mouth corners 48 (subject's right, -x)
# and 54 (left, +x), brows 19 and 24, chin region via lower lip 57
RIGHT_CORNER, LEFT_CORNER = 48 - 17, 54 - 17
RIGHT_BROW, LEFT_BROW = 19 - 17, 24 - 17


def test_zygomaticus_raises_the_mouth_corner_on_its_own_side_only(flame, simulator) -> None:
    mapping = ExpressionMap(load_muscle_map(), simulator.muscle_labels)
    labels = simulator.muscle_labels
    rest = _landmarks(flame, mapping(np.zeros((1, len(labels)))))
    left = _landmarks(flame, mapping(_activation(labels, zygomaticus_major_l=0.8)))
    right = _landmarks(flame, mapping(_activation(labels, zygomaticus_major_r=0.8)))
    assert rest[LEFT_CORNER, 0] > 0 > rest[RIGHT_CORNER, 0]  # FLAME: +x is the subject's left
    lift = 1e3 * (left - rest)[:, 1]  # mm, y up
    assert lift[LEFT_CORNER] > 1.5, f"left corner rose only {lift[LEFT_CORNER]:.2f} mm"
    assert abs(lift[RIGHT_CORNER]) < 0.1 * lift[LEFT_CORNER]
    lift_r = 1e3 * (right - rest)[:, 1]
    assert lift_r[RIGHT_CORNER] > 1.5 and abs(lift_r[LEFT_CORNER]) < 0.1 * lift_r[RIGHT_CORNER]


def test_frontalis_raises_the_brow_and_depressor_lowers_the_corner(flame, simulator) -> None:
    mapping = ExpressionMap(load_muscle_map(), simulator.muscle_labels)
    labels = simulator.muscle_labels
    rest = _landmarks(flame, mapping(np.zeros((1, len(labels)))))
    brow = _landmarks(flame, mapping(_activation(labels, frontalis_medialis_r=1.0)))
    assert 1e3 * (brow - rest)[RIGHT_BROW, 1] > 1.0
    assert abs(1e3 * (brow - rest)[LEFT_BROW, 1]) < 0.2
    down = _landmarks(flame, mapping(_activation(labels, depressor_anguli_oris_l=1.0)))
    assert 1e3 * (down - rest)[LEFT_CORNER, 1] < -1.5


def test_every_muscle_moves_only_its_own_side(simulator) -> None:
    mapping = ExpressionMap(load_muscle_map(), simulator.muscle_labels)
    for label in simulator.muscle_labels:
        side = label[-1]
        for output in mapping.outputs_of(label):
            assert output.endswith(f"_{side}") or output == "jaw_x", (label, output)
    # each Table-1 muscle of the map moves something; the jaw takes both masseters
    moved = {lab[:-2] for lab in simulator.muscle_labels if mapping.outputs_of(lab)}
    assert {"zygomaticus_major", "orbicularis_oculi", "masseter", "mentalis"} <= moved
    assert mapping.outputs_of("masseter_l") == ["jaw_x"] == mapping.outputs_of("masseter_r")


def test_saturation_is_mild_and_monotonic(simulator) -> None:
    mapping = ExpressionMap(load_muscle_map(), simulator.muscle_labels)
    labels = simulator.muscle_labels
    levels = np.linspace(0, 1, 11)
    k = PHI_LABELS.index("smile_l")
    smile = [mapping(_activation(labels, zygomaticus_major_l=x))[0, k] for x in levels]
    assert np.all(np.diff(smile) > 0)
    linear = mapping.weights[k, labels.index("zygomaticus_major_l")]
    assert smile[1] == pytest.approx(0.1 * linear, rel=0.01)  # small: linear
    assert 0.75 * linear < smile[-1] < 0.9 * linear  # full: compressed by ~17 %
    eyelid = mapping(_activation(labels, orbicularis_oculi_l=1.0))[0, PHI_LABELS.index("eyelid_l")]
    assert 0.9 < eyelid <= 1.0  # eyelid limit: 1 = closed


def test_face_follows_the_emg_truth_one_delay_later(simulator) -> None:
    participant = Participant(4, simulator)
    assert participant.delay_s == pytest.approx(0.050)
    t = np.linspace(0, 200, 4001)
    # the activation is the EMG simulator's truth, sample for sample
    index = np.arange(0, 200 * 4096, 4096 // 20)
    np.testing.assert_array_equal(
        participant.activation(index / 4096.0), simulator.activation(index)
    )
    expected = participant.map(participant.activation(t - 0.05) * participant.traits.face_gain)
    np.testing.assert_allclose(participant.phi(t), expected)
    # a movement onset shows in phi exactly one delay after the activation starts
    active = participant.activation(t).max(axis=1) > 1e-6
    moving = np.abs(participant.phi(t)).max(axis=1) > 1e-6
    onset_a = t[np.flatnonzero(active)[0]]
    onset_phi = t[np.flatnonzero(moving)[0]]
    assert onset_phi - onset_a == pytest.approx(0.05, abs=0.051)
    assert onset_phi > onset_a


def test_participants_differ_by_seed_and_repeat_for_a_seed(simulator) -> None:
    a, b, again = Participant(1, simulator), Participant(2, simulator), Participant(1, simulator)
    assert not np.allclose(a.traits.shape, b.traits.shape)
    assert not np.allclose(a.traits.skin_rgb, b.traits.skin_rgb)
    assert not np.allclose(a.traits.face_gain, b.traits.face_gain)
    np.testing.assert_array_equal(a.traits.shape, again.traits.shape)
    np.testing.assert_array_equal(a.state(12.3).phi, again.state(12.3).phi)
    # gains are mildly asymmetric (left vs right of the same muscle)
    gain = a.traits.face_gain.reshape(-1, 2)
    assert 0 < np.abs(np.log(gain[:, 0] / gain[:, 1])).mean() < 0.4


def test_a_map_naming_an_unknown_muscle_or_target_is_a_clear_error(simulator) -> None:
    bad_muscle = MuscleMapConfig(links=[{"muscle": "buccinator", "target": "smile", "weight": 1}])
    with pytest.raises(ConfigError, match="buccinator"):
        ExpressionMap(bad_muscle, simulator.muscle_labels)
    bad_target = MuscleMapConfig(links=[{"muscle": "mentalis", "target": "wink", "weight": 1}])
    with pytest.raises(ConfigError, match="wink"):
        ExpressionMap(bad_target, simulator.muscle_labels)

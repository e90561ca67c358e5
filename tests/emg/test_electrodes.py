"""Electrode schemes: shipped Fridlund/Kuramoto files load with the documented layout."""

from __future__ import annotations

import numpy as np
import pytest

from streaming.acquisition.electrodes import available_schemes, load_scheme
from streaming.config import ConfigError


def test_fridlund_has_22_bipolar_channels_f1_to_f22_in_left_right_pairs() -> None:
    scheme = load_scheme("fridlund")
    assert scheme.montage == "bipolar"
    assert scheme.labels == [f"F{i}" for i in range(1, 23)]
    assert len(scheme.pairs) == 11
    # cvjena/electromyogram Fridlund.mapping: "<muscle> re" (right) is the odd id.
    for left, right in scheme.pairs:
        assert int(right[1:]) % 2 == 1 and int(left[1:]) == int(right[1:]) + 1
        assert scheme.channel(left).side == "left" and scheme.channel(right).side == "right"
        assert scheme.channel(left).muscle == scheme.channel(right).muscle


def test_fridlund_muscles_follow_the_jena_mapping() -> None:
    scheme = load_scheme("fridlund")
    expected = {
        "F1": "frontalis_medialis", "F3": "frontalis_lateralis", "F5": "corrugator_supercilii",
        "F7": "depressor_supercilii", "F9": "levator_labii_superioris",
        "F11": "orbicularis_oris", "F13": "depressor_anguli_oris", "F15": "mentalis",
        "F17": "orbicularis_oculi", "F19": "zygomaticus_major", "F21": "masseter",
    }  # fmt: skip
    for label, muscle in expected.items():
        assert scheme.muscles[scheme.index(label)] == muscle
    assert scheme.channel("F19").action_units == [11, 12]


def test_positions_are_mirror_symmetric_with_the_participants_left_on_the_viewers_right() -> None:
    for name in ("fridlund", "kuramoto"):
        scheme = load_scheme(name)
        pos = scheme.positions
        assert pos.shape == (len(scheme), 2) and np.all(np.abs(pos) <= 1.0)
        mirror = scheme.mirror_index()
        np.testing.assert_allclose(pos[mirror, 0], -pos[:, 0], atol=0.011)
        np.testing.assert_allclose(pos[mirror, 1], pos[:, 1])
        for label, side in zip(scheme.labels, scheme.sides, strict=True):
            x = pos[scheme.index(label), 0]
            assert (side == "left") == (x > 0) or side == "midline", label


def test_mmm_ordering_is_alphabetical_by_muscle_with_left_first() -> None:
    scheme = load_scheme("fridlund")
    order = scheme.ordering("mmm")
    assert sorted(order) == list(range(22))
    labels = [scheme.labels[i] for i in order]
    assert labels[:4] == ["F6", "F5", "F14", "F13"]  # Corrugator l/r, Depressor Ang. Oris l/r
    assert [scheme.channel(x).side for x in labels] == ["left", "right"] * 11
    data = np.arange(22)[None, :]
    assert data[:, order][0, 0] == scheme.index("F6")


def test_kuramoto_has_21_monopolar_channels_without_k11_k12_against_k24() -> None:
    scheme = load_scheme("kuramoto")
    assert scheme.montage == "monopolar"
    assert scheme.labels == [f"K{i}" for i in range(1, 24) if i not in (11, 12)]
    assert scheme.reference is not None and scheme.reference.label == "K24"
    assert "K24" not in scheme.labels
    guessed = [c.label for c in scheme.channels if c.position_guess]
    assert guessed == ["K21", "K22", "K23"]


def test_unknown_scheme_names_the_shipped_ones() -> None:
    assert {"fridlund", "kuramoto"} <= set(available_schemes())
    with pytest.raises(ConfigError, match=r"unknown electrode scheme 'nope'.*fridlund"):
        load_scheme("nope")


def test_unknown_label_raises_a_key_error_listing_channels() -> None:
    with pytest.raises(KeyError, match="no channel 'F23'"):
        load_scheme("fridlund").index("F23")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('name = "x"\nmontage = "bipolar"\n', "channels"),
        ('name = "x"\nmontage = "tripolar"\n[[channels]]\nlabel="A"\nside="left"\n'
         "position=[0,0]\n", "montage"),
        ('name = "x"\nmontage = "bipolar"\n[[channels]]\nlabel="A"\nside="left"\n'
         'partner="B"\nposition=[0,0]\n', "partner 'B' is not a channel"),
        ('name = "x"\nmontage = "bipolar"\n[[channels]]\nlabel="A"\nside="left"\n'
         "position=[0,0]\n[[channels]]\nlabel=\"A\"\nside=\"right\"\nposition=[0,0]\n",
         "duplicate channel labels"),
        ('name = "x"\nmontage = "bipolar"\n[orderings]\nmmm=["A","Z"]\n[[channels]]\nlabel="A"\n'
         'side="left"\nposition=[0,0]\n', "ordering 'mmm'"),
        ("name = [", "not valid TOML"),
    ],
)  # fmt: skip
def test_malformed_scheme_file_names_the_file_and_problem(tmp_path, body, message) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message) as info:
        load_scheme(path)
    assert "bad.toml" in str(info.value)

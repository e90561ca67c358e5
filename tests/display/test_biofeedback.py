"""Biofeedback score and symmetry index (streaming.pipeline.biofeedback) as specifications."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from configs import config_path
from streaming.acquisition.electrodes import load_scheme
from streaming.config import ConfigError
from streaming.pipeline.biofeedback import (
    FeedbackScorer,
    cosine_score,
    distance_score,
    load_movement_levels,
    load_reference,
    movement_target,
    pair_indices,
    save_reference,
    similarity_score,
    symmetry_index,
)


@pytest.fixture(scope="module")
def scheme():
    return load_scheme("fridlund")


@pytest.fixture(scope="module")
def movements():
    return load_movement_levels(config_path("movements.toml"))


def test_cosine_score_is_100_for_the_target_pattern_at_any_intensity() -> None:
    target = np.array([0.8, 0.1, 0.0, 0.4])
    assert cosine_score(target, target) == pytest.approx(100.0)
    assert cosine_score(0.3 * target, target) == pytest.approx(100.0)


def test_cosine_score_is_0_for_disjoint_muscles_and_in_between_for_partial_overlap() -> None:
    assert cosine_score([1, 0, 0], [0, 1, 0]) == pytest.approx(0.0)
    assert cosine_score([1, 1, 0], [1, 0, 0]) == pytest.approx(100 / np.sqrt(2))


def test_cosine_score_treats_rest_on_rest_as_a_match_and_rest_on_activity_as_none() -> None:
    assert cosine_score([0.01, 0.0, 0.01], [0, 0, 0]) == 100.0
    assert cosine_score([0.5, 0.0, 0.2], [0, 0, 0]) == 0.0
    assert cosine_score([0.0, 0.0, 0.0], [0.5, 0.5, 0.0]) == 0.0


def test_scores_ignore_missing_channels_and_clip_negative_noise() -> None:
    assert cosine_score([0.5, np.nan, 0.5], [1.0, 1.0, 1.0]) == pytest.approx(100.0)
    assert cosine_score([0.5, -0.2, 0.5], [1.0, 0.0, 1.0]) == pytest.approx(100.0)
    assert np.isnan(cosine_score([np.nan, np.nan], [1.0, 1.0]))


def test_distance_score_rewards_the_right_intensity_too() -> None:
    target = np.array([0.8, 0.1, 0.0, 0.4])
    assert distance_score(target, target) == pytest.approx(100.0)
    assert distance_score(0.5 * target, target) == pytest.approx(80.0, abs=0.5)
    assert distance_score(2.0 * target, target) == pytest.approx(80.0, abs=0.5)
    assert distance_score(0.9 * target, target) > distance_score(0.5 * target, target)
    assert distance_score([0, 0, 0, 0], [0, 0, 0, 0]) == pytest.approx(100.0)
    assert distance_score([1, 0, 0, 0], [0, 1, 0, 0]) < 0.2  # floor^2 only


def test_scores_stay_within_0_and_100_for_arbitrary_input() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        x, t = rng.normal(0, 2, 22), rng.normal(0, 2, 22)
        for metric in ("cosine", "distance"):
            assert 0.0 <= similarity_score(x, t, metric) <= 100.0


def test_scores_reject_mismatched_lengths_and_unknown_metrics() -> None:
    with pytest.raises(ValueError, match="same electrode scheme"):
        cosine_score([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="unknown score metric"):
        similarity_score([1.0], [1.0], "euclid")


def test_symmetry_index_is_normalised_left_minus_right() -> None:
    si = symmetry_index([1.0, 1.0, 0.0, 3.0], [1.0, 0.0, 1.0, 1.0])
    np.testing.assert_allclose(si, [0.0, 1.0, -1.0, 0.5])


def test_symmetry_index_is_undefined_when_both_sides_rest() -> None:
    si = symmetry_index([0.0, 0.5], [0.0, 0.5])
    assert np.isnan(si[0]) and si[1] == 0.0
    with pytest.raises(ValueError, match="shape"):
        symmetry_index([1.0, 2.0], [1.0])


def test_pairs_of_the_fridlund_scheme_index_left_and_right_channels(scheme) -> None:
    left, right = pair_indices(scheme.labels, scheme.pairs)
    assert len(left) == 11
    assert all(scheme.sides[i] == "left" for i in left)
    assert all(scheme.sides[i] == "right" for i in right)
    assert [scheme.muscles[i] for i in left] == [scheme.muscles[i] for i in right]
    with pytest.raises(ValueError, match="F99"):
        pair_indices(scheme.labels, [("F99", "F1")])


def test_movement_targets_put_the_muscle_level_on_both_sides(scheme, movements) -> None:
    target = movement_target(movements["Smile-Open"], scheme.muscles)
    zyg = [i for i, m in enumerate(scheme.muscles) if m == "zygomaticus_major"]
    assert len(zyg) == 2 and np.all(target[zyg] == pytest.approx(0.9))
    left, right = pair_indices(scheme.labels, scheme.pairs)
    np.testing.assert_array_equal(target[left], target[right])
    assert not movement_target(movements["Face-At-Rest"], scheme.muscles).any()


def test_movement_file_without_movements_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "m.toml"
    bad.write_text("[muscles.x]\nmax_uv = 1.0\n")
    with pytest.raises(ConfigError, match="movements"):
        load_movement_levels(bad)


def test_recorded_reference_round_trips_in_the_live_channel_order(tmp_path: Path) -> None:
    path = save_reference(
        tmp_path / "ref.toml", ["F2", "F1", "F3"], [0.2, 0.1, 0.3], note='my "best"'
    )
    np.testing.assert_allclose(load_reference(path, ["F1", "F2", "F3"]), [0.1, 0.2, 0.3])
    with pytest.raises(ConfigError, match="F4"):
        load_reference(path, ["F1", "F4"])


def test_scorer_smooths_activity_and_scores_the_target(scheme, movements) -> None:
    target = movement_target(movements["Lip-Pucker"], scheme.muscles)
    scorer = FeedbackScorer(scheme.labels, scheme.pairs, smoothing_s=0.3)
    scorer.set_target(target)
    result = scorer.process(np.zeros(22), 0.0)
    assert result["score"] == 0.0  # at rest, target active
    for k in range(1, 61):  # 2 s of the target pattern at 30 Hz
        result = scorer.process(target, k / 30)
    assert result["score"] > 99.0
    np.testing.assert_allclose(scorer.average, target, atol=1e-2)


def test_scorer_shows_a_weak_right_side_as_positive_symmetry(scheme, movements) -> None:
    target = movement_target(movements["Smile-Open"], scheme.muscles)
    palsy = target * np.where(np.array(scheme.sides) == "right", 0.25, 1.0)
    scorer = FeedbackScorer(scheme.labels, scheme.pairs)
    result = scorer.process(palsy, 0.0)
    assert result["score"] is None  # no target chosen
    active = target[pair_indices(scheme.labels, scheme.pairs)[0]] > 0
    np.testing.assert_allclose(result["symmetry"][active], 0.6)  # (1 - 0.25) / (1 + 0.25)
    assert np.isnan(result["symmetry"][~active]).all()


def test_scorer_rejects_activity_of_another_scheme(scheme) -> None:
    scorer = FeedbackScorer(scheme.labels, scheme.pairs)
    with pytest.raises(ValueError, match="channels"):
        scorer.process(np.zeros(16), 0.0)
    with pytest.raises(ValueError, match="channels"):
        scorer.set_target(np.zeros(3))


def test_a_saved_reference_can_be_chosen_as_target_by_file(scheme, tmp_path: Path) -> None:
    from nodes.display.feedback import Feedback

    target = np.linspace(0, 1, 22)
    path = save_reference(tmp_path / "ref.toml", scheme.labels, target)
    feedback = Feedback(scheme, {})
    feedback.select(f"file:{path}")
    result = feedback.process({"channels": scheme.labels, "emg_measured": 2 * target}, 0.0)
    assert result["score"] == pytest.approx(100.0)
    with pytest.raises(ConfigError, match="not found"):
        feedback.select(f"file:{tmp_path / 'missing.toml'}")


# ---- faults that used to poison the averages (issue 18, item 1) ---------------------------------
def test_non_finite_input_is_skipped_and_counted_per_channel(scheme, movements) -> None:
    target = movement_target(movements["Smile-Open"], scheme.muscles) + 0.2  # every channel
    scorer = FeedbackScorer(scheme.labels, scheme.pairs)
    scorer.set_target(target)
    first = target.copy()
    first[0] = np.nan  # one missing channel in the first message
    scorer.process(first, 0.0)
    scorer.process(np.full(22, np.nan), 0.033)  # a message of nils, emg_missing = false
    scorer.process(np.full(22, np.inf), 0.066)
    for k in range(3, 40):
        result = scorer.process(target, k / 30)
    assert result["score"] == pytest.approx(100.0, abs=1e-6)
    assert np.isfinite(result["symmetry"]).all()  # also the pair of the first missing channel
    assert scorer.skipped[0] == 3 and scorer.skipped[1:].tolist() == [2] * 21
    assert result["skipped"] == 3 + 2 * 21


def test_finite_extremes_cannot_overflow_and_the_score_recovers(scheme, movements) -> None:
    target = movement_target(movements["Smile-Open"], scheme.muscles)
    scorer = FeedbackScorer(scheme.labels, scheme.pairs)
    scorer.set_target(target)
    scorer.process(target, 0.0)
    scorer.process(np.full(22, 1.7e308), 0.033)
    scorer.process(np.full(22, -1.7e308), 0.066)
    scorer.process(np.full(22, 1e7), 0.1)  # finite but no EMG: beyond MAX_ABS
    assert np.isfinite(scorer.average).all()
    results = [scorer.process(target, 0.1 + k / 30) for k in range(1, 60)]
    assert all(r["score"] is not None for r in results)
    assert results[-1]["score"] == pytest.approx(100.0, abs=1e-6)
    assert scorer.skipped.tolist() == [3] * 22


def test_the_average_stays_within_the_extremes_it_was_given(scheme) -> None:
    """A convex combination: even values at MAX_ABS of alternating sign stay finite and bounded."""
    from streaming.pipeline.biofeedback import MAX_ABS

    scorer = FeedbackScorer(scheme.labels, scheme.pairs, smoothing_s=0.01)
    for k in range(200):
        result = scorer.process(np.full(22, MAX_ABS * (-1) ** k), k * 0.005)
        assert np.all(np.abs(scorer.average) <= MAX_ABS)
    assert result["level"] <= MAX_ABS

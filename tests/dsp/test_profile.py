"""Per-participant normalisation profile: same chain, robust maximum, small checked JSON file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from streaming.errors import EiferError, StreamFormatError
from streaming.pipeline.features import build_chain
from streaming.pipeline.profile import Profile, ProfileError, compute_profile

FS = 4096.0
CHANNELS = ("F1", "F2", "F3")


@pytest.fixture
def calibration(sig) -> np.ndarray:
    _, x, _ = sig.burst_record(seconds=12.0, n_channels=3, seed=11, bursts=[(2, 4), (6, 8.5)])
    return x * np.array([1.0, 2.5, 0.4])  # channels of different strength


def test_profile_normalises_the_calibration_recording_to_about_one(calibration) -> None:
    profile = compute_profile(calibration, FS, CHANNELS, "p01", "low_latency")
    assert profile.feature == "low_latency" and profile.percentile == 99.0
    env = build_chain("low_latency", 3).process(calibration)[int(FS) :]
    norm = profile.normalise(env)
    assert np.all(norm >= 0)
    # the 99th percentile is 1; the true maximum exceeds it by overshoot plus estimator noise
    assert np.all(norm.max(axis=0) < 1.3) and np.all(norm.max(axis=0) > 1.0)
    # per-channel strengths are in the maxima (2.5x and 0.4x channel 1)
    np.testing.assert_allclose(profile.max_uv / profile.max_uv[0], [1.0, 2.5, 0.4], rtol=0.1)
    np.testing.assert_allclose(profile.to_microvolts(norm), env, rtol=1e-12)


def test_profile_round_trips_through_its_json_file(calibration, tmp_path) -> None:
    profile = compute_profile(calibration, FS, CHANNELS, "p01", "mmm", percentile=99.5)
    path = profile.save(tmp_path / "profiles" / "p01.json")
    data = json.loads(path.read_text())
    assert data["unit"] == "microvolts" and data["channels"] == list(CHANNELS)
    loaded = Profile.load(path, channels=CHANNELS, feature="mmm")
    assert loaded.participant == "p01" and loaded.created == profile.created
    np.testing.assert_array_equal(loaded.max_uv, profile.max_uv)
    assert loaded.percentile == 99.5


def test_profile_for_other_channels_or_feature_is_refused(calibration, tmp_path) -> None:
    path = compute_profile(calibration, FS, CHANNELS, "p01").save(tmp_path / "p.json")
    with pytest.raises(ProfileError, match=r"channels \['F1', 'F2', 'F3'\].*\['F1', 'F3', 'F2'\]"):
        Profile.load(path, channels=["F1", "F3", "F2"])
    with pytest.raises(ProfileError, match=r"feature 'low_latency'.*'mmm'"):
        Profile.load(path, feature="mmm")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not a readable JSON"),
        ("[1, 2]", "JSON object"),
        ('{"format": 7}', "format 7"),
        ('{"format": 1, "participant": "p"}', "lacks the key 'feature'"),
        (
            '{"format": 1, "participant": "p", "feature": "mmm", "percentile": 99, "created": "x",'
            ' "channels": ["F1", "F2"], "max_uv": [1.0]}',
            "1 values for 2 channels",
        ),
        (
            '{"format": 1, "participant": "p", "feature": "mmm", "percentile": 99, "created": "x",'
            ' "channels": ["F1"], "max_uv": ["big"]}',
            "malformed",
        ),
    ],
)
def test_broken_profile_files_give_clear_errors(tmp_path, text: str, match: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(ProfileError, match=match):
        Profile.load(path)
    assert issubclass(ProfileError, EiferError)


def test_missing_profile_file_is_named(tmp_path) -> None:
    with pytest.raises(ProfileError, match=r"not found.*nope\.json"):
        Profile.load(tmp_path / "nope.json")


def test_dead_channel_in_calibration_is_reported(calibration) -> None:
    calibration[:, 1] = 0.0
    with pytest.raises(ProfileError, match=r"\['F2'\].*no positive finite maximum"):
        compute_profile(calibration, FS, CHANNELS, "p01")


def test_calibration_shape_and_length_are_checked(calibration) -> None:
    with pytest.raises(StreamFormatError, match="expected \\(n_samples, 2\\)"):
        compute_profile(calibration, FS, ("F1", "F2"), "p01")
    with pytest.raises(StreamFormatError, match="too short"):
        compute_profile(calibration[:4096], FS, CHANNELS, "p01")
    profile = compute_profile(calibration, FS, CHANNELS, "p01")
    with pytest.raises(StreamFormatError, match=r"3 channels.*got data with 2"):
        profile.normalise(np.ones((5, 2)))

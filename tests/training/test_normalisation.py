"""Normalisation as a declared property: the methods, profiles and bundles carry it, and the
pipeline refuses a profile whose method differs from the bundle's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eifer_models.bundle import create_demo_bundle, load_bundle
from streaming.pipeline.profile import (
    Normalisation,
    Profile,
    ProfileError,
    check_normalisation,
    compute_profile,
)

REPO = Path(__file__).resolve().parents[2]
CHANNELS = [f"F{i}" for i in range(1, 23)]


def test_methods_compute_what_they_declare() -> None:
    env = np.array([[1.0, 10.0], [3.0, 20.0], [2.0, 40.0], [np.nan, 30.0]])
    assert Normalisation(statistic="max").reference(env).tolist() == [3.0, 40.0]
    assert Normalisation(scope="scalar", statistic="max").reference(env).tolist() == [40.0, 40.0]
    p50 = Normalisation(statistic="percentile", percentile=50.0).reference(env)
    assert p50.tolist() == [2.0, 25.0]
    assert Normalisation(scope="scalar", percentile=50.0).reference(env).tolist() == [10.0, 10.0]
    assert Normalisation().describe() == "per channel 99th percentile"
    # the percentile only identifies a percentile method
    assert (
        Normalisation(statistic="max", percentile=90).key() == Normalisation(statistic="max").key()
    )


def test_profile_stores_its_method_and_reads_old_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    recording = rng.standard_normal((4096 * 4, 22)) * np.linspace(5, 50, 22)
    method = Normalisation(scope="scalar", statistic="max")
    profile = compute_profile(recording, 4096.0, CHANNELS, "P1", normalisation=method)
    assert np.all(profile.max_uv == profile.max_uv[0]) and profile.percentile is None
    loaded = Profile.load(profile.save(tmp_path / "p.json"))
    assert loaded.normalisation == method
    old = json.loads((tmp_path / "p.json").read_text())
    del old["normalisation"]
    old["percentile"] = 99.5
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert Profile.load(tmp_path / "old.json").normalisation == Normalisation(percentile=99.5)


@pytest.fixture(scope="module")
def demo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bundle") / "demo"
    create_demo_bundle(path, fp16_onnx=False)
    return path


def _profile(method: Normalisation) -> Profile:
    return Profile("P1", "low_latency", tuple(CHANNELS), np.full(22, 30.0), method)


def test_bundle_declares_its_method_and_a_mismatching_profile_is_refused(demo_bundle: Path) -> None:
    declared = load_bundle(demo_bundle).emg_normalisation()
    assert declared == Normalisation()
    check_normalisation(_profile(Normalisation()), declared, "the bundle")  # same method: fine
    with pytest.raises(ProfileError, match=r"scalar maximum.*trained on the per channel 99th"):
        check_normalisation(
            _profile(Normalisation(scope="scalar", statistic="max")), declared, "the bundle"
        )
    with pytest.raises(ProfileError, match=r"per channel 95th percentile"):
        check_normalisation(_profile(Normalisation(percentile=95.0)), declared, "the bundle")


def test_pipeline_refuses_a_profile_bundle_mismatch_with_one_clear_line(
    demo_bundle: Path, tmp_path: Path
) -> None:
    profile = _profile(Normalisation(scope="scalar", statistic="max")).save(tmp_path / "p.json")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-m", "nodes.cli", "pipeline", "--bundle", str(demo_bundle),
         "--profile", str(profile), "--frames", "1", "--set", 'output.bus_address="tcp://127.0.0.1:0"'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "eifer pipeline: error: profile of 'P1' normalises by the scalar maximum"
    )
    assert "Traceback" not in result.stderr

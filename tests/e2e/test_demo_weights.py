"""The demo's committed trained models (models/demo-mlp, models/demo-encoders): what they say
about themselves, the bundle assembled from them (and without the encoders), the folder cut back
out of a run, and the demo refusing a training seed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from eifer_models.bundle import Bundle, load_bundle
from eifer_models.demo_weights import (
    DEMO_ENCODERS,
    DEMO_WEIGHTS,
    create_trained_demo_bundle,
    export_demo_exp2emg,
    export_demo_weights,
    read_encoders_provenance,
    read_provenance,
)
from eifer_models.face_detection.crop import CropSpec
from nodes.demo import demo_params
from simulation.demo_preparation import training_seeds
from streaming.check.config import CheckConfig
from streaming.errors import BundleError
from streaming.pipeline.profile import Normalisation

REPO = Path(__file__).resolve().parents[2]
DEMO_PARTICIPANT_SEED = demo_params()["participant_seed"]  # configs/sessions/demo.toml


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return create_trained_demo_bundle(tmp_path_factory.mktemp("demo") / "bundle")


@pytest.fixture(scope="module")
def untrained_encoders_bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return create_trained_demo_bundle(tmp_path_factory.mktemp("demo0") / "bundle", encoders=None)


def test_the_committed_weights_are_small_and_say_where_they_come_from():
    provenance = read_provenance()
    assert provenance["participant_seeds"] == [200, 201, 202, 203, 204]
    assert DEMO_PARTICIPANT_SEED not in training_seeds()
    metrics = provenance["held_out_metrics"]
    assert 0.9 < metrics["emg2exp_mean_r_held_out"] <= 1.0
    assert provenance["git_commit"] and provenance["dataset"]["sha256"]
    assert sum(p.stat().st_size for p in DEMO_WEIGHTS.iterdir()) < 1_000_000


def test_the_demo_bundle_has_the_trained_mlps_and_encoders(bundle):
    again = load_bundle(bundle.path)  # every checksum, graph and shape verified
    manifest = again.manifest
    assert again.trained and manifest.training["encoders_trained"] is True
    assert "trained on synthetic participants 200, 201, 202, 203, 204" in manifest.description
    assert "encoders TRAINED" in manifest.description
    assert "not EIFER's phase 1" in manifest.training["encoders"]  # (d), said plainly
    for name in ("emg2exp", "exp2emg"):
        committed = load_file(str(DEMO_WEIGHTS / f"{name}.safetensors"))
        built = again.build_module(name).state_dict()
        assert set(committed) == set(built)
        assert all(torch.equal(committed[k], built[k]) for k in committed)
    provenance = read_provenance()
    assert again.emg_normalisation() == Normalisation.from_dict(provenance["emg_normalisation"])
    assert manifest.feature["name"] == provenance["feature"]["name"]


def test_the_committed_encoders_are_small_held_out_and_read_as_trained(bundle):
    """The encoders folder is a few MB, its weights are the bundle's (float16 stored, float32
    run), the crop is the one they were trained on, and the demo's participant was never trained
    on."""
    enc = read_encoders_provenance()
    assert enc is not None
    assert sum(p.stat().st_size for p in DEMO_ENCODERS.iterdir()) < 5_000_000
    assert DEMO_PARTICIPANT_SEED not in enc["train_participant_seeds"]
    assert not set(enc["train_participant_seeds"]) & set(enc["heldout_participant_seeds"])
    assert set(enc["train_participant_seeds"]) <= set(training_seeds())
    assert enc["evaluation_heldout"]["occluded"]["mean_r"] > 0.3
    assert bundle.manifest.crop == CropSpec.model_validate(enc["crop"]["spec"])
    committed = load_file(str(DEMO_ENCODERS / "encoders.safetensors"))
    built = bundle.build_module("encoders").encoder.state_dict()
    assert set(committed) == set(built)
    assert all(torch.equal(committed[k].float(), built[k]) for k in committed)


def test_the_check_judges_the_trained_encoders(bundle):
    from nodes.check import judge_trained_models_only

    config, notes = judge_trained_models_only(CheckConfig(bundle=str(bundle.path)))
    assert config.thresholds.judge_video_models and config.thresholds.judge_emg_models
    assert not any("encoders untrained" in note for note in notes)


def test_without_the_encoders_folder_the_bundle_says_they_are_untrained(untrained_encoders_bundle):
    from nodes.check import judge_trained_models_only

    manifest = untrained_encoders_bundle.manifest
    assert untrained_encoders_bundle.trained and manifest.training["encoders_trained"] is False
    assert "encoders UNTRAINED" in manifest.description
    path = str(untrained_encoders_bundle.path)
    config, notes = judge_trained_models_only(CheckConfig(bundle=path))
    assert not config.thresholds.judge_video_models and config.thresholds.judge_emg_models
    assert any("encoders untrained" in note for note in notes)
    unchanged, none = judge_trained_models_only(CheckConfig())
    assert unchanged.thresholds.judge_video_models and none == []


def test_the_weight_folder_is_cut_back_out_of_a_run(bundle, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "bundle").symlink_to(bundle.path)
    provenance = read_provenance()
    participants = [f"synth-{s:04d}" for s in (300, 301)]
    (run / "run.json").write_text(json.dumps({
        "git_commit": "abc", "dataset": {"path": "sets/x", "sha256": "f00"},
        "folds": {"fold1": participants[:1], "fold2": participants[1:]}, "config": {"epochs": 1},
    }))  # fmt: skip
    (run / "metrics.json").write_text(
        json.dumps({"participant": {p: {} for p in participants}, "headline": {"r": 0.5}})
    )
    out = export_demo_weights(run, tmp_path / "weights")
    again = read_provenance(out)
    assert again["participant_seeds"] == [300, 301] and again["held_out_metrics"] == {"r": 0.5}
    assert again["emg_normalisation"] == provenance["emg_normalisation"]
    for name in ("emg2exp", "exp2emg"):
        a, b = load_file(str(out / f"{name}.safetensors")), load_file(str(DEMO_WEIGHTS / f"{name}.safetensors"))  # fmt: skip
        assert all(torch.equal(a[k], b[k]) for k in b)
    with pytest.raises(BundleError, match="not empty"):
        export_demo_weights(run, out)
    (run / "metrics.json").unlink()
    with pytest.raises(BundleError, match=r"metrics\.json missing"):
        export_demo_weights(run, tmp_path / "other", overwrite=True)


def test_the_demos_exp2emg_reads_the_encoders_phi_and_says_so(bundle):
    """``emg_from_video`` is Exp2EMG on the video branch's phi: the committed Exp2EMG was trained
    on the committed encoders' phi of the same participants (held-out r 0.80), EMG2Exp on the
    truth."""
    provenance = read_provenance()
    exp2emg = provenance["exp2emg"]
    encoders = read_encoders_provenance()
    assert encoders is not None
    assert exp2emg["phi_source"] == "encoders"
    assert f"encoders run {encoders['run']}," in exp2emg["encoders"]
    assert 0.5 < exp2emg["held_out_metrics"]["exp2emg_mean_r_held_out"] <= 1.0
    assert f"Exp2EMG on the phi of encoders (run {exp2emg['run']})" in bundle.manifest.description


def test_exp2emg_is_replaced_only_from_an_encoders_run_of_the_same_participants(bundle, tmp_path):
    weights = tmp_path / "weights"
    shutil.copytree(DEMO_WEIGHTS, weights)
    run = tmp_path / "run"
    run.mkdir()
    (run / "bundle").symlink_to(bundle.path)
    seeds = read_provenance()["participant_seeds"]
    info = {"git_commit": "abc", "dataset": {"path": "sets/x", "sha256": "f00"},
            "config": {"phi_source": "truth"}}  # fmt: skip
    (run / "run.json").write_text(json.dumps(info))
    participants = {f"synth-{s:04d}": {} for s in seeds}
    headline = {"exp2emg_mean_r_held_out": 0.7, "emg2exp_mean_r_held_out": 0.5}
    (run / "metrics.json").write_text(
        json.dumps({"participant": participants, "headline": headline})
    )
    with pytest.raises(BundleError, match="true phi"):
        export_demo_exp2emg(run, weights)
    info["config"] = {"phi_source": "encoders", "encoders_bundle": str(bundle.path)}
    (run / "run.json").write_text(json.dumps(info))
    out = read_provenance(export_demo_exp2emg(run, weights, recipe="r"))
    assert out["exp2emg"]["held_out_metrics"] == {"exp2emg_mean_r_held_out": 0.7}
    assert out["exp2emg"]["run"] == "run" and out["run"] == read_provenance()["run"]
    (run / "metrics.json").write_text(json.dumps({"participant": {"synth-0300": {}}}))
    with pytest.raises(BundleError, match="participants"):
        export_demo_exp2emg(run, weights)


def test_the_demo_refuses_a_participant_the_mlps_were_trained_on():
    done = subprocess.run(
        [sys.executable, "-m", "nodes.cli", "demo", "--headless", "--participant-seed", "202",
         "--bus", "tcp://127.0.0.1:1", "--protocol-bus", "tcp://127.0.0.1:2"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    output = done.stderr + done.stdout
    assert done.returncode == 1 and "Traceback" not in output, output
    assert "--participant-seed 202: the demo's models were trained on this participant" in output
    assert len(output.strip().splitlines()) == 1, output


@pytest.mark.parametrize(
    ("trained", "training", "expected"),
    [
        (True, {"encoders_trained": False, "encoders": "UNTRAINED random"}, (False, True)),  # demo
        (True, {"encoders": "UNTRAINED random encoders (seeded); give ..."}, (False, True)),
        (False, {"encoders": "supervised run x", "mlps": "untrained (seeded)"}, (True, False)),
        (False, {}, (False, False)),  # create_demo_bundle: random weights
        (True, {"encoders": "encoders from bundle b (trained)"}, (True, True)),
    ],
    ids=["demo", "phase-2 random encoders", "phase-1", "random", "trained"],
)
def test_the_check_knows_which_parts_of_a_bundle_are_trained(trained, training, expected):
    from types import SimpleNamespace

    from nodes.check import trained_parts

    assert trained_parts(SimpleNamespace(trained=trained, training=training)) == expected

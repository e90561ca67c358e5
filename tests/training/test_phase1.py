"""Phase 1 (EIFER's occlusion cycles): one tiny step of each stage with the stage's freezing and
pixel count, resume equality, clear errors, and the encoders bundle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from training.encoder_config import EncodersConfig, FaceDataConfig, Phase1Config
from training.encoders import run_encoders
from training.errors import RunError
from training.phase1 import run_phase1, split_finetune, stage_of_epoch


@pytest.fixture(scope="module")
def start(tmp_path_factory: pytest.TempPathFactory) -> tuple[FaceDataConfig, Path]:
    root = tmp_path_factory.mktemp("phase1")
    data = FaceDataConfig(
        train_participants=[1, 2], heldout_participants=[3], frames_per_participant=2,
        crop_size=32, cache_dir=str(root / "cache"),
    )  # fmt: skip
    config = EncodersConfig(data=data, output=str(root), run_name="enc", untrained=True,
                            device="cpu", threads=1)  # fmt: skip
    return data, run_encoders(config, progress=False)


def _config(start: tuple[FaceDataConfig, Path], out: Path, name: str, **kw: object) -> Phase1Config:
    data, encoders = start
    values: dict[str, object] = dict(
        data=data, encoders=str(encoders), output=str(out), run_name=name,
        stage_epochs=[1, 1, 1], pixel_fractions=[0.05, 0.05, 0.02], finetune_fraction=1.0,
        generator_features=4, generator_blocks=1, discriminator_features=4,
        samples_per_epoch=1, device="cpu", threads=1,
    )  # fmt: skip
    values.update(kw)
    return Phase1Config(**values)  # type: ignore[arg-type]


def test_schedule_and_split() -> None:
    assert [stage_of_epoch(e, [10, 5, 5]) for e in (0, 9, 10, 14, 15, 19, 25)] == [
        0,
        0,
        1,
        1,
        2,
        2,
        2,
    ]
    train, val = split_finetune(1000, 0.1, 0.2, seed=0)
    assert (len(train), len(val)) == (80, 20) and not set(train) & set(val)


def _states(run: Path) -> dict[str, dict[str, torch.Tensor]]:
    return torch.load(run / "last.pt", weights_only=True)["models"]


@pytest.mark.slow  # seconds alone; minutes on a loaded 2-core machine
@pytest.mark.timeout(1200)
def test_each_stage_steps_with_its_freezing_and_pixels(start, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = run_phase1(_config(start, tmp_path, "p1"), stop_after_epoch=1, progress=False)
    enc0 = torch.load(start[1] / "encoders.pt", weights_only=True)
    after1 = _states(run)
    # stage 1: encoders frozen, generators and discriminators trained
    assert all(torch.equal(after1["e_s"][k], enc0[k]) for k in enc0)
    run_phase1(resume=run, progress=False)
    final = torch.load(run / "encoders.pt", weights_only=True)
    key = "expression_encoder.expression_layers.0.weight"
    assert not torch.equal(final[key], enc0[key])  # stages 2-3: the occluded-face encoder learns
    geometry = [k for k in enc0 if k.startswith(("pose_encoder.", "shape_encoder."))]
    assert geometry and all(torch.equal(final[k], enc0[k]) for k in geometry)  # phi only
    assert all(torch.equal(_states(run)["e_n"][k], enc0[k]) for k in enc0)  # E_n stays frozen
    ev = json.loads((run / "eval.json").read_text())
    assert [(h["stage"], h["pixels"]) for h in ev["history"]] == [(1, 0.05), (2, 0.05), (3, 0.02)]
    for h in ev["history"]:
        assert set(h["train"]) == {"gan", "param_cycle", "image_cycle", "render_coverage", "disc"}
        assert set(h["val"]) == {"gan", "param_cycle", "image_cycle", "render_coverage"}
        assert 0.0 <= h["val"]["render_coverage"] <= 1.0
        assert set(h["heldout_r"]) == {"occluded", "free"}  # E_s's held-out r, watched each epoch
    assert ev["history"][-1]["heldout_r"]["occluded"] == ev["occluded"]["mean_r"]
    assert ev["finetune_frames"] == {"train": 3, "validation": 1}
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "epoch_001.png", "epoch_002.png", "epoch_003.png",
    ]  # fmt: skip
    assert ev["occluded"]["frames"] == 2
    generators = ev["generators"]  # expression carried through the generators (diagnostic)
    assert generators["frames"] == 2 and generators["pixel_fraction"] == 0.02
    for name in ("G_n read by E_n (true render)", "G_s read by E_s (true render)",
                 "G_n from free pixels read by E_n (true render)",
                 "E_n on real free faces", "E_s on real faces under electrodes"):  # fmt: skip
        assert generators[name] is None or -1.0 <= generators[name] <= 1.0


@pytest.mark.slow  # seconds alone; minutes on a loaded 2-core machine
@pytest.mark.timeout(1200)
def test_finetune_all_also_trains_the_pose_encoder(start, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    kw = {"stage_epochs": [1, 1], "pixel_fractions": [0.05, 0.02], "samples_per_epoch": 0}
    run = run_phase1(_config(start, tmp_path, "all", finetune="all", **kw), progress=False)
    enc0 = torch.load(start[1] / "encoders.pt", weights_only=True)
    final = torch.load(run / "encoders.pt", weights_only=True)
    pose = [k for k in enc0 if k.startswith("pose_encoder.") and enc0[k].is_floating_point()]
    assert any(not torch.equal(final[k], enc0[k]) for k in pose)


def test_the_true_parameters_render_the_face_where_the_crop_shows_it(start) -> None:  # type: ignore[no-untyped-def]
    """The generators' diagnostic renders the truth: the render must cover the crop's face."""
    from training.encoders import load_pairs
    from training.face_model import FaceModel
    from training.phase1_diagnostics import truth_params

    train, _ = load_pairs(start[0])
    coverage = FaceModel(32).render(truth_params(train)).coverage.float().mean((1, 2, 3))
    assert bool(((coverage > 0.15) & (coverage < 0.8)).all()), coverage


def test_resume_equals_an_uninterrupted_run(start, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    kw = {"stage_epochs": [1, 1], "pixel_fractions": [0.05, 0.02], "samples_per_epoch": 0}
    straight = run_phase1(_config(start, tmp_path, "straight", **kw), progress=False)
    stopped = run_phase1(_config(start, tmp_path, "stopped", **kw), stop_after_epoch=1,
                         progress=False)  # fmt: skip
    run_phase1(resume=stopped, progress=False)
    a, b = _states(straight), _states(stopped)
    for net in ("e_s", "g_n", "g_s", "d_n", "d_s"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net


def test_a_run_can_start_from_another_runs_networks(start, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``init_phase1``: a longer schedule after a run has ended starts from that run's networks,
    not from the pre-trained encoders and fresh generators; the optimisers start anew. After
    its first (stage-1, E_s frozen) epoch, E_s is the first run's and its generators have moved
    on from the first run's."""
    kw = {"stage_epochs": [1, 1], "pixel_fractions": [0.05, 0.02], "samples_per_epoch": 0}
    first = run_phase1(_config(start, tmp_path, "first", **kw), progress=False)
    longer = run_phase1(
        _config(start, tmp_path, "longer", init_phase1=str(first), **kw),
        stop_after_epoch=1, progress=False,
    )  # fmt: skip
    a, b = _states(first), _states(longer)
    enc0 = torch.load(start[1] / "encoders.pt", weights_only=True)
    assert all(torch.equal(b["e_s"][k], a["e_s"][k]) for k in a["e_s"])
    assert not all(torch.equal(b["e_s"][k], enc0[k]) for k in enc0)
    assert not all(torch.equal(b["g_n"][k], a["g_n"][k]) for k in a["g_n"])
    assert (
        "networks from phase-1 run" in json.loads((longer / "run.json").read_text())["provenance"]
    )
    with pytest.raises(RunError, match=r"init_phase1: .*last\.pt missing"):
        run_phase1(_config(start, tmp_path, "n", init_phase1=str(tmp_path)), progress=False)
    with pytest.raises(RunError, match="not a checkpoint of `eifer train phase1`"):
        torch.save({"epoch": 1, "model": {}}, tmp_path / "last.pt")  # another trainer's
        run_phase1(_config(start, tmp_path, "m", init_phase1=str(tmp_path)), progress=False)


def test_clear_errors(start, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RunError, match="encoders = <run folder>"):
        run_phase1(_config(start, tmp_path, "x", encoders=""), progress=False)
    with pytest.raises(RunError, match="one entry per stage"):
        run_phase1(_config(start, tmp_path, "y", pixel_fractions=[0.1]), progress=False)
    with pytest.raises(RunError, match=r"encoders\.pt: missing"):
        run_phase1(_config(start, tmp_path, "z", encoders=str(tmp_path)), progress=False)
    run = run_phase1(_config(start, tmp_path, "r", samples_per_epoch=0), stop_after_epoch=1,
                     progress=False)  # fmt: skip
    state = torch.load(run / "last.pt", weights_only=True)
    state["models"]["g_n"]["head.1.weight"] = torch.zeros(3, 1, 7, 7)  # no generator's
    torch.save(state, run / "last.pt")
    with pytest.raises(RunError, match="'g_n' does not fit"):
        run_phase1(resume=run, progress=False)
    (run / "last.pt").write_bytes((run / "last.pt").read_bytes()[:100])  # truncated
    with pytest.raises(RunError, match="unreadable checkpoint"):
        run_phase1(resume=run, progress=False)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "world_size": 2}))
    with pytest.raises(RunError, match=r"started on 2 rank\(s\).*--nproc-per-node 2"):
        run_phase1(resume=run, progress=False)


def test_encoders_bundle_reads_crops_of_the_trained_size_framed_as_trained(start) -> None:  # type: ignore[no-untyped-def]
    """A bundle's encoders take the run's crop size, and its crop margin over BlazeFace's box
    frames a face as the training crops (true box x crop_scale) did: BlazeFace's box under
    electrodes is smaller than the true box (ratio > 1), so the margin is larger. The true box
    does not wander with expression as each detection does: the crop's box is the steady one,
    moved by the measured centre offset (in the detector box's side)."""
    from training.encoder_bundle import write_encoders_bundle

    data, run = start
    bundle = write_encoders_bundle(run, run / "bundle")
    assert bundle.manifest.crop.size == data.crop_size == 32
    assert bundle.io("encoders")[0][0].shape == (1, 3, 32, 32)
    framing = bundle.manifest.training["crop_framing"]
    assert framing["frames"] >= 2 and framing["side_ratio"] > 1.0
    assert bundle.manifest.crop.scale == pytest.approx(
        data.crop_scale * framing["side_ratio"], abs=1e-3
    )
    assert bundle.manifest.crop.box == "steady"
    assert bundle.manifest.crop.offset == pytest.approx(
        [-v * framing["side_ratio"] for v in framing["centre_offset"]], abs=1e-4
    )


@pytest.mark.slow  # ONNX export of the encoders at 224
def test_encoders_bundle_verifies_and_a_misfitting_bundle_is_a_clear_error(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from eifer_models.bundle import load_bundle
    from streaming.errors import BundleError
    from training.encoder_bundle import write_encoders_bundle

    data = FaceDataConfig(train_participants=[1], heldout_participants=[2],
                          frames_per_participant=1, cache_dir=str(tmp_path / "cache"))  # fmt: skip
    run = run_encoders(EncodersConfig(data=data, output=str(tmp_path), run_name="enc224",
                                      untrained=True, device="cpu"), progress=False)  # fmt: skip
    bundle = write_encoders_bundle(run, tmp_path / "bundle")
    manifest = bundle.manifest
    assert manifest.training["encoders"].startswith("UNTRAINED")
    assert manifest.training["encoders_trained"] is False
    assert manifest.training["mlps"] == "untrained (seeded)"
    assert load_bundle(tmp_path / "bundle").summary()
    weights = tmp_path / "bundle" / "encoders.safetensors"
    state = load_file(str(weights))
    state["expression_encoder.expression_layers.0.weight"] = torch.zeros(10, 960)
    save_file(state, str(weights))
    with pytest.raises(BundleError, match="does not match the manifest"):
        load_bundle(tmp_path / "bundle")  # changed after writing: the checksum says so
    import json

    from eifer_models.bundle import sha256_file

    manifest_file = tmp_path / "bundle" / "manifest.json"
    data = json.loads(manifest_file.read_text())
    data["files"]["encoders.safetensors"] = sha256_file(weights)  # a consistent but wrong bundle
    manifest_file.write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"has shape \(10, 960\), graph 'encoders' needs"):
        load_bundle(tmp_path / "bundle")


def test_cli_resume_of_a_folder_that_is_no_run_is_one_clear_line(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "nodes.cli", "train", "phase1", "--resume", str(tmp_path)],
        cwd=repo, env=dict(os.environ, PYTHONPATH=str(repo)), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"eifer train: error: {tmp_path / 'run.json'}: missing; not a run of `eifer train phase1`"
    )


def test_shipped_configs_hold_the_papers_protocol() -> None:
    from streaming.config import load_config

    configs = Path(__file__).resolve().parents[2] / "configs" / "training"
    paper = load_config(Phase1Config, configs / "phase1.toml")
    assert (paper.stage_epochs, paper.lr, paper.weight_decay) == ([10, 5, 5], 2e-4, 1e-3)
    assert (paper.finetune_fraction, paper.val_fraction) == (0.1, 0.2)
    assert (paper.generator_blocks, paper.generator_features, paper.data.crop_size) == (9, 64, 224)
    small = load_config(Phase1Config, configs / "phase1_small.toml")
    assert small.lr == paper.lr and len(small.stage_epochs) == 3
    assert load_config(EncodersConfig, configs / "encoders.toml").data.crop_size == 224
    assert load_config(EncodersConfig, configs / "encoders_small.toml").views == "free"


def _fixed_pair(start, **kw: object):  # type: ignore[no-untyped-def]
    """Fresh seeded cycle models, the face model and one fixed (occluded, occlusion-free) pair,
    with lr 2e-3 and ``kw`` in the config: (models, face, x_s, x_n, config)."""
    from training.encoder_runs import load_encoders
    from training.encoders import load_pairs
    from training.face_model import FaceModel
    from training.phase1 import CycleModels

    data, encoders = start
    config = _config(start, Path("unused"), "x", lr=2e-3, **kw)
    encoder, _ = load_encoders(encoders)
    models = CycleModels.build(config, encoder, total_steps=10_000)
    models.e_s.eval()
    models.e_n.eval()
    train, _ = load_pairs(data)
    image = lambda a: torch.as_tensor(a).permute(2, 0, 1)[None].float() / 255.0  # noqa: E731
    return models, FaceModel(data.crop_size), image(train.occluded[0]), image(train.free[1]), config


def _fixed_pair_steps(
    start, fraction: float, steps: int = 25, **kw: object
) -> list[dict[str, float]]:  # type: ignore[no-untyped-def]
    """The losses of :func:`cycle_step` over ``steps`` steps on one fixed (occluded,
    occlusion-free) pair with fixed pixel draws (``fraction`` of the image), lr 2e-3 and ``kw``
    in the config."""
    from training.phase1 import cycle_step

    models, face, x_s, x_n, config = _fixed_pair(start, **kw)
    return [
        cycle_step(models, face, x_s, x_n, x_s, x_n, config, fraction,
                   torch.Generator().manual_seed(0))
        for _ in range(steps)
    ]  # fmt: skip


def test_the_cycles_learn_a_fixed_pair(start) -> None:  # type: ignore[no-untyped-def]
    """The phase-1 step learns: on one fixed (occluded, occlusion-free) pair with fixed pixel
    draws, 25 steps bring the image-cycle L1 (the generators' reconstruction) well below its
    first value; a step that trained nothing (a detached loss, a wrong optimiser) would not.
    Measured: 0.35 -> 0.14."""
    curve = [out["image_cycle"] for out in _fixed_pair_steps(start, 0.05)]
    print("image cycle L1", curve[0], "->", curve[-1])
    assert curve[-1] < 0.6 * curve[0], curve


def test_self_reconstruction_teaches_each_generator_to_redraw_its_own_view(start) -> None:  # type: ignore[no-untyped-def]
    """``w_self_reconstruction`` (SMIRK's reconstruction loss, off in the paper's configs) adds
    the generators' redrawing of their own inputs to the step: 25 steps on a fixed pair bring it
    well below its first value (measured 0.37 -> 0.10); with the weight 0 (the paper's losses
    only) it is neither computed nor reported."""
    steps = _fixed_pair_steps(start, 1.0, w_self_reconstruction=10.0)
    curve = [out["self_reconstruction"] for out in steps]
    print("self-reconstruction L1", curve[0], "->", curve[-1])
    assert curve[-1] < 0.6 * curve[0], curve
    assert "self_reconstruction" not in _fixed_pair_steps(start, 1.0, steps=1)[0]


def _first_step_gradients(start, **kw: object) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    """Each trained network's gradient (all its parameters, flattened) after one cycle step
    from the same seeded start, every face pixel given."""
    from training.phase1 import cycle_step

    models, face, x_s, x_n, config = _fixed_pair(start, **kw)
    cycle_step(models, face, x_s, x_n, x_s, x_n, config, 1.0, torch.Generator().manual_seed(0))
    return {
        name: torch.cat([
            (p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
            for p in getattr(models, name).parameters()
        ])
        for name in ("e_s", "g_n", "g_s")
    }  # fmt: skip


def test_a_fixed_csn_target_stops_only_the_pull_on_the_occluded_encoder(start) -> None:  # type: ignore[no-untyped-def]
    """``fixed_csn_target`` makes E_s's phi a constant target of the CSN parameter cycle: the
    generators' gradients are the paper's, E_s's are not (it is no longer pulled towards E_n's
    reading of G_n's drawing)."""
    paper, fixed = _first_step_gradients(start), _first_step_gradients(start, fixed_csn_target=True)
    for name in ("g_n", "g_s"):
        assert torch.allclose(fixed[name], paper[name], rtol=1e-4, atol=1e-7), name
    assert not torch.allclose(fixed["e_s"], paper["e_s"], rtol=1e-3, atol=1e-6)


def test_a_fixed_cns_face_keeps_the_parameter_cycle_out_of_the_occluding_generator(start) -> None:  # type: ignore[no-untyped-def]
    """``fixed_cns_face``: G_s no longer learns from how E_s reads its drawing. With only the
    parameter cycle weighted, the paper's step gives G_s a gradient and the fixed face none,
    while E_s learns in both."""
    only_params = dict(w_gan=0.0, w_image_cycle=0.0)
    paper = _first_step_gradients(start, **only_params)
    fixed = _first_step_gradients(start, fixed_cns_face=True, **only_params)
    assert paper["g_s"].abs().max() > 0 and fixed["g_s"].abs().max() == 0
    assert paper["e_s"].abs().max() > 0 and fixed["e_s"].abs().max() > 0

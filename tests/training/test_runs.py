"""The run skeleton every trainer shares (training.runs): folders never overwritten, a bad config
leaving no folder, the config hash, checkpoints that resume only under their config, the log."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import BaseModel

from training.errors import RunError
from training.runs import config_hash, load_checkpoint, open_run, save_checkpoint


class Tiny(BaseModel):
    output: str = ""
    run_name: str = ""
    device: str = "cpu"
    threads: int = 0
    lr: float = 1e-3
    data: dict[str, int] = {"frames": 4, "workers": 2}


def test_config_hash_ignores_where_and_how_a_run_goes() -> None:
    base = Tiny(output="a", run_name="x")
    same = Tiny(output="b", run_name="y", device="cuda", threads=3)
    assert config_hash(base) == config_hash(same)
    assert config_hash(base) != config_hash(Tiny(lr=1e-2))
    assert config_hash(base) != config_hash(base, "training set sha")
    other_workers = Tiny(data={"frames": 4, "workers": 8})
    assert config_hash(base) != config_hash(other_workers)
    ignore = {"data": {"workers"}}
    assert config_hash(base, ignore=ignore) == config_hash(other_workers, ignore=ignore)


def test_checkpoints_resume_only_under_their_config(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    assert load_checkpoint(path, "h", "mlp") is None
    save_checkpoint(path, {"epoch": 3, "config_hash": "h", "w": torch.ones(2)})
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left
    state = load_checkpoint(path, "h", "mlp")
    assert state is not None and state["epoch"] == 3
    with pytest.raises(RunError, match="made with another config or training set; not resumed"):
        load_checkpoint(path, "other", "mlp", made_with="another config or training set")
    save_checkpoint(path, {"weights": torch.ones(2)})
    with pytest.raises(RunError, match="not a checkpoint of `eifer train mlp`"):
        load_checkpoint(path, "h", "mlp")
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(RunError, match="unreadable checkpoint"):
        load_checkpoint(path, "h", "mlp")


def _enter(config: Tiny | None, resume: Path | None, **kw: Any) -> None:
    with open_run(config, resume, Tiny, "tiny", **kw):
        pass


def test_open_run_makes_logs_and_resumes_a_folder(tmp_path: Path) -> None:
    def check(config: Tiny) -> None:
        if config.lr <= 0:
            raise RunError("lr must be positive")

    with pytest.raises(RunError, match="lr must be positive"):
        _enter(Tiny(output=str(tmp_path), run_name="bad", lr=0), None, check=check)
    assert not (tmp_path / "bad").exists()  # a bad config leaves no folder behind
    config = Tiny(output=str(tmp_path), run_name="r", lr=0.5)
    with open_run(config, None, Tiny, "tiny", check=check) as run:
        assert run.folder == tmp_path / "r" and not run.resumed and run.main
        assert run.device == torch.device("cpu")
        run.write_info({"config": config.model_dump(mode="json"), "note": "first"})
        logging.getLogger("training.tiny").info("hello from the trainer")
        assert run.end_epoch({"epoch": 1, "config_hash": "h"}, stop_after_epoch=1)
    assert "hello from the trainer" in (tmp_path / "r" / "train.log").read_text()
    with pytest.raises(RunError, match="never overwritten"):
        _enter(config, None)
    with open_run(None, tmp_path / "r", Tiny, "tiny") as run:
        assert run.resumed and run.config == config and run.info["note"] == "first"
        assert run.load_checkpoint("h") == {"epoch": 1, "config_hash": "h"}
    assert json.loads((tmp_path / "r" / "run.json").read_text())["note"] == "first"
    with pytest.raises(RunError, match=r"run\.json: missing; not a run of `eifer train tiny`"):
        _enter(None, tmp_path)

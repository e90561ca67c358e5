"""Fixtures for the trainer: toy session folders with known truth (written once per test session
with the project's XDF and video writers) and a small training set built from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import DatasetConfig
from training.dataset import build_dataset
from training.toy_sessions import ToySpec, write_toy_session

N_PARTICIPANTS = 3


@pytest.fixture(scope="session")
def toy_sessions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three participants, one short session each (~37 s, every movement once)."""
    root = tmp_path_factory.mktemp("toy_sessions")
    for i in range(N_PARTICIPANTS):
        write_toy_session(root / f"s{i}", ToySpec(f"P{i}", seed=100 + i, repetitions=1))
    return root


@pytest.fixture(scope="session")
def toy_dataset(toy_sessions: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("training_sets")
    config = DatasetConfig(sessions=[str(toy_sessions)], output=str(out), crops=False)
    return build_dataset(config, progress=False)
